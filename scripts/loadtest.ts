/**
 * `npm run loadtest`: push many example-sized dossiers from several connections while every partner
 * pulls and acknowledges its packets, then check that every accepted dossier reached every partner
 * exactly once, that nothing answered 5xx, and how memory moved. Loopback only, bounded in count and
 * time. Options: --count N (default 2000), --concurrency N (default 8), --minutes M (default 5).
 *
 * Starts its own gateway in this process (private redis-server, or REDIS_URL under a fresh prefix).
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { loadConfig } from '../gateway/config/env.js';
import { startGateway } from '../gateway/main.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
};
const COUNT = arg('count', 2000);
const CONCURRENCY = arg('concurrency', 8);
const DEADLINE = Date.now() + arg('minutes', 5) * 60_000;

const tokens = JSON.parse(await readFile(path.join(ROOT, 'test/fixtures/sample-tokens.json'), 'utf8')) as Record<string, string>;
const base = JSON.parse(await readFile(path.join(ROOT, 'examples/dossier-full.json'), 'utf8')) as Record<string, unknown>;
// Every sample partner pulls (the sample files are named by partner id), so a partner added later is drained too.
const partners = (await readdir(path.join(ROOT, 'policies/partners'))).filter((f) => f.endsWith('.yaml')).map((f) => f.slice(0, -5)).sort();
for (const p of partners) if (!tokens[p]) throw new Error(`no sample token for partner ${p} in test/fixtures/sample-tokens.json`);

const stateDir = await mkdtemp(path.join(os.tmpdir(), 'cordon-loadtest-'));
const config = {
  ...loadConfig({ ...process.env, CORDON_POLICY_DIR: path.join(ROOT, 'policies') }, ROOT),
  port: 0,
  stateDir,
  redisPrefix: `cordon-load-${randomBytes(3).toString('hex')}`,
  rateLimitPerMinute: 10_000_000,
  logLevel: 'silent',
};
const gw = await startGateway(config, pino({ level: 'silent' }));
const url = gw.url!;

async function call(method: string, route: string, token: string, body?: unknown) {
  const res = await fetch(url + route, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, text: await res.text() };
}

const statuses = new Map<number, number>();
const count = (s: number) => statuses.set(s, (statuses.get(s) ?? 0) + 1);
const latencies: number[] = [];
const accepted: string[] = [];
const rssStart = process.memoryUsage().rss;
const started = Date.now();

// Sources: CONCURRENCY connections pushing until COUNT are accepted or time runs out.
let next = 0;
async function pusher(): Promise<void> {
  while (next < COUNT && Date.now() < DEADLINE) {
    const n = next++;
    const t0 = performance.now();
    const res = await call('POST', '/v1/dossiers', tokens['west-midlands-rocu']!, { ...base, reference: `LOAD-${n}` });
    latencies.push(performance.now() - t0);
    count(res.status);
    if (res.status === 202) accepted.push((JSON.parse(res.text) as { id: string }).id);
  }
}

// Partners: pull and acknowledge whatever is new, all the while.
const seen = new Map<string, Set<string>>(partners.map((p) => [p, new Set()]));
let pushing = true;
async function puller(partner: string): Promise<void> {
  const token = tokens[partner]!;
  while (pushing || Date.now() < DEADLINE) {
    const list = await call('GET', '/v1/packets?state=delivered&limit=200', token);
    count(list.status);
    const fresh = (JSON.parse(list.text) as { packets: Array<{ id: string; state: string }> }).packets;
    for (const p of fresh) {
      count((await call('GET', `/v1/packets/${p.id}`, token)).status);
      count((await call('POST', `/v1/packets/${p.id}/ack`, token)).status);
      seen.get(partner)!.add(p.id);
    }
    if (!pushing && fresh.length === 0) break;
    if (fresh.length === 0) await new Promise((r) => setTimeout(r, 100));
  }
}

const pullers = partners.map((p) => puller(p));
await Promise.all(Array.from({ length: CONCURRENCY }, () => pusher()));
const pushSeconds = (Date.now() - started) / 1000;

// Wait for every accepted dossier to settle, then let the pullers drain.
const settled = new Map<string, Array<{ partner: string; state: string; packetId?: string }>>();
for (const id of accepted) {
  for (;;) {
    const res = await call('GET', `/v1/dossiers/${id}`, tokens['west-midlands-rocu']!);
    const body = JSON.parse(res.text) as { state: string; deliveries: Array<{ partner: string; state: string; packetId?: string }> };
    if (body.state !== 'accepted' && body.deliveries.every((d) => d.state !== 'queued')) {
      settled.set(id, body.deliveries);
      break;
    }
    if (Date.now() > DEADLINE + 120_000) throw new Error(`dossier ${id} did not settle`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
const allSeconds = (Date.now() - started) / 1000;
pushing = false;
await Promise.all(pullers);

// Exactly once: each dossier has one packet per partner that should get one, and no partner saw a packet twice.
let missing = 0;
let blockedUnexpectedly = 0;
const packetIds = new Set<string>();
let duplicates = 0;
for (const [, deliveries] of settled) {
  for (const d of deliveries) {
    if (d.state === 'blocked') blockedUnexpectedly++;
    else if (!d.packetId) missing++;
    else if (packetIds.has(d.packetId)) duplicates++;
    else packetIds.add(d.packetId);
  }
}
const pulled = [...seen.values()].reduce((n, s) => n + s.size, 0);
const fiveXX = [...statuses].filter(([s]) => s >= 500).reduce((n, [, c]) => n + c, 0);
latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]?.toFixed(1) ?? '-';
const rssEnd = process.memoryUsage().rss;

const report = {
  accepted: accepted.length,
  requested: next,
  pushSeconds: Number(pushSeconds.toFixed(1)),
  settledSeconds: Number(allSeconds.toFixed(1)),
  acceptedPerSecond: Number((accepted.length / pushSeconds).toFixed(1)),
  settledPerSecond: Number((accepted.length / allSeconds).toFixed(1)),
  postLatencyMs: { p50: pct(50), p99: pct(99), max: latencies.at(-1)?.toFixed(1) },
  packets: packetIds.size,
  packetsPulledAndAcked: pulled,
  missing,
  duplicates,
  blockedUnexpectedly,
  statuses: Object.fromEntries(statuses),
  rssMiB: { start: Math.round(rssStart / 2 ** 20), end: Math.round(rssEnd / 2 ** 20) },
};
console.log(JSON.stringify(report, null, 2));

await gw.close();
await rm(stateDir, { recursive: true, force: true });
const ok = accepted.length > 0 && missing === 0 && duplicates === 0 && blockedUnexpectedly === 0 && fiveXX === 0 && pulled === packetIds.size;
console.log(ok ? 'loadtest: ok — every accepted dossier reached every partner exactly once, no 5xx' : 'loadtest: FAILED');
process.exit(ok ? 0 : 1);
