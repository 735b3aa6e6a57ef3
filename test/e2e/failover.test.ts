/**
 * Redis fail-over under load, on real processes: a master, a replica and three Sentinels on loopback,
 * a gateway (api and worker) reaching them through the Sentinel URL, and a force's system pushing
 * dossiers at a steady rate, retrying every 503 (or dropped connection) with the same Idempotency-Key.
 * Mid-stream the master is SIGKILLed; in the second run the replica is first cut off (its link killed
 * with CLIENT KILL TYPE replica, the replica SIGSTOPped, so the replication stream cannot even wait in
 * its socket) so that writes exist on the master that no replica holds when it dies.
 *
 * With writes acknowledged only once a replica holds them, every dossier answered 202 exists on the
 * promoted master and reaches every partner exactly once, the refused ones succeed on retry, and the
 * audit trail verifies and matches its anchor. The third run switches the rule off
 * (CORDON_REDIS_CONFIRM_REPLICAS=0) and shows the loss it prevents, so the first two can fail.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditLog, verifyChain } from '../../gateway/audit/log.js';
import { RedisAuditChain } from '../../gateway/store/audit.js';
import { Keys } from '../../gateway/store/redis.js';
import { api, fixture, startTestGateway, TOKENS, type TestGateway } from '../helpers/gateway.js';
import { startSentinelSet, until, type SentinelSet } from '../helpers/redis-procs.js';

const FORCE = TOKENS['west-midlands-rocu']!;
const DOSSIERS = 30;
const EVERY_MS = 100;

interface Outcome {
  key: string;
  id?: string;
  refusals: number;
  /** When each 503 (or failed connection) was answered, ms since the run started. */
  refusedAt: number[];
}

interface RunResult {
  outcomes: Outcome[];
  set: SentinelSet;
  gw: TestGateway;
  newMasterPort: number;
  window: { first?: number; last?: number };
}

let cleanup: Array<() => Promise<void>> = [];

afterEach(async () => {
  // Bounded: a gateway left on a broken store must not hold up the processes' stop.
  for (const c of cleanup.reverse()) await Promise.race([c().catch(() => undefined), new Promise((r) => setTimeout(r, 15_000))]);
  cleanup = [];
}, 40_000);

/** A force's system: submits dossier `i`, retrying 503s and dropped connections with the same key. */
async function submit(gw: TestGateway, run: string, i: number, t0: number, deadline: number): Promise<Outcome> {
  const key = `${run}-${i}`;
  const outcome: Outcome = { key, refusals: 0, refusedAt: [] };
  const dossier = { ...fixture('dossier-minimal.json'), reference: `FO/${run}/${i}` };
  for (;;) {
    const res = await api(gw.url, 'POST', '/v1/dossiers', FORCE, dossier, { 'idempotency-key': key }).catch(() => undefined);
    if (res?.status === 202) {
      outcome.id = res.json.id as string;
      return outcome;
    }
    if (res && res.status !== 503) throw new Error(`dossier ${key}: ${res.status} ${res.text}`);
    outcome.refusals++;
    outcome.refusedAt.push(Date.now() - t0);
    if (Date.now() > deadline) return outcome;
    await new Promise((r) => setTimeout(r, 150));
  }
}

async function failoverRun(run: string, opts: { cutAt?: number; killAt: number; confirmReplicas?: number }): Promise<RunResult> {
  const set = await startSentinelSet();
  cleanup.push(() => set.stop());
  const logs: string[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _e, cb) => (logs.push(chunk.toString()), cb()) }));
  const gw = await startTestGateway({ redisUrl: set.url, ...(opts.confirmReplicas !== undefined ? { redisConfirmReplicas: opts.confirmReplicas } : {}) }, logger);
  // The keys live on the Sentinels' master, not on the shared Redis the helper cleans: nothing to clean there.
  cleanup.push(() => gw.stop());
  const ready = await api(gw.url, 'GET', '/readyz');
  expect(ready.status, ready.text).toBe(200);
  if (opts.confirmReplicas !== 0) expect(ready.json.checks.replication.detail).toMatch(/confirmed by 1 of 1 replica/);

  const t0 = Date.now();
  const deadline = t0 + 50_000; // a retry may wait out a pending record (PENDING_TTL_SECONDS)
  const pending: Array<Promise<Outcome>> = [];
  for (let i = 0; i < DOSSIERS; i++) {
    if (i === opts.cutAt) {
      // Cut the replica off: stopped, and its link dropped, so nothing more reaches it.
      set.signal(set.replica, 'SIGSTOP');
      const m = set.connect(set.master.port);
      await m.call('CLIENT', 'KILL', 'TYPE', 'replica');
    }
    if (i === opts.killAt) {
      set.signal(set.master, 'SIGKILL');
      if (opts.cutAt !== undefined) set.signal(set.replica, 'SIGCONT');
    }
    pending.push(submit(gw, run, i, t0, deadline));
    await new Promise((r) => setTimeout(r, EVERY_MS));
  }
  await until('the Sentinels to promote the replica', async () => (await set.masterPort()) === set.replica.port, 30_000, 100);
  const outcomes = await Promise.all(pending);
  const refused = outcomes.flatMap((o) => o.refusedAt);
  const window = refused.length ? { first: Math.min(...refused), last: Math.max(...refused) } : {};
  if (outcomes.some((o) => !o.id)) console.error(logs.slice(-40).join(''));
  return { outcomes, set, gw, newMasterPort: set.replica.port, window };
}

/** What the promoted master holds: dossiers lost, packets per (partner, dossier) beyond one. */
async function audit(r: RunResult) {
  const redis = r.set.connect(r.newMasterPort);
  const keys = new Keys(r.gw.prefix);
  const accepted = r.outcomes.filter((o) => o.id);
  const lost: string[] = [];
  for (const o of accepted) if (!(await redis.exists(keys.dossier(o.id!)))) lost.push(o.id!);
  const packets = new Map<string, number>();
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${r.gw.prefix}:packet:*`, 'COUNT', '1000');
    cursor = next;
    for (const k of found) {
      const [dossier, partner, type] = await redis.hmget(k, 'dossier', 'partner', 'type');
      if (type === 'recall') continue;
      const pk = `${partner}/${dossier}`;
      packets.set(pk, (packets.get(pk) ?? 0) + 1);
    }
  } while (cursor !== '0');
  const duplicated = [...packets.values()].filter((n) => n > 1).length;
  return { redis, keys, accepted, lost, duplicated };
}

function report(name: string, r: RunResult, a: { accepted: unknown[]; lost: unknown[]; duplicated: number }) {
  const refusals = r.outcomes.reduce((n, o) => n + o.refusals, 0);
  const window = r.window.first === undefined ? 'none' : `${r.window.first}–${r.window.last} ms into the run (${r.window.last! - r.window.first!} ms)`;
  console.log(`[failover ${name}] accepted ${a.accepted.length}/${DOSSIERS}, lost ${a.lost.length}, duplicated ${a.duplicated}, 503s ${refusals}, 503 window ${window}`);
}

/** Every dossier answered 202 is there, settled, delivered once per partner; the trail verifies. */
async function expectNothingLost(name: string, r: RunResult) {
  const a = await audit(r);
  report(name, r, a);
  expect(a.accepted.length, 'every dossier is eventually accepted').toBe(DOSSIERS);
  expect(a.lost).toEqual([]);
  for (const o of a.accepted) {
    let last: Record<string, any> | undefined;
    await until(`dossier ${o.key} delivered`, async () => {
      const res = await api(r.gw.url, 'GET', `/v1/dossiers/${o.id}`, FORCE);
      last = res.json;
      return res.status === 200 && res.json.state !== 'accepted' && (res.json.deliveries as Array<{ state: string }>).every((d) => d.state !== 'queued');
    }, 30_000, 100).catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(last)}`);
    });
    expect(last!.state).toBe('processed');
  }
  expect((await audit(r)).duplicated).toBe(0);

  const log = new AuditLog(new RedisAuditChain(a.redis, a.keys), { stateDir: r.gw.stateDir });
  const records = await log.read();
  expect(verifyChain(records)).toBeUndefined();
  await expect(log.checkAnchor()).resolves.toBeUndefined();
  // The collection of every accepted dossier is on the record.
  const collected = new Set(records.filter((x) => x.action === 'dossier.received').map((x) => x.dossier));
  for (const o of a.accepted) expect(collected.has(o.id), `collection of ${o.key} audited`).toBe(true);
  const ready = await api(r.gw.url, 'GET', '/readyz');
  expect(ready.status, ready.text).toBe(200);
}

describe('Redis fail-over under load', () => {
  it('refuses to chain onto a log that lacks records a replica had confirmed, and says so', async () => {
    const set = await startSentinelSet();
    cleanup.push(() => set.stop());
    const gw = await startTestGateway({ redisUrl: `redis://127.0.0.1:${set.master.port}` });
    cleanup.push(() => gw.stop());
    const first = await api(gw.url, 'POST', '/v1/dossiers', FORCE, fixture('dossier-minimal.json'));
    expect(first.status, first.text).toBe(202);
    // What a promoted replica that missed the newest records looks like: the log cut back, its head
    // consistent with what is left (so only the record this gateway had confirmed tells).
    const m = set.connect(set.master.port);
    const keys = new Keys(gw.prefix);
    await until('the first dossier settled', async () => (await api(gw.url, 'GET', `/v1/dossiers/${first.json.id}`, FORCE)).json?.state === 'processed');
    const length = await m.llen(keys.auditLog());
    const keep = JSON.parse((await m.lindex(keys.auditLog(), 1))!) as { seq: number; hash: string };
    await m.ltrim(keys.auditLog(), 0, 1);
    await m.set(keys.auditHead(), `${keep.seq}:${keep.hash}:0:0`);
    expect(length).toBeGreaterThan(2);

    const refused = await api(gw.url, 'POST', '/v1/dossiers', FORCE, fixture('dossier-minimal.json'));
    expect(refused.status).toBe(503);
    // Whichever check sees it first refuses: the confirmed-record check or the anchor check.
    expect(refused.json.error.message).toMatch(/cut by a Redis fail-over|does not match the record anchored/);
    const ready = await api(gw.url, 'GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.json.checks.replication).toMatchObject({ ready: false, detail: expect.stringMatching(/confirmed by a replica before a fail-over, is not in the log/) });
    // Not silently restarted either: the mark is in Redis, so a restarted gateway refuses to start (the
    // anchor check, which also sees a head this gateway never signed, may be the first to say so).
    expect(await m.get(keys.auditCut())).toMatch(/record \d+/);
    await expect(startTestGateway({ redisUrl: `redis://127.0.0.1:${set.master.port}`, redisPrefix: gw.prefix, stateDir: gw.stateDir })).rejects.toThrow(/cut by a Redis fail-over|audit chain head|does not match the record anchored/);
    expect(await m.llen(keys.auditLog())).toBe(2);
  }, 60_000);

  it('loses no accepted dossier when the master is killed', async () => {
    const r = await failoverRun('plain', { killAt: 12 });
    await expectNothingLost('plain kill', r);
  }, 90_000);

  it('loses no accepted dossier when the master dies with a replica cut off', async () => {
    const r = await failoverRun('lagging', { cutAt: 8, killAt: 16 });
    // Refused while no replica could confirm, not acknowledged and lost.
    expect(r.outcomes.slice(9, 16).every((o) => o.refusals > 0)).toBe(true);
    await expectNothingLost('lagging replica', r);
  }, 90_000);

  it('without the acknowledgement rule, the same fail-over loses accepted dossiers', async () => {
    const r = await failoverRun('unconfirmed', { cutAt: 8, killAt: 16, confirmReplicas: 0 });
    const a = await audit(r);
    report('rule off', r, a);
    expect(a.lost.length).toBeGreaterThan(0);
  }, 90_000);
});
