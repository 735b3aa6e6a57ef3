/**
 * Memory soak (on request: `npm run bench -- --only soak [--soak-seconds N] [--soak-rate R]`): an api
 * and a worker process (CORDON_ROLE) take a steady stream of M dossiers for N seconds (default 600);
 * the worker's resident memory is sampled every 5 s. Target: from the second tenth of the run (after
 * warm-up: JIT, caches, heap sizing) to the last tenth, the median RSS grows by no more than 10%.
 */
import { makeDossiers } from './dossiers.js';
import { headers, splitTarget, type HttpEnv } from './http.js';
import { row, type Row } from './report.js';
import { summarise } from './stats.js';

export async function soakStage(env: HttpEnv, seconds: number, rate: number): Promise<Row[]> {
  const target = await splitTarget(env);
  const bodies = makeDossiers('M', 50, 8).map((d) => JSON.stringify(d));
  const samples: Array<{ t: number; rss: Record<string, number> }> = [];
  const t0 = Date.now();
  const timer = setInterval(() => samples.push({ t: (Date.now() - t0) / 1000, rss: target.rss() }), 5000);
  let sent = 0;
  let backlog = NaN;
  let errors = 0;
  try {
    // The stored dossiers are not what is measured: keep the bench's private Redis (never one given in
    // REDIS_URL) from writing them all to disk.
    if (!process.env.REDIS_URL) await target.redis.config('SET', 'appendonly', 'no').catch(() => undefined);
    const res = await env.load.run({ mode: 'open', url: `${target.url}/v1/dossiers`, headers: headers(env.token), bodies, rate, durationMs: seconds * 1000 });
    sent = res.completed;
    errors = Object.entries(res.statuses).reduce((n, [s, c]) => (Number(s) >= 200 && Number(s) < 300 ? n : n + c), 0);
    samples.push({ t: (Date.now() - t0) / 1000, rss: target.rss() });
    backlog = await target.redis.llen(`${target.prefix}:bull:dossiers:wait`);
  } finally {
    clearInterval(timer);
    await target.stop();
  }
  // Start: the median over the second tenth of the run (after warm-up); end: the median over the last tenth.
  const over = (from: number, to: number, proc: string) =>
    summarise(samples.filter((s) => s.t >= from && s.t <= to).map((s) => s.rss[proc]!).filter(Number.isFinite)).median;
  return ['worker', 'api'].map((proc) => {
    const series = samples.filter((s) => s.t >= seconds / 10).map((s) => s.rss[proc]!).filter(Number.isFinite);
    const start = over(seconds / 10, (2 * seconds) / 10, proc);
    const end = over((9 * seconds) / 10, Infinity, proc);
    const growth = ((end - start) / start) * 100;
    return row({
      stage: `memory soak: ${proc} RSS growth after warm-up`,
      size: 'M',
      unit: '%',
      value: summarise([growth]),
      target: proc === 'worker' ? { of: 'value', op: '<=', value: 10 } : undefined,
      note:
        `${seconds} s at ${rate} dossiers/s (${sent} accepted, ${errors} refused, ${backlog} still queued at the end); ` +
        `median RSS ${start.toFixed(0)} MiB over the second tenth → ${end.toFixed(0)} MiB over the last tenth (max ${Math.max(...series).toFixed(0)}, every 5 s)`,
    });
  });
}
