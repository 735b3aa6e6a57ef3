/**
 * The HTTP stages, against a real gateway started in this process (startGateway) on loopback, with the
 * load generator in a worker thread:
 *  - end to end: M dossiers POSTed with a few in flight until every partner's delivery of every one is
 *    settled (packet stored and audited, or blocked) → sustained dossiers/s;
 *  - ingest: the maximum rate of POST /v1/dossiers on an api-only gateway against a bare express app
 *    with express.json() echoing the same bodies, then the p99 latency at half that rate (open loop).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import express from 'express';
import { pino } from 'pino';
import { loadConfig, type Config } from '../../gateway/config/env.js';
import { startGateway, type RunningGateway } from '../../gateway/main.js';
import { Keys, type Connection } from '../../gateway/store/redis.js';
import { connectPlain, deleteByPrefix, deliveriesOfMany, dossierStates, interceptCommands, redisCpuSeconds } from '../../gateway/store/tools.js';
import { makeDossiers } from './dossiers.js';
import { timeToDelivery, type DeliveryTimes } from './delivery.js';
import type { LoadGenerator, LoadResult } from './loadgen.js';
import { row, type Row } from './report.js';
import { ROOT } from './setup.js';
import { now, percentile, sleep, summarise } from './stats.js';
import type { Budget, CeilingRound } from './inprocess.js';
import { freePort } from '../../gateway/store/private-redis.js';

const TOKEN_FILE = path.join(ROOT, 'test/fixtures/sample-tokens.json');
/** The bench is a load test, not a test of the per-client rate limit (which still runs, and costs what it costs). */
const RATE_LIMIT = 10_000_000;

export interface HttpEnv {
  redisUrl: string;
  load: LoadGenerator;
  token: string;
  workerConcurrency: number;
  /** The policy folder the gateways under test load (the sample set without the blind-match partner). */
  policyDir: string;
}

export async function sourceToken(): Promise<string> {
  const tokens = JSON.parse(await readFile(TOKEN_FILE, 'utf8')) as Record<string, string>;
  return tokens['west-midlands-rocu']!;
}

interface BenchGateway {
  gw: RunningGateway;
  url: string;
  prefix: string;
  redis: Connection;
  stop(): Promise<void>;
}

async function startBenchGateway(env: HttpEnv, role: Config['role']): Promise<BenchGateway> {
  const stateDir = await mkdtemp(path.join(os.tmpdir(), 'cordon-bench-gw-'));
  const prefix = `cordon-bench-${randomBytes(4).toString('hex')}`;
  const config: Config = {
    ...loadConfig({ CORDON_POLICY_DIR: env.policyDir, CORDON_RATE_LIMIT_PER_MINUTE: String(RATE_LIMIT) }, ROOT),
    port: 0,
    redisUrl: env.redisUrl,
    stateDir,
    redisPrefix: prefix,
    role,
    logLevel: 'silent',
    workerConcurrency: env.workerConcurrency,
  };
  const gw = await startGateway(config, pino({ level: 'silent' }));
  const redis = connectPlain(env.redisUrl);
  return {
    gw,
    url: gw.url!,
    prefix,
    redis,
    async stop() {
      await gw.close();
      await deleteKeys(redis, prefix);
      await redis.quit();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

const deleteKeys = deleteByPrefix;

export function headers(token: string): Record<string, string> {
  return { 'content-type': 'application/json', authorization: `Bearer ${token}` };
}

export function check(res: LoadResult, what: string): void {
  const bad = Object.entries(res.statuses).filter(([s]) => Number(s) < 200 || Number(s) >= 300);
  if (bad.length) throw new Error(`${what}: unexpected answers ${JSON.stringify(res.statuses)}; first: ${res.firstError}`);
}

/** Waits until every dossier's record says `processed` (every delivery settled); returns when, or throws at the deadline. */
export async function waitProcessed(redis: Connection, keys: Keys, ids: string[], deadline: number): Promise<number> {
  let pending = ids;
  while (pending.length) {
    const states = await dossierStates(redis, keys, pending);
    const failed = pending.filter((_, i) => states[i] === 'failed');
    if (failed.length) throw new Error(`end to end: ${failed.length} dossiers failed (e.g. ${failed[0]})`);
    pending = pending.filter((_, i) => states[i] !== 'processed');
    if (!pending.length) break;
    if (Date.now() > deadline) throw new Error(`end to end: ${pending.length} of ${ids.length} dossiers not processed in time`);
    await sleep(25);
  }
  return now();
}

/** Every delivery of every dossier: counts of packets stored and deliveries blocked; throws on duplicates. */
async function deliveriesOf(redis: Connection, keys: Keys, ids: string[]): Promise<{ delivered: number; blocked: number }> {
  const rows = await deliveriesOfMany(redis, keys, ids);
  let delivered = 0;
  let blocked = 0;
  for (const r of rows) {
    for (const v of Object.values(r)) {
      const d = JSON.parse(v) as { state: string };
      if (d.state === 'delivered') delivered++;
      else if (d.state === 'blocked') blocked++;
      else throw new Error(`end to end: a delivery is still ${d.state}`);
    }
  }
  return { delivered, blocked };
}

/**
 * Counts the Redis commands this process sends (every ioredis client: the gateway's own, BullMQ's),
 * by name, while `counting` is on; the bench's own polling client is left out. A command inside a Lua
 * script is not sent, so this counts round trips (pipelined commands share one, though).
 */
class CommandCounter {
  readonly sent = new Map<string, number>();
  readonly bytes = new Map<string, number>();
  counting = false;
  readonly restore: () => void;
  constructor(ignore: Connection) {
    this.restore = interceptCommands(ignore, (name, size) => {
      if (!this.counting) return;
      this.sent.set(name, (this.sent.get(name) ?? 0) + 1);
      this.bytes.set(name, (this.bytes.get(name) ?? 0) + size);
    });
  }
  summary(dossiers: number): string {
    const sent = new Map<string, number>();
    for (const [k, v] of this.sent) sent.set(k.split(' ')[0]!, (sent.get(k.split(' ')[0]!) ?? 0) + v);
    const all = [...sent].map(([k, v]) => [k, v / dossiers] as const);
    const total = all.reduce((n, [, v]) => n + v, 0);
    const top = all
      .sort((a, b) => b[1] - a[1])
      .slice(0, 6)
      .map(([k, v]) => `${k} ${v.toFixed(1)}`)
      .join(', ');
    const kb = [...this.bytes.values()].reduce((n, v) => n + v, 0) / dossiers / 1024;
    const scripts = [...this.bytes].filter(([k]) => k === 'eval' || k.startsWith('evalsha'));
    const evalKb = scripts.reduce((n, [, v]) => n + v, 0) / dossiers / 1024;
    const byScript = scripts
      .sort((a, b) => b[1] - a[1])
      .slice(0, 5)
      .map(([k, v]) => `${k.replace(/^evalsha /, '')} ${(v / dossiers / 1024).toFixed(1)}`)
      .join(', ');
    return `${total.toFixed(0)} Redis commands sent per dossier (${top}), ${kb.toFixed(0)} KB (${evalKb.toFixed(0)} KB in scripts: ${byScript})`;
  }
}

/** CPU seconds used by Redis so far, for CPU per dossier. */
const redisCpu = redisCpuSeconds;

/** A gateway under test for the end-to-end stage: where to POST, and where its Redis keys are. */
export interface E2ETarget {
  url: string;
  prefix: string;
  redis: Connection;
  /** CPU milliseconds used so far by the gateway, by process. */
  cpu(): Record<string, number>;
  /** Resident memory in MiB, by process (NaN where /proc cannot tell). */
  rss(): Record<string, number>;
  stop(): Promise<void>;
}

async function inProcessTarget(env: HttpEnv): Promise<E2ETarget & { counter: CommandCounter }> {
  const gw = await startBenchGateway(env, 'all');
  const counter = new CommandCounter(gw.redis);
  return {
    url: gw.url,
    prefix: gw.prefix,
    redis: gw.redis,
    counter,
    cpu: () => {
      const u = process.cpuUsage();
      return { 'this process (load generator included)': (u.user + u.system) / 1000, 'its main thread': mainThreadMs() };
    },
    rss: () => ({ 'this process': process.memoryUsage().rss / 2 ** 20 }),
    async stop() {
      counter.restore();
      await gw.stop();
    },
  };
}

/** This process's main-thread CPU ms so far (Linux /proc; NaN elsewhere): api and worker share it here. */
function mainThreadMs(): number {
  try {
    const fields = readFileSync(`/proc/${process.pid}/task/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, USER_HZ 100
  } catch {
    return NaN;
  }
}

/** CPU ms of a child process so far, from /proc (Linux); NaN elsewhere. */
function childCpu(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in USER_HZ (100)
  } catch {
    return NaN;
  }
}

/** Resident set size of a child process in MiB, from /proc (Linux); NaN elsewhere. */
function childRss(pid: number | undefined): number {
  try {
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? NaN : Number(kb) / 1024;
  } catch {
    return NaN;
  }
}

/** The documented scale-out on one machine: one api and one worker process (CORDON_ROLE), one Redis. */
export async function splitTarget(env: HttpEnv, nodeArgs: string[] = []): Promise<E2ETarget & { pids: Record<string, number> }> {
  const stateDir = await mkdtemp(path.join(os.tmpdir(), 'cordon-bench-split-'));
  const prefix = `cordon-bench-${randomBytes(4).toString('hex')}`;
  const port = await freePort();
  const children: ChildProcess[] = [];
  const spawnRole = (role: 'api' | 'worker') => {
    // BENCH_CHILD_ARGS: extra node flags for both processes, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
    const extra = [...nodeArgs, ...(process.env.BENCH_CHILD_ARGS ?? '').split(' ').filter(Boolean)];
    const child = spawn(process.execPath, [...extra, '--import', 'tsx', 'gateway/main.ts'], {
      cwd: ROOT,
      env: {
        ...process.env,
        CORDON_ROLE: role,
        PORT: String(port),
        REDIS_URL: env.redisUrl,
        CORDON_STATE_DIR: stateDir,
        CORDON_REDIS_PREFIX: prefix,
        CORDON_POLICY_DIR: env.policyDir,
        CORDON_WORKER_CONCURRENCY: String(env.workerConcurrency),
        CORDON_RATE_LIMIT_PER_MINUTE: String(RATE_LIMIT),
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.push(child);
    return child;
  };
  const redis = connectPlain(env.redisUrl);
  const stop = async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
    await deleteKeys(redis, prefix);
    await redis.quit();
    await rm(stateDir, { recursive: true, force: true });
  };
  try {
    const api = spawnRole('api');
    const url = `http://127.0.0.1:${port}`;
    for (const deadline = Date.now() + 30_000; ; ) {
      const ok = await fetch(`${url}/readyz`).then((r) => r.ok, () => false);
      if (ok) break;
      if (api.exitCode !== null || Date.now() > deadline) throw new Error('the api process did not become ready');
      await sleep(100);
    }
    const worker = spawnRole('worker'); // after the api: the state directory (keys) exists by now
    return {
      url,
      prefix,
      redis,
      cpu: () => ({ api: childCpu(api.pid), worker: childCpu(worker.pid) }),
      rss: () => ({ api: childRss(api.pid), worker: childRss(worker.pid) }),
      pids: { api: api.pid!, worker: worker.pid! },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}


/**
 * End to end: POST `count` M dossiers (`inflight` at a time) to the gateway until every partner's
 * delivery of every dossier is settled → dossiers/s over the whole run, against the ceiling. Each
 * round follows a round of the in-process ceiling and the ratio is taken per pair, so a machine whose
 * speed drifts over the minute a run takes (a shared VM does) moves both sides alike.
 */
export async function endToEndStage(env: HttpEnv, b: Budget, ceiling: CeilingRound, mode: 'in-process' | 'split'): Promise<Row[]> {
  const target = mode === 'in-process' ? await inProcessTarget(env) : await splitTarget(env);
  const keys = new Keys(target.prefix);
  const count = b.quick ? 60 : 200;
  const inflight = 4;
  const bodies = makeDossiers('M', 50, 5).map((d) => JSON.stringify(d));
  const rates: number[] = [];
  const ceilings: Array<{ rate: number; cpuMs: number }> = [];
  let delivery: DeliveryTimes | undefined;
  let packets = 0;
  let blocked = 0;
  let detail: string | undefined;
  try {
    const once = async (n: number) => {
      const t0 = now();
      const res = await env.load.run({ mode: 'closed', url: `${target.url}/v1/dossiers`, headers: headers(env.token), bodies, concurrency: inflight, count: n, collectIds: true });
      check(res, 'end to end');
      const done = await waitProcessed(target.redis, keys, res.ids, Date.now() + 120_000);
      const d = await deliveriesOf(target.redis, keys, res.ids);
      return { rate: n / ((done - t0) / 1000), ...d };
    };
    await once(20); // warm-up: JIT, connections, compiled plans
    const counter = 'counter' in target ? (target.counter as CommandCounter) : undefined;
    // CPU is summed over the end-to-end rounds only (the ceiling's rounds run in this process too).
    const cpuUsed: Record<string, number> = {};
    let redisUsed = 0;
    let wallMs = 0;
    for (let r = 0; r < b.rounds; r++) {
      ceilings.push(await ceiling());
      const cpu0 = target.cpu();
      const redis0 = await redisCpu(target.redis);
      if (counter) counter.counting = true;
      const x = await once(count);
      if (counter) counter.counting = false;
      const cpu1 = target.cpu();
      redisUsed += (await redisCpu(target.redis)) - redis0;
      for (const k of Object.keys(cpu1)) cpuUsed[k] = (cpuUsed[k] ?? 0) + cpu1[k]! - cpu0[k]!;
      rates.push(x.rate);
      wallMs += (count / x.rate) * 1000;
      packets += x.delivered;
      blocked += x.blocked;
    }
    const n = count * b.rounds;
    const perProcess = Object.keys(cpuUsed).map((k) => `${(cpuUsed[k]! / n).toFixed(1)} ms in ${k}`);
    const ceilingCpu = ceilings.reduce((a, c) => a + c.cpuMs, 0) / ceilings.length;
    // How busy the one event loop was: near 100% means the main thread, not the cores, sets the pace.
    const busy = cpuUsed['its main thread'] !== undefined ? `; main thread busy ${((100 * cpuUsed['its main thread']) / wallMs).toFixed(0)}% of the rounds` : '';
    detail = `CPU per dossier: ${perProcess.join(', ')}, ${((redisUsed * 1000) / n).toFixed(1)} ms in Redis (the ceiling's rounds: ${ceilingCpu.toFixed(1)} ms)${busy}${counter ? `; ${counter.summary(n)}` : ''}`;
    if (mode === 'in-process') {
      // At half the rate just measured: what a force waits for when the gateway is not saturated.
      const rate = Math.max(1, Math.round(summarise(rates).median / 2));
      delivery = await timeToDelivery({ load: env.load, url: target.url, headers: headers(env.token), bodies, redis: target.redis, prefix: target.prefix, rate, seconds: b.quick ? 6 : 12, rounds: b.quick ? 2 : 3 });
    }
  } finally {
    await target.stop();
  }
  const value = summarise(rates);
  const where = mode === 'in-process' ? 'api + worker in this process' : 'api and worker as 2 processes';
  return [
    row({
      stage: `end to end, ${where} (HTTP → ${env.workerConcurrency}-way worker → packets stored + audited)`,
      size: 'M',
      unit: 'dossiers/s',
      value,
      baseline: { label: 'ceiling', value: summarise(ceilings.map((c) => c.rate)) },
      target: mode === 'in-process' ? { of: 'ratio', op: '>=', value: 0.8 } : undefined,
      note: `${count} dossiers per round, ${inflight} POSTs in flight; ${packets} packets stored, ${blocked} deliveries blocked by policy.\n    ${detail}`,
    }),
    ...(delivery
      ? [
          row({
            stage: 'time to delivery p99 at 50% of the end-to-end rate (202 → last packet filed)',
            size: 'M',
            unit: 'ms',
            value: delivery.p99,
            note:
              `open loop at ${delivery.rate} dossiers/s, ${delivery.seconds} s per round; p50 ${fmtMs(delivery.p50.median)} ms (${fmtMs(delivery.p50.min)}–${fmtMs(delivery.p50.max)}); ` +
              `all ${delivery.pooled.dossiers} dossiers pooled: p50 ${fmtMs(delivery.pooled.p50)}, p99 ${fmtMs(delivery.pooled.p99)}, max ${fmtMs(delivery.pooled.max)} ms. ` +
              'Every packet a dossier leads to without a partner\'s answer (match requests included), or its block.',
          }),
        ]
      : []),
  ];
}

const fmtMs = (x: number) => x.toFixed(1);

/** A bare express app that parses JSON bodies like the gateway (express.json) and echoes them back. */
async function startEcho(limit: number): Promise<{ url: string; close(): Promise<void> }> {
  const app = express();
  app.use(express.json({ limit }));
  app.post('/v1/dossiers', (req, res) => {
    res.json(req.body);
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) };
}

/** Ingest: max POST rate of an api-only gateway vs the bare express echo, then p99 at half the max. */
export async function ingestStage(env: HttpEnv, b: Budget): Promise<Row[]> {
  const bodies = makeDossiers('M', 50, 6).map((d) => JSON.stringify(d));
  const gw = await startBenchGateway(env, 'api');
  const echo = await startEcho(loadConfig({}, ROOT).bodyLimitBytes);
  const concurrency = 16;
  const durationMs = b.quick ? 1500 : 3000;
  const gwRates: number[] = [];
  const echoRates: number[] = [];
  const p99s: number[] = [];
  const cpu = { gw: 0, echo: 0, gwReqs: 0, echoReqs: 0 };
  let openRate: number;
  let openNote: string | undefined;
  try {
    const closed = async (url: string, ms: number) => {
      const c0 = process.cpuUsage();
      const res = await env.load.run({ mode: 'closed', url: `${url}/v1/dossiers`, headers: headers(env.token), bodies, concurrency, durationMs: ms });
      const c = process.cpuUsage(c0);
      check(res, url === gw.url ? 'ingest (gateway)' : 'ingest (echo)');
      const which = url === gw.url ? 'gw' : 'echo';
      cpu[which] += (c.user + c.system) / 1000;
      cpu[`${which}Reqs`] += res.completed;
      return res.completed / (res.elapsedMs / 1000);
    };
    // Warm-up of both, then alternating rounds so that background noise hits both alike.
    await closed(echo.url, 1000);
    await closed(gw.url, 1000);
    Object.assign(cpu, { gw: 0, echo: 0, gwReqs: 0, echoReqs: 0 });
    await deleteKeys(gw.redis, gw.prefix, { keepAudit: true });
    for (let r = 0; r < b.rounds; r++) {
      echoRates.push(await closed(echo.url, durationMs));
      gwRates.push(await closed(gw.url, durationMs));
      await deleteKeys(gw.redis, gw.prefix, { keepAudit: true }); // no worker runs: drop the queued dossiers between rounds
    }
    openRate = Math.max(1, Math.round(summarise(gwRates).median / 2));
    for (let r = 0; r < b.rounds; r++) {
      const res = await env.load.run({ mode: 'open', url: `${gw.url}/v1/dossiers`, headers: headers(env.token), bodies, rate: openRate, durationMs });
      check(res, 'ingest p99');
      p99s.push(percentile(res.latencies, 99));
      openNote = `${res.completed} requests per round at ${openRate}/s, p50 ${percentile(res.latencies, 50).toFixed(2)} ms`;
      await deleteKeys(gw.redis, gw.prefix, { keepAudit: true });
    }
  } finally {
    await echo.close();
    await gw.stop();
  }
  return [
    row({
      stage: 'ingest max rate, POST /v1/dossiers (api role)',
      size: 'M',
      unit: 'req/s',
      value: summarise(gwRates),
      baseline: { label: 'express.json echo', value: summarise(echoRates) },
      target: { of: 'ratio', op: '>=', value: 0.8 },
      note:
        `closed loop, ${concurrency} connections, ${durationMs / 1000} s per round; validate, seal, store, audit, enqueue. ` +
        `CPU per request (this process, load generator included): gateway ${(cpu.gw / cpu.gwReqs).toFixed(2)} ms, echo ${(cpu.echo / cpu.echoReqs).toFixed(2)} ms`,
    }),
    row({
      stage: 'ingest p99 latency at 50% of max rate',
      size: 'M',
      unit: 'ms',
      value: summarise(p99s),
      target: { of: 'value', op: '<=', value: 10 },
      note: `open loop (fixed rate, latency from when each request was due): ${openNote}`,
    }),
  ];
}
