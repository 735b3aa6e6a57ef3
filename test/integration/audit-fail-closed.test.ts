/**
 * Fail closed with real faults (no mocks): when the audit trail cannot be written, no dossier is
 * accepted, no packet is served, no recall goes out, and the client gets a clear 503 audit_unavailable.
 * Fault 1: the chain head key has the wrong Redis type. Fault 2: a Redis ACL change takes away the
 * gateway's right to write its audit keys while it runs (everything else still writable).
 */
import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import { anchorName } from '../../gateway/audit/checkpoint.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, deleteKeys, dumpKeys, fixture, REDIS_URL, startTestGateway, TOKENS, waitSettled, type TestGateway } from '../helpers/gateway.js';

const FORCE = TOKENS['west-midlands-rocu']!;

async function storedDossiers(gw: TestGateway): Promise<string[]> {
  return [...(await dumpKeys(gw.redis, gw.prefix)).keys()].filter((k) => /:dossier:dos_[0-9a-f]+$/.test(k));
}

function expect503(res: { status: number; json: Record<string, any>; headers: Headers; text: string }) {
  expect(res.status).toBe(503);
  expect(res.headers.get('content-type')).toMatch(/application\/json/);
  expect(res.headers.get('retry-after')).toBeTruthy();
  expect(res.json.error.code).toBe('audit_unavailable');
  expect(res.json.error.message).toMatch(/audit/);
  expect(res.text).not.toContain('PGP MESSAGE');
}

describe('the chain head of the wrong type', () => {
  let gw: TestGateway;
  let packetId: string;
  let dossierId: string;
  beforeAll(async () => {
    gw = await startTestGateway();
    const res = await api(gw.url, 'POST', '/v1/dossiers', FORCE, fixture('dossier-full.json'));
    dossierId = res.json.id;
    await waitSettled(gw.url, dossierId);
    packetId = (await api(gw.url, 'GET', '/v1/packets', TOKENS['dvla'])).json.packets[0].id;
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('no dossier is accepted, no packet is served or acknowledged, no recall goes out; all resume once it is repaired', async () => {
    const head = `${gw.prefix}:audit:head`;
    const saved = (await gw.redis.get(head))!;
    const before = await storedDossiers(gw);
    const length = await gw.redis.llen(`${gw.prefix}:audit:log`);
    await gw.redis.del(head);
    await gw.redis.hset(head, 'broken', '1');
    try {
      expect503(await api(gw.url, 'POST', '/v1/dossiers', FORCE, fixture('dossier-minimal.json')));
      expect(await storedDossiers(gw)).toEqual(before);
      expect503(await api(gw.url, 'GET', `/v1/packets/${packetId}`, TOKENS['dvla']));
      expect503(await api(gw.url, 'POST', `/v1/packets/${packetId}/ack`, TOKENS['dvla']));
      expect(await gw.redis.hget(`${gw.prefix}:packet:${packetId}`, 'state')).toBe('delivered');
      expect503(await api(gw.url, 'POST', `/v1/dossiers/${dossierId}/recall`, FORCE, { reason: 'withdrawn' }));
      expect((await api(gw.url, 'GET', `/v1/dossiers/${dossierId}`, FORCE)).json.state).toBe('processed');
      expect503(await api(gw.url, 'GET', '/v1/audit', TOKENS['governance']));
      expect(await gw.redis.llen(`${gw.prefix}:audit:log`)).toBe(length);
    } finally {
      await gw.redis.del(head);
      await gw.redis.set(head, saved);
    }
    expect((await api(gw.url, 'GET', `/v1/packets/${packetId}`, TOKENS['dvla'])).status).toBe(200);
    expect((await api(gw.url, 'POST', '/v1/dossiers', FORCE, fixture('dossier-minimal.json'))).status).toBe(202);
  });

  it('a log cut short under the gateway stops all new work until someone has looked', async () => {
    const log = `${gw.prefix}:audit:log`;
    const last = (await gw.redis.rpop(log))!;
    try {
      expect503(await api(gw.url, 'POST', '/v1/dossiers', FORCE, fixture('dossier-minimal.json')));
      const res = await api(gw.url, 'GET', `/v1/packets/${packetId}`, TOKENS['dvla']);
      expect503(res);
      expect(res.json.error.message).toMatch(/does not match its chain head/);
      const ready = await api(gw.url, 'GET', '/readyz');
      expect(ready.status).toBe(503);
      expect(ready.json.checks.audit).toMatchObject({ ready: false, detail: expect.stringMatching(/every append is refused/) });
    } finally {
      await gw.redis.rpush(log, last);
    }
    const ready = await api(gw.url, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json.checks.audit.ready).toBe(true);
  });
});

describe('write access to the audit keys revoked by a Redis ACL', () => {
  let gw: TestGateway;
  let admin: Redis;
  const user = `cordon-test-${randomBytes(4).toString('hex')}`;
  const password = randomBytes(16).toString('hex');
  let prefix: string;

  beforeAll(async () => {
    admin = new Redis(REDIS_URL);
    prefix = `cordon-test-acl-${randomBytes(4).toString('hex')}`;
    await admin.call('ACL', 'SETUSER', user, 'reset', 'on', `>${password}`, '~*', '&*', '+@all');
    const url = new URL(REDIS_URL);
    url.username = user;
    url.password = password;
    gw = await startTestGateway({ redisUrl: url.toString(), redisPrefix: prefix });
  });
  afterAll(async () => {
    await gw?.stop();
    await admin.call('ACL', 'DELUSER', user);
    await admin.quit();
  });

  it('the gateway refuses new work and serves nothing while it may not write its audit trail', async () => {
    const ok = await api(gw.url, 'POST', '/v1/dossiers', FORCE, fixture('dossier-full.json'));
    expect(ok.status).toBe(202);
    await waitSettled(gw.url, ok.json.id);
    const packetId = (await api(gw.url, 'GET', '/v1/packets', TOKENS['hmrc'])).json.packets[0].id;

    // Every key of this gateway stays readable and writable, except the audit keys: read-only.
    await admin.call('ACL', 'SETUSER', user, 'resetkeys', `%R~${prefix}:audit:*`, `~${prefix}:[^a]*`, '~*:bull:*');
    try {
      const before = await storedDossiers(gw);
      expect503(await api(gw.url, 'POST', '/v1/dossiers', FORCE, fixture('dossier-minimal.json')));
      expect(await storedDossiers(gw)).toEqual(before);
      expect503(await api(gw.url, 'GET', `/v1/packets/${packetId}`, TOKENS['hmrc']));
      expect(await admin.hget(`${prefix}:packet:${packetId}`, 'state')).toBe('delivered');
    } finally {
      await admin.call('ACL', 'SETUSER', user, 'resetkeys', '~*');
    }
    expect((await api(gw.url, 'GET', `/v1/packets/${packetId}`, TOKENS['hmrc'])).status).toBe(200);
  });
});

describe('a gateway restarted on a trail that does not match its anchor', () => {
  it('starts on an intact trail, refuses to start on one cut back or wiped, and starts a new trail that says so once the operator accepts it', async () => {
    const first = await startTestGateway();
    const { prefix, stateDir, redis } = first;
    await first.close(); // the process stops; Redis and the state directory stay
    try {
      const again = await startTestGateway({ redisPrefix: prefix, stateDir });
      await again.close();
      await again.redis.quit();
      if (again.stateDir !== stateDir) await rm(again.stateDir, { recursive: true, force: true });

      // An intruder cuts the trail back to its first record and resets the head to match.
      const log = `${prefix}:audit:log`;
      const one = JSON.parse((await redis.lindex(log, 0))!);
      await redis.ltrim(log, 0, 0);
      await redis.set(`${prefix}:audit:head`, `1:${one.hash}:${Date.parse(one.at)}:0`);
      await expect(startTestGateway({ redisPrefix: prefix, stateDir })).rejects.toMatchObject({
        code: 'audit_unavailable',
        message: expect.stringMatching(/does not match the record anchored/),
      });
      // Wiped whole (a new or reset Redis): refused until the operator accepts a new trail, naming the
      // anchored seq; then a new trail starts, and its first record names the lost one.
      const anchored = JSON.parse(await readFile(path.join(stateDir, anchorName(prefix)), 'utf8'));
      await redis.del(log, `${prefix}:audit:head`);
      await expect(startTestGateway({ redisPrefix: prefix, stateDir })).rejects.toMatchObject({
        code: 'audit_unavailable',
        message: expect.stringContaining(`CORDON_AUDIT_ACCEPT_NEW_TRAIL=${anchored.seq}`),
      });
      await expect(startTestGateway({ redisPrefix: prefix, stateDir, auditAcceptNewTrail: anchored.seq + 1 })).rejects.toMatchObject({ code: 'audit_unavailable' });
      expect(await redis.llen(log)).toBe(0);
      const fresh = await startTestGateway({ redisPrefix: prefix, stateDir, auditAcceptNewTrail: anchored.seq });
      await fresh.close();
      await fresh.redis.quit();
      await rm(fresh.stateDir, { recursive: true, force: true });
      const first = JSON.parse((await redis.lindex(log, 0))!);
      expect(first).toMatchObject({ seq: 1, kind: 'alteration', action: 'audit.trail_restarted', previous: { seq: anchored.seq, hash: anchored.hash } });
    } finally {
      await deleteKeys(redis, prefix);
      await redis.quit();
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});
