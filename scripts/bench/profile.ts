/**
 * The cost model: V8 CPU profiles (`--cpu-prof`) of the api and the worker process under the end-to-end
 * load, summarised into stages with their share of each process's main-thread CPU and milliseconds per
 * dossier. Only samples taken while the measured dossiers ran count (start-up, module loading and the
 * warm-up are cut off by time: V8 stamps samples with the same monotonic clock as `process.hrtime`).
 *
 * A sample is charged to the stage of the innermost frame whose source file names one; frames that
 * name none (JSON.stringify, node:crypto, Buffer…) are charged to their caller's stage, so "audit" is
 * the audit code together with the canonical JSON and hashing it asks for. What a process spends
 * outside its main thread (libuv's pool, where openpgp.js does its AES, X25519 and Ed25519 work, and
 * V8's GC helpers) is not sampled: it is shown as "other threads", process CPU minus main-thread CPU.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Keys } from '../../gateway/store/redis.js';
import { makeDossiers } from './dossiers.js';
import { check, headers, splitTarget, waitProcessed, type HttpEnv } from './http.js';
import type { Budget } from './inprocess.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Stage rules, first match wins, tried on each frame's source URL (or function name for V8's own). */
const RULES: Array<[stage: string, test: RegExp]> = [
  ['openpgp (encrypt+sign)', /\/node_modules\/(openpgp|@openpgp|@noble)\/|\/gateway\/crypto\/(openpgp|binary)\./],
  ['audit trail (records, canonical JSON, hashes, signed heads)', /\/gateway\/audit\/|\/gateway\/crypto\/audit-key\./],
  ['queue (BullMQ)', /\/node_modules\/(bullmq|msgpackr|cron-parser|uuid)\/|\/gateway\/queue\//],
  ['Redis client (ioredis)', /\/node_modules\/(ioredis|redis-parser|redis-errors|standard-as-callback|cluster-key-slot|denque)\//],
  ['store (scripts, record MACs)', /\/gateway\/store\//],
  ['link index (items, HMACs, sealing)', /\/gateway\/hits\//],
  ['redaction', /\/gateway\/redact\//],
  ['policy decisions', /\/gateway\/policy\/|\/node_modules\/json-rules-engine\//],
  // Sealing and keyed ids are charged to whoever asks for them (intake, links, store…).
  ['', /\/gateway\/crypto\/(seal|keyring)\./],
  ['ingest validation (schema)', /\/gateway\/dossier\/|\/node_modules\/(ajv|ajv-formats|fast-uri|fast-deep-equal)\//],
  ['intake (seal, store, idempotency)', /\/gateway\/intake\/|\/gateway\/pipeline\/accept/],
  ['fan-out bookkeeping (disclose, plaintext, file)', /\/gateway\/(fanout|pipeline)\//],
  ['rate limit', /\/gateway\/http\/ratelimit/],
  ['HTTP (express, node:http, auth)', /\/gateway\/http\/|\/node_modules\/(express|router|body-parser|raw-body|finalhandler|send|serve-static|on-finished|type-is|content-type|iconv-lite|helmet|qs|accepts|negotiator|mime-types|statuses|http-errors|depd|debug|cookie|vary|encodeurl|escape-html|etag|fresh|parseurl|proxy-addr|range-parser|merge-descriptors|utils-merge|pino-http)\/|^node:_http_|^node:http/],
  ['logging (pino)', /\/node_modules\/(pino|pino-std-serializers|sonic-boom|thread-stream|fast-redact|quick-format-unescaped|atomic-sleep|on-exit-leak-free|safe-stable-stringify)\//],
  ['metrics (prom-client)', /\/gateway\/metrics\/|\/node_modules\/(prom-client|tdigest|bintrees)\//],
  ['sockets and streams', /^node:(net|stream|internal\/stream_base_commons|internal\/streams|internal\/net|events|internal\/timers|timers)/],
];

const V8_OWN: Record<string, string> = {
  '(garbage collector)': 'GC (main thread)',
  '(program)': 'V8/native, no JS frame (program)',
};

function ownStage(frame: ProfileNode['callFrame']): string | undefined {
  const own = V8_OWN[frame.functionName];
  if (own) return own;
  if (!frame.url) return undefined;
  for (const [stage, test] of RULES) if (test.test(frame.url)) return stage || undefined;
  const folder = /\/gateway\/([^/]+)\//.exec(frame.url)?.[1] ?? (/\/gateway\/main\.ts$/.test(frame.url) ? 'main' : undefined);
  if (folder) return `other gateway code (${folder})`;
  if (frame.url.startsWith('node:')) return undefined; // node internals: the caller's stage
  return 'other modules';
}

export interface ProcessProfile {
  /** Main-thread, non-idle milliseconds per stage within the window. */
  stages: Map<string, number>;
  /** Self time of the busiest functions, ms. */
  functions: Array<{ name: string; ms: number }>;
  mainMs: number;
  idleMs: number;
  samples: number;
}

/** Summarises one profile over [fromUs, toUs] (monotonic µs, as process.hrtime). */
export function summariseProfile(profile: CpuProfile, fromUs: number, toUs: number): ProcessProfile {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const stageOf = new Map<number, string>();
  const root = profile.nodes[0]!;
  const walk: Array<[ProfileNode, string]> = [[root, 'other (no JS frame)']];
  while (walk.length) {
    const [node, inherited] = walk.pop()!;
    const stage = ownStage(node.callFrame) ?? inherited;
    stageOf.set(node.id, stage);
    for (const c of node.children ?? []) walk.push([byId.get(c)!, stage]);
  }
  const stages = new Map<string, number>();
  const self = new Map<number, number>();
  let t = profile.startTime;
  let mainMs = 0;
  let idleMs = 0;
  let samples = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    // A sample's time is the gap to the next one (the last sample gets none).
    const ms = ((profile.timeDeltas[i + 1] ?? 0) as number) / 1000;
    if (t < fromUs || t > toUs || ms <= 0) continue;
    const id = profile.samples[i]!;
    if (byId.get(id)?.callFrame.functionName === '(idle)') {
      idleMs += ms;
      continue;
    }
    samples++;
    mainMs += ms;
    const stage = stageOf.get(id) ?? 'other (no JS frame)';
    stages.set(stage, (stages.get(stage) ?? 0) + ms);
    self.set(id, (self.get(id) ?? 0) + ms);
  }
  const byFunction = new Map<string, number>();
  for (const [id, ms] of self) {
    const f = byId.get(id)!.callFrame;
    const file = f.url ? f.url.replace(/^file:\/\/.*?\/(node_modules|gateway)\//, '$1/').replace(/^node_modules\//, '') : 'native';
    const name = `${f.functionName || '(anonymous)'} ${file}${f.url ? `:${f.lineNumber + 1}` : ''}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + ms);
  }
  const functions = [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([name, ms]) => ({ name, ms }));
  return { stages, functions, mainMs, idleMs, samples };
}

/** Reads the `.cpuprofile` a process with this pid wrote into `dir` (node names them CPU.<date>.<time>.<pid>.<tid>.<seq>). */
export async function readProfile(dir: string, pid: number): Promise<CpuProfile> {
  // Thread 0 is the main thread (the others are loader threads, idle once the gateway runs).
  const name = (await readdir(dir)).find((f) => f.endsWith('.cpuprofile') && f.split('.')[3] === String(pid) && f.split('.')[4] === '0');
  if (!name) throw new Error(`no CPU profile of process ${pid} in ${dir}`);
  return JSON.parse(await readFile(path.join(dir, name), 'utf8')) as CpuProfile;
}

export interface ProfileReport {
  dossiers: number;
  /** Process CPU per dossier (all threads, /proc), by process. */
  cpuPerDossier: Record<string, number>;
  /** The main thread's own CPU per dossier (/proc/<pid>/task/<pid>), by process. */
  mainCpuPerDossier: Record<string, number>;
  processes: Record<string, ProcessProfile>;
}

/** The profile table: stages by ms per dossier (main thread) and share, per process, busiest first. */
export function profileTable(r: ProfileReport, top = 14): string {
  const names = Object.keys(r.processes);
  const rows = new Map<string, Record<string, number>>();
  for (const p of names) {
    for (const [stage, ms] of r.processes[p]!.stages) (rows.get(stage) ?? rows.set(stage, {}).get(stage)!)[p] = ms;
  }
  const total = (x: Record<string, number>) => names.reduce((n, p) => n + (x[p] ?? 0), 0);
  const sorted = [...rows].sort((a, b) => total(b[1]) - total(a[1]));
  const shown = sorted.slice(0, top);
  const rest = sorted.slice(top);
  if (rest.length) {
    const sum: Record<string, number> = {};
    for (const [, x] of rest) for (const p of names) sum[p] = (sum[p] ?? 0) + (x[p] ?? 0);
    shown.push([`the rest (${rest.length} stages)`, sum]);
  }
  // Samples are taken on a wall clock, so a thread waiting for a core still collects them: a stage's
  // share of the samples is charged against the thread's CPU as /proc counts it.
  const perDossier = (p: string, ms: number) => (ms / r.processes[p]!.mainMs) * r.mainCpuPerDossier[p]!;
  const cell = (p: string, ms: number | undefined) => {
    const prof = r.processes[p]!;
    if (!ms) return ['', ''];
    return [perDossier(p, ms).toFixed(2), `${((100 * ms) / prof.mainMs).toFixed(1)}%`];
  };
  const head = ['stage', ...names.flatMap((p) => [`${p} ms/dossier`, 'share'])];
  const body = shown.map(([stage, x]) => [stage, ...names.flatMap((p) => cell(p, x[p]))]);
  body.push(['main thread (CPU from /proc; shares from the samples)', ...names.flatMap((p) => [r.mainCpuPerDossier[p]!.toFixed(2), '100%'])]);
  body.push(['other threads (libuv pool: openpgp AES/X25519/Ed25519; GC helpers)', ...names.flatMap((p) => [(r.cpuPerDossier[p]! - r.mainCpuPerDossier[p]!).toFixed(2), ''])]);
  body.push(['process CPU (all threads, /proc)', ...names.flatMap((p) => [r.cpuPerDossier[p]!.toFixed(2), ''])]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const out = [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)];
  for (const p of names) {
    const prof = r.processes[p]!;
    out.push(`  ${p}, busiest functions (self time, ms per dossier): ` + prof.functions.slice(0, 6).map((f) => `${f.name} ${perDossier(p, f.ms).toFixed(2)}`).join('; '));
  }
  return out.join('\n');
}

/**
 * Profiles an api and a worker process (as e2e-split runs them) under the end-to-end load: `count` M
 * dossiers, 4 POSTs in flight, after a warm-up; only the measured dossiers' window counts.
 */
export async function profileStage(env: HttpEnv, b: Budget): Promise<ProfileReport> {
  // BENCH_PROFILE_DIR keeps the raw profiles there (to open in a profiler); else they are removed.
  const keep = process.env.BENCH_PROFILE_DIR;
  const dir = keep ? await mkdtemp(path.join(path.resolve(keep), 'cordon-prof-')) : await mkdtemp(path.join(os.tmpdir(), 'cordon-bench-prof-'));
  try {
    const target = await splitTarget(env, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
    const keys = new Keys(target.prefix);
    const bodies = makeDossiers('M', 50, 7).map((d) => JSON.stringify(d));
    const count = b.quick ? 100 : 300;
    let window: { from: number; to: number; cpu0: Record<string, number>; cpu1: Record<string, number> };
    try {
      const batch = async (n: number) => {
        const res = await env.load.run({ mode: 'closed', url: `${target.url}/v1/dossiers`, headers: headers(env.token), bodies, concurrency: 4, count: n, collectIds: true });
        check(res, 'profile');
        await waitProcessed(target.redis, keys, res.ids, Date.now() + 120_000);
      };
      await batch(30); // warm-up: JIT, connections, compiled plans
      const cpu0 = { ...target.cpu(), ...mainThreadCpu(target.pids) };
      const from = hrtimeUs();
      await batch(count);
      window = { from, to: hrtimeUs(), cpu0, cpu1: { ...target.cpu(), ...mainThreadCpu(target.pids) } };
    } finally {
      await target.stop(); // each process writes its profile as it exits
    }
    const processes: Record<string, ProcessProfile> = {};
    const cpuPerDossier: Record<string, number> = {};
    const mainCpuPerDossier: Record<string, number> = {};
    for (const [name, pid] of Object.entries(target.pids)) {
      processes[name] = summariseProfile(await readProfile(dir, pid), window.from, window.to);
      cpuPerDossier[name] = (window.cpu1[name]! - window.cpu0[name]!) / count;
      mainCpuPerDossier[name] = (window.cpu1[`${name}:main`]! - window.cpu0[`${name}:main`]!) / count;
    }
    return { dossiers: count, cpuPerDossier, mainCpuPerDossier, processes };
  } finally {
    if (!keep) await rm(dir, { recursive: true, force: true });
  }
}

const hrtimeUs = () => Number(process.hrtime.bigint() / 1000n);

/** Each process's main-thread CPU ms so far (its task whose id is the pid), as `<name>:main`. */
function mainThreadCpu(pids: Record<string, number>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(pids).map(([name, pid]) => {
      const fields = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return [`${name}:main`, ((Number(fields[11]) + Number(fields[12])) * 1000) / 100]; // utime + stime, USER_HZ 100
    }),
  );
}
