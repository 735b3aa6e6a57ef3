/**
 * Retention, on a real gateway and Redis with an injected clock: packets are erased when their
 * agreement's retention ends (retrieved or not), the source sees `expired`, the dossier's status record
 * and hits go when theirs ends, each erasure is audited with ids only, and nothing of it stays in Redis.
 * A gateway-wide packet TTL shorter than the agreements' (`CORDON_PACKET_TTL_DAYS`) wins.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog, type AuditRecord } from '../../gateway/audit/log.js';
import { RedisAuditChain } from '../../gateway/store/audit.js';
import { RedisRetention } from '../../gateway/store/retention.js';
import { loadConfig } from '../../gateway/config/env.js';
import { Eraser } from '../../gateway/retention/erase.js';
import { DAY_MS, retentionKey } from '../../gateway/retention/schedule.js';
import { RetentionSweeper } from '../../gateway/retention/sweeper.js';
import { Keys } from '../../gateway/store/redis.js';
import { api, dumpKeys, fixture, PARTNERS, ROOT, startTestGateway, TOKENS, waitSettled, type TestGateway } from '../helpers/gateway.js';
import { gatewayRecordAuth } from '../helpers/records.js';

const FORCE = TOKENS['west-midlands-rocu']!;

function sweeperAt(gw: TestGateway, now: () => Date): RetentionSweeper {
  const keys = new Keys(gw.prefix);
  const audit = new AuditLog(new RedisAuditChain(gw.redis, keys), { now });
  return new RetentionSweeper(new RedisRetention(gw.redis, keys, gatewayRecordAuth(gw.config.stateDir)), new Eraser(new RedisRetention(gw.redis, keys, gatewayRecordAuth(gw.config.stateDir)), audit, now), { now });
}

async function auditOf(gw: TestGateway): Promise<AuditRecord[]> {
  return (await gw.redis.lrange(`${gw.prefix}:audit:log`, 0, -1)).map((r) => JSON.parse(r) as AuditRecord);
}

describe('retention by the agreements', () => {
  let gw: TestGateway;
  let id: string;
  let packets: Record<string, { packetId: string; expiresAt: string }>;

  beforeAll(async () => {
    gw = await startTestGateway();
    const res = await api(gw.url, 'POST', '/v1/dossiers', FORCE, fixture('dossier-full.json'));
    id = res.json.id;
    const status = await waitSettled(gw.url, id);
    packets = Object.fromEntries(status.deliveries.map((d: any) => [d.partner, d]));
    // DVLA (90 days) pulls its packet; HMRC (365 days) does not.
    expect((await api(gw.url, 'GET', `/v1/packets/${packets.dvla!.packetId}`, TOKENS['dvla'])).status).toBe(200);
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('schedules every packet at its expiry and the status record at the end of its own retention', async () => {
    const due = await gw.redis.zrange(retentionKey(new Keys(gw.prefix)), '0', '-1', 'WITHSCORES');
    const schedule = new Map<string, number>();
    for (let i = 0; i < due.length; i += 2) schedule.set(due[i]!, Number(due[i + 1]));
    for (const p of PARTNERS) {
      expect(schedule.get(`packet|${packets[p]!.packetId}|${id}|${p}`)).toBe(Date.parse(packets[p]!.expiresAt));
    }
    expect(schedule.get(`dossier|${id}`)).toBeGreaterThan(Date.now() + 390 * DAY_MS);
    // Redis's own expiry is only a backstop, a little after the sweeper's turn.
    const pexpire = await gw.redis.pexpiretime(`${gw.prefix}:packet:${packets.dvla!.packetId}`);
    expect(pexpire).toBeGreaterThan(Date.parse(packets.dvla!.expiresAt));
  });

  it('nothing is erased before it is due', async () => {
    const result = await sweeperAt(gw, () => new Date(Date.now() + 89 * DAY_MS)).sweepOnce();
    expect(result).toEqual({ swept: true, erased: [], failed: [] });
  });

  it('after 91 days the DVLA packet (retrieved) is erased and audited; the others stay', async () => {
    const result = await sweeperAt(gw, () => new Date(Date.now() + 91 * DAY_MS)).sweepOnce();
    expect(result.erased).toEqual([`packet|${packets.dvla!.packetId}|${id}|dvla`]);
    expect(await gw.redis.exists(`${gw.prefix}:packet:${packets.dvla!.packetId}`)).toBe(0);
    expect(await gw.redis.zscore(`${gw.prefix}:mailbox:dvla`, packets.dvla!.packetId)).toBeNull();
    expect(await gw.redis.exists(`${gw.prefix}:packet:${packets.hmrc!.packetId}`)).toBe(1);

    expect((await api(gw.url, 'GET', `/v1/packets/${packets.dvla!.packetId}`, TOKENS['dvla'])).status).toBe(404);
    expect((await api(gw.url, 'GET', '/v1/packets', TOKENS['dvla'])).json.packets).toEqual([]);
    const status = await api(gw.url, 'GET', `/v1/dossiers/${id}`, FORCE);
    const states = Object.fromEntries(status.json.deliveries.map((d: any) => [d.partner, d]));
    expect(states.dvla).toMatchObject({ state: 'expired', reason: 'retention_expired', packetId: packets.dvla!.packetId });
    expect(states.hmrc.state).toBe('delivered');

    const erasure = (await auditOf(gw)).filter((r) => r.action === 'packet.erased');
    expect(erasure).toEqual([
      expect.objectContaining({ kind: 'erasure', packet: packets.dvla!.packetId, dossier: id, recipient: 'dvla', reason: 'retention_expired', state: 'retrieved' }),
    ]);
  });

  it('two sweepers at once: one sweeps, the other stands back (the 180-day packets are due)', async () => {
    const at = () => new Date(Date.now() + 200 * DAY_MS);
    const [a, b] = await Promise.all([sweeperAt(gw, at).sweepOnce(), sweeperAt(gw, at).sweepOnce()]);
    expect([a.swept, b.swept].sort()).toEqual([false, true]);
    expect([...a.erased, ...b.erased].map((m) => m.split('|')[3]).sort()).toEqual(['council-housing', 'immigration-enforcement']);
    expect(await gw.redis.exists(`${gw.prefix}:retention:lock`)).toBe(0);
  });

  it('after every retention has ended, every packet, the status record, deliveries and hits are gone, each erasure audited', async () => {
    await gw.redis.hset(`${gw.prefix}:dossier:${id}:hits`, 'hit_x', 'v1.sealed');
    const result = await sweeperAt(gw, () => new Date(Date.now() + 800 * DAY_MS)).sweepOnce();
    expect(result.failed).toEqual([]);
    expect(result.erased).toContain(`dossier|${id}`);
    for (const p of PARTNERS) expect(await gw.redis.exists(`${gw.prefix}:packet:${packets[p]!.packetId}`)).toBe(0);
    // Only the audit trail (ids) and BullMQ's record of the finished job (the id alone) still name it.
    const left = [...(await dumpKeys(gw.redis, gw.prefix)).keys()].filter((k) => (k.includes(id) || k.includes(':packet:')) && !k.includes(':audit:') && !k.includes(':bull:'));
    expect(left).toEqual([]);
    expect((await api(gw.url, 'GET', `/v1/dossiers/${id}`, FORCE)).status).toBe(404);
    expect(await gw.redis.zcard(retentionKey(new Keys(gw.prefix)))).toBe(0);

    const audit = await auditOf(gw);
    expect(audit.filter((r) => r.action === 'packet.erased').map((r) => r.recipient).sort()).toEqual(PARTNERS);
    expect(audit.filter((r) => r.action === 'dossier.erased')).toEqual([
      expect.objectContaining({ kind: 'erasure', dossier: id, reason: 'retention_expired', erased: ['status', 'deliveries', 'hits', 'links'] }),
    ]);
  });
});

describe('a packet TTL shorter than the agreements', () => {
  let gw: TestGateway;
  afterAll(async () => {
    await gw?.stop();
  });

  it('CORDON_PACKET_TTL_DAYS is read and checked', () => {
    const env = { CORDON_POLICY_DIR: path.join(ROOT, 'policies') };
    expect(loadConfig(env, ROOT).packetTtlDays).toBeUndefined();
    expect(loadConfig({ ...env, CORDON_PACKET_TTL_DAYS: '30' }, ROOT).packetTtlDays).toBe(30);
    expect(() => loadConfig({ ...env, CORDON_PACKET_TTL_DAYS: '-1' }, ROOT)).toThrow(/CORDON_PACKET_TTL_DAYS/);
    expect(() => loadConfig({ ...env, CORDON_PACKET_TTL_DAYS: 'soon' }, ROOT)).toThrow(/CORDON_PACKET_TTL_DAYS/);
  });

  it('packets expire after the TTL and the sweeper (real clock) erases them', async () => {
    const ttlDays = 1.5 / 86_400; // a second and a half
    gw = await startTestGateway({ packetTtlDays: ttlDays });
    const res = await api(gw.url, 'POST', '/v1/dossiers', FORCE, fixture('dossier-full.json'));
    const status = await waitSettled(gw.url, res.json.id);
    for (const d of status.deliveries) {
      const life = Date.parse(d.expiresAt) - Date.parse(d.updatedAt);
      expect(life).toBeGreaterThan(1000);
      expect(life).toBeLessThan(2000);
    }
    await new Promise((r) => setTimeout(r, 1800));
    const expired = await api(gw.url, 'GET', `/v1/dossiers/${res.json.id}`, FORCE);
    expect(expired.json.deliveries.every((d: any) => d.state === 'expired')).toBe(true);
    const swept = await sweeperAt(gw, () => new Date()).sweepOnce();
    expect(swept.erased.filter((m) => m.startsWith('packet|'))).toHaveLength(PARTNERS.length);
    for (const d of status.deliveries) expect(await gw.redis.exists(`${gw.prefix}:packet:${d.packetId}`)).toBe(0);
    expect((await auditOf(gw)).filter((r) => r.action === 'packet.erased')).toHaveLength(PARTNERS.length);
  });
});
