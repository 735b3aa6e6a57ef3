/**
 * What ingest does at the door, step by step, against what the express echo does with the same body
 * (`JSON.parse`): schema validation, sealing the dossier, and the rate-limit script (a round trip to
 * the Redis the HTTP stages use). Each step on its own, in one process, M dossiers, so a change to one
 * shows as its own row; the ingest stage measures them together over HTTP.
 */
import { randomBytes } from 'node:crypto';
import { sealBytes } from '../../gateway/crypto/seal.js';
import { validateDossier } from '../../gateway/dossier/validate.js';
import { Keys } from '../../gateway/store/redis.js';
import { RedisRateLimits } from '../../gateway/store/ratelimit.js';
import { connectPlain, deleteByPrefix } from '../../gateway/store/tools.js';
import { makeDossiers } from './dossiers.js';
import type { Budget } from './inprocess.js';
import { row, type Row } from './report.js';
import { paired, single, summarise, type Summary } from './stats.js';

const micro = (s: Summary): Summary => summarise(s.rounds.map((v) => v * 1000));

export async function doorStage(redisUrl: string, b: Budget): Promise<Row[]> {
  const bodies = makeDossiers('M', 50, 8).map((d) => JSON.stringify(d));
  const iterations = b.quick ? 200 : 600;
  const opts = { rounds: b.rounds * 2, iterations, warmup: iterations, sync: true };
  const key = randomBytes(32);
  const parse = (i: number) => JSON.parse(bodies[i % bodies.length]!) as unknown;
  const validate = await paired(parse, (i) => validateDossier(parse(i)), opts);
  const parsed = bodies.map((s) => JSON.parse(s) as unknown);
  const seal = await paired(parse, (i) => sealBytes(key, JSON.stringify(parsed[i % parsed.length]), `dos_${i}`), opts);
  const redis = connectPlain(redisUrl);
  const prefix = `cordon-bench-door-${randomBytes(4).toString('hex')}`;
  let rate: Summary;
  let rateCpu: number;
  try {
    const limits = new RedisRateLimits(redis, new Keys(prefix));
    const budget = { perClient: 1e9, authFailures: 30, windowMs: 60_000, blockMs: 60_000 };
    const c0 = process.cpuUsage();
    rate = await single(() => limits.check('127.0.0.1', 'bench-client', budget), { rounds: b.rounds, iterations, warmup: 100 });
    const c = process.cpuUsage(c0);
    rateCpu = (c.user + c.system) / (iterations * b.rounds + 100);
  } finally {
    await deleteByPrefix(redis, prefix);
    await redis.quit();
  }
  const kb = (bodies.reduce((n, s) => n + s.length, 0) / bodies.length / 1024).toFixed(1);
  return [
    row({
      stage: 'at the door: schema validation (validateDossier, after the parse)',
      size: `M ${kb} KB`,
      unit: 'µs',
      value: summarise(micro(validate.candidate).rounds.map((v, i) => v - micro(validate.baseline).rounds[i]!)),
      baseline: { label: 'JSON.parse (what the echo does)', value: micro(validate.baseline) },
      note: 'validation alone (parse + validate, minus the parse of the same round); ratio: validation / parse',
    }),
    row({
      stage: 'at the door: sealing (JSON.stringify + AES-256-GCM, binary)',
      size: `M ${kb} KB`,
      unit: 'µs',
      value: micro(seal.candidate),
      baseline: { label: 'JSON.parse', value: micro(seal.baseline) },
    }),
    row({
      stage: 'at the door: rate-limit script, one round trip (EVALSHA)',
      size: '',
      unit: 'µs',
      value: micro(rate),
      note: `sequential calls, latency per call (Redis and loopback included); this process's CPU per call ${rateCpu.toFixed(0)} µs`,
    }),
  ];
}
