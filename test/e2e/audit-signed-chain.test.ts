/**
 * A chain nobody else can extend, against a real gateway and Redis: the tail of the trail rewritten
 * through Redis (a `packet.created` deleted after the last checkpoint, the hashes after it and the head
 * recomputed) is refused by the running gateway and named by `cordon audit verify`, live and from an
 * export; a trail wiped under a running gateway stops all new work, and only an operator's explicit
 * acceptance starts a new one; a trail written before batches were signed carries over.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anchorName, gatewaySigner } from '../../gateway/audit/checkpoint.js';
import { AuditLog, recordHash, type AuditRecord } from '../../gateway/audit/log.js';
import { loadOrCreateGatewayKey } from '../../gateway/crypto/openpgp.js';
import { RedisAuditChain } from '../../gateway/store/audit.js';
import { Keys } from '../../gateway/store/redis.js';
import { api, deleteKeys, fixture, REDIS_URL, ROOT, startTestGateway, TOKENS, until, waitSettled, type TestGateway } from '../helpers/gateway.js';

const FORCE = TOKENS['west-midlands-rocu']!;
let work: string;

function cordon(...args: string[]) {
  const res = spawnSync(process.execPath, [path.join(ROOT, 'scripts/cordon.mjs'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

async function records(gw: TestGateway): Promise<AuditRecord[]> {
  return (await gw.redis.lrange(`${gw.prefix}:audit:log`, 0, -1)).map((r) => JSON.parse(r) as AuditRecord);
}

async function sendDossier(gw: TestGateway): Promise<string> {
  const res = await api(gw.url, 'POST', '/v1/dossiers', FORCE, fixture('dossier-full.json'));
  expect(res.status).toBe(202);
  await waitSettled(gw.url, res.json.id);
  return res.json.id as string;
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'cordon-audit-signed-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('the tail rewritten through Redis', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway();
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('is refused by the running gateway and named by `cordon audit verify`, live and offline', async () => {
    await sendDossier(gw);
    const keyFile = path.join(work, 'gateway.asc');
    await writeFile(keyFile, (await api(gw.url, 'GET', '/v1/keys/gateway')).text);
    const rows = await records(gw);
    expect(rows.at(-1)!.sig).toMatch(/^[A-Za-z0-9_-]{86}$/);
    const lastCheckpoint = rows.filter((r) => r.kind === 'checkpoint').at(-1)!.seq;
    const target = rows.find((r) => r.action === 'packet.created' && r.recipient === 'dvla')!;
    expect(target.seq).toBeGreaterThan(lastCheckpoint);
    const intact = cordon('audit', 'verify', '--redis', REDIS_URL, '--prefix', gw.prefix, '--state', gw.stateDir);
    expect(intact.code, intact.stderr).toBe(0);

    // Finding 1, as an intruder with Redis write access does it: delete DVLA's disclosure, renumber and
    // rechain what follows, recompute every hash and reset the head. The batch signatures cannot follow.
    const forged: AuditRecord[] = rows.filter((r) => r.seq < target.seq);
    for (const r of rows.filter((r) => r.seq > target.seq)) {
      const prev = forged.at(-1)!;
      const { hash: _hash, ...body } = { ...r, seq: prev.seq + 1, prev: prev.hash };
      forged.push({ ...body, hash: recordHash(body) } as AuditRecord);
    }
    const last = forged.at(-1)!;
    const log = `${gw.prefix}:audit:log`;
    await gw.redis.multi().del(log).rpush(log, ...forged.map((r) => JSON.stringify(r))).set(`${gw.prefix}:audit:head`, `${last.seq}:${last.hash}:${Date.parse(last.at)}:${lastCheckpoint}`).exec();

    // The first record no valid batch signature vouches for: the start of the deleted record's batch.
    const firstBad = Math.max(...rows.filter((r) => r.seq < target.seq && r.sig).map((r) => r.seq)) + 1;
    expect(firstBad).toBeLessThanOrEqual(target.seq);
    const live = cordon('audit', 'verify', '--redis', REDIS_URL, '--prefix', gw.prefix, '--state', gw.stateDir);
    expect(live.code).toBe(1);
    expect(live.stderr).toMatch(new RegExp(`BROKEN at record seq ${firstBad} .*not vouched for by the gateway`));

    // Offline: an export and the gateway's public key alone (the audit key is named by the checkpoints).
    const file = path.join(work, 'forged.jsonl');
    expect(cordon('audit', 'export', '--redis', REDIS_URL, '--prefix', gw.prefix, '--out', file).code).toBe(0);
    const offline = cordon('audit', 'verify', '--file', file, '--key', keyFile);
    expect(offline.code).toBe(1);
    expect(offline.stderr).toMatch(new RegExp(`BROKEN at record seq ${firstBad} .*not vouched for by the gateway`));

    // Stripping the signatures does not help: the records after the last good one carry none.
    const stripped = path.join(work, 'stripped.jsonl');
    await writeFile(stripped, forged.map(({ sig: _sig, ...r }) => JSON.stringify(r)).join('\n') + '\n');
    const bare = cordon('audit', 'verify', '--file', stripped, '--key', keyFile);
    expect(bare.code).toBe(1);
    expect(bare.stderr).toMatch(/BROKEN at record seq \d+ .*(carry no gateway signature|not vouched for)/);

    // The running gateway does not extend (nor checkpoint) the forged head.
    const refused = await api(gw.url, 'POST', '/v1/dossiers', FORCE, fixture('dossier-minimal.json'));
    expect(refused.status).toBe(503);
    expect(refused.json.error.code).toBe('audit_unavailable');
    expect((await api(gw.url, 'POST', '/v1/audit/checkpoint', TOKENS['governance'])).status).toBe(503);
    const ready = await api(gw.url, 'GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.json.checks.audit).toMatchObject({ ready: false, detail: expect.stringMatching(/cut back to seq/) });
    expect(await gw.redis.llen(log)).toBe(forged.length);

    // Padded back to its old length with a made-up record, the head is still not one the gateway signed.
    const { hash: _h, sig: _s, ...pad } = { ...last, seq: last.seq + 1, prev: last.hash, action: 'audit.queried', kind: 'consultation' };
    const padded = { ...pad, hash: recordHash(pad) };
    await gw.redis.multi().rpush(log, JSON.stringify(padded)).set(`${gw.prefix}:audit:head`, `${padded.seq}:${padded.hash}:${Date.parse(padded.at)}:${lastCheckpoint}:${last.sig}`).exec();
    expect(padded.seq).toBe(rows.length);
    expect((await api(gw.url, 'POST', '/v1/dossiers', FORCE, fixture('dossier-minimal.json'))).status).toBe(503);
    const still = await api(gw.url, 'GET', '/readyz');
    expect(still.json.checks.audit).toMatchObject({ ready: false, detail: expect.stringMatching(/not signed by this gateway's audit key/) });
  });
});

describe('the trail wiped under a running gateway', () => {
  it('stops all new work and /readyz says not ready, until an operator accepts a new trail', async () => {
    const gw = await startTestGateway();
    const { prefix, stateDir, redis } = gw;
    const log = `${prefix}:audit:log`;
    try {
      await sendDossier(gw);
      // While running, the anchor follows the trail within a second (the window a cut across a crash has).
      const anchorFile = path.join(stateDir, anchorName(prefix));
      const length = await redis.llen(log);
      await until('the anchor to reach the head', async () => {
        const a = JSON.parse(await readFile(anchorFile, 'utf8').catch(() => '{}')) as { seq?: number };
        return a.seq === length ? true : undefined;
      }, 3000, 50);
      await redis.del(log, `${prefix}:audit:head`);
      const res = await api(gw.url, 'POST', '/v1/dossiers', FORCE, fixture('dossier-minimal.json'));
      expect(res.status).toBe(503);
      expect(res.json.error.code).toBe('audit_unavailable');
      const ready = await api(gw.url, 'GET', '/readyz');
      expect(ready.status).toBe(503);
      expect(ready.json.checks.audit).toMatchObject({ ready: false, detail: expect.stringMatching(/vanished/) });
      expect(await redis.llen(log)).toBe(0); // no silent new chain at seq 1
      await gw.close();
      expect(await redis.llen(log)).toBe(0);

      // A restart does not start a new trail by itself; the operator's explicit acceptance does.
      const anchored = JSON.parse(await readFile(path.join(stateDir, anchorName(prefix)), 'utf8'));
      expect(anchored.format).toBe(2);
      await expect(startTestGateway({ redisPrefix: prefix, stateDir })).rejects.toMatchObject({ code: 'audit_unavailable' });
      const accepted = await startTestGateway({ redisPrefix: prefix, stateDir, auditAcceptNewTrail: anchored.seq });
      expect((await api(accepted.url, 'GET', '/readyz')).status).toBe(200);
      await accepted.close();
      await accepted.redis.quit();
      await rm(accepted.stateDir, { recursive: true, force: true }).catch(() => undefined);
      const first = JSON.parse((await redis.lindex(log, 0))!);
      expect(first).toMatchObject({ seq: 1, action: 'audit.trail_restarted', previous: { seq: anchored.seq, hash: anchored.hash } });
      expect(cordon('audit', 'verify', '--redis', REDIS_URL, '--prefix', prefix, '--state', stateDir).code).toBe(0);
    } finally {
      await deleteKeys(redis, prefix);
      await redis.quit();
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});

describe('records after the anchor altered while the gateway was down', () => {
  it('refuse the start: the tail from the anchored record must chain to the signed head', async () => {
    const gw = await startTestGateway();
    const { prefix, stateDir, redis } = gw;
    const log = `${prefix}:audit:log`;
    try {
      await sendDossier(gw);
      await gw.close();
      // A crash would have left the anchor up to a second behind: put it back a few records.
      const rows = (await redis.lrange(log, 0, -1)).map((r) => JSON.parse(r) as AuditRecord);
      const anchored = rows.at(-4)!;
      const file = path.join(stateDir, anchorName(prefix));
      const anchor = JSON.parse(await readFile(file, 'utf8'));
      await writeFile(file, JSON.stringify({ ...anchor, seq: anchored.seq, hash: anchored.hash, at: anchored.at }));
      // The intruder edits a record after it, leaving the signed head in place.
      const target = rows.at(-2)!;
      await redis.lset(log, target.seq - 1, JSON.stringify({ ...target, actor: 'someone-else' }));
      await expect(startTestGateway({ redisPrefix: prefix, stateDir })).rejects.toMatchObject({
        code: 'audit_unavailable',
        message: expect.stringMatching(new RegExp(`record ${target.seq} does not chain from the head this gateway wrote at seq ${anchored.seq}`)),
      });
    } finally {
      await deleteKeys(redis, prefix);
      await redis.quit();
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});

describe('a trail written before batches were signed', () => {
  it('carries over through a format-change checkpoint and verifies whole', async () => {
    const stateDir = await mkdtemp(path.join(os.tmpdir(), 'cordon-state-legacy-'));
    const prefix = `cordon-test-legacy-${randomBytes(4).toString('hex')}`;
    const signer = gatewaySigner(await loadOrCreateGatewayKey(stateDir));
    const { Redis } = await import('ioredis');
    const redis = new Redis(REDIS_URL);
    try {
      // The old format: hash-chained, checkpoints signed with the OpenPGP key, no batch signatures.
      const legacy = new AuditLog(new RedisAuditChain(redis, new Keys(prefix)), { signer, stateDir });
      await legacy.append({ kind: 'alteration', action: 'policy.loaded', policyRevision: 'old', reason: 'start-up' });
      await legacy.checkpoint('start-up');
      for (let i = 0; i < 5; i++) await legacy.append({ kind: 'consultation', action: 'audit.queried', actor: 'governance' });
      await legacy.checkpoint('shutdown');
      await legacy.append({ kind: 'consultation', action: 'audit.queried', actor: 'governance' });
      expect((await legacy.read()).some((r) => r.sig)).toBe(false);

      const gw = await startTestGateway({ redisPrefix: prefix, stateDir });
      await sendDossier(gw);
      const rows = await records(gw);
      const change = rows.find((r) => r.kind === 'checkpoint' && r.reason === 'format-change')!;
      expect(change.seq).toBe(10);
      expect((change.checkpoint as { auditKey?: string }).auditKey).toBeTruthy();
      expect(rows.at(-1)!.sig).toBeTruthy();
      await gw.close();
      await gw.redis.quit();
      await rm(gw.stateDir, { recursive: true, force: true }).catch(() => undefined);
      const res = cordon('audit', 'verify', '--redis', REDIS_URL, '--prefix', prefix, '--state', stateDir);
      expect(res.code, res.stderr).toBe(0);
      // The gateway restarts on it too (its anchor now says the trail is signed).
      const again = await startTestGateway({ redisPrefix: prefix, stateDir });
      await again.close();
      await again.redis.quit();
    } finally {
      await deleteKeys(redis, prefix);
      await redis.quit();
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});
