/**
 * Hits live as long as the packets they hang on: a dossier's status record, deliveries, hits and links
 * are kept until 30 days after its last packet expires (children's services: 730 days), not 399 days
 * after receipt. Real gateway, real Redis, an injected clock for the sweeper.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateAuditKey, type AuditSigningKey } from '../../gateway/crypto/audit-key.js';
import { AuditLog } from '../../gateway/audit/log.js';
import { RedisAuditChain } from '../../gateway/store/audit.js';
import { RedisRetention } from '../../gateway/store/retention.js';
import { decryptAndVerify, parseArmoredPrivateKey, parseArmoredPublicKey } from '../../gateway/crypto/openpgp.js';
import { Mailbox } from '../../gateway/mailbox/mailbox.js';
import { RedisMailbox } from '../../gateway/store/mailbox.js';
import { Eraser } from '../../gateway/retention/erase.js';
import { DAY_MS, retentionKey, statusRecordDue } from '../../gateway/retention/schedule.js';
import { RetentionSweeper } from '../../gateway/retention/sweeper.js';
import { Keys } from '../../gateway/store/redis.js';
import { api, fixture, ROOT, startTestGateway, TOKENS, waitSettled, type TestGateway } from '../helpers/gateway.js';
import { gatewayRecordAuth } from '../helpers/records.js';

const FORCE = TOKENS['west-midlands-rocu']!;
let gw: TestGateway;
let keys: Keys;
/** The gateway's audit key: the sweeper here stands for another worker process of the same gateway. */
let auditKey: AuditSigningKey;
let id: string;
let receivedAt: string;
let packets: Record<string, { packetId: string; expiresAt: string }>;

function sweeperAt(at: number): RetentionSweeper {
  const now = () => new Date(at);
  const audit = new AuditLog(new RedisAuditChain(gw.redis, keys), { now, auditKey });
  return new RetentionSweeper(new RedisRetention(gw.redis, keys, gatewayRecordAuth(gw.config.stateDir)), new Eraser(new RedisRetention(gw.redis, keys, gatewayRecordAuth(gw.config.stateDir)), audit, now), { now });
}

beforeAll(async () => {
  gw = await startTestGateway();
  auditKey = await loadOrCreateAuditKey(gw.stateDir);
  keys = new Keys(gw.prefix);
  const res = await api(gw.url, 'POST', '/v1/dossiers', FORCE, fixture('dossier-full.json'));
  id = res.json.id;
  const status = await waitSettled(gw.url, id);
  receivedAt = status.receivedAt;
  packets = Object.fromEntries(status.deliveries.map((d: any) => [d.partner, d]));
  // Council housing reports a hit, so the dossier holds hits.
  const packetId = packets['council-housing']!.packetId;
  const pulled = await api(gw.url, 'GET', `/v1/packets/${packetId}`, TOKENS['council-housing']);
  const secret = await parseArmoredPrivateKey(await readFile(path.join(ROOT, 'test/fixtures/keys/council-housing.sec.asc'), 'utf8'));
  const gatewayKey = await parseArmoredPublicKey((await api(gw.url, 'GET', '/v1/keys/gateway')).text);
  const body = JSON.parse((await decryptAndVerify(pulled.text, secret, [gatewayKey])).data);
  const ref = body.dossier.subjects.find((s: any) => s.name.given === 'Daniel').id;
  const hit = await api(gw.url, 'POST', `/v1/packets/${packetId}/hits`, TOKENS['council-housing'], {
    schema: 'cordon.hits/v1',
    packet: packetId,
    hits: [{ subject: ref, kind: 'tenancy', detail: { postcode: 'CV6 5HX' }, matchedOn: ['name'], confidence: 'possible', partnerRecordRef: 'HSG-9' }],
  });
  expect(hit.status, hit.text).toBe(202);
});

afterAll(async () => {
  await gw?.stop();
});

describe('the status record and hits outlive the longest packet', () => {
  let due: number;

  it('are scheduled for 30 days after the children’s services packet (730 days) ends, with the store expiry a day later', async () => {
    expect(Date.parse(packets['childrens-services']!.expiresAt) - Date.parse(receivedAt)).toBeGreaterThan(729 * DAY_MS);
    due = statusRecordDue(new Date(receivedAt), Object.values(packets).map((p) => new Date(p.expiresAt))).getTime();
    expect(due).toBe(Date.parse(packets['childrens-services']!.expiresAt) + 30 * DAY_MS);

    expect(Number(await gw.redis.zscore(retentionKey(keys), `dossier|${id}`))).toBe(due);
    for (const key of [keys.dossier(id), keys.deliveries(id), keys.hits(id), keys.dossierLinks(id)]) {
      expect(await gw.redis.pexpiretime(key), key).toBe(due + DAY_MS);
    }
  });

  it('at day 731 the children’s services packet is erased; the status record and hits are still there', async () => {
    const result = await sweeperAt(Date.parse(packets['childrens-services']!.expiresAt) + DAY_MS).sweepOnce();
    expect(result.failed).toEqual([]);
    expect(result.erased).toContain(`packet|${packets['childrens-services']!.packetId}|${id}|childrens-services`);
    expect(result.erased).not.toContain(`dossier|${id}`);
    expect(await gw.redis.hlen(keys.hits(id))).toBe(1);
    expect((await api(gw.url, 'GET', `/v1/dossiers/${id}/hits`, FORCE)).status).toBe(200);
  });

  it('once the grace has passed, the record, deliveries, hits and links go together', async () => {
    const result = await sweeperAt(due + 60_000).sweepOnce();
    expect(result.erased).toEqual([`dossier|${id}`]);
    expect(await gw.redis.exists(keys.dossier(id), keys.deliveries(id), keys.hits(id), keys.dossierLinks(id))).toBe(0);
    expect((await api(gw.url, 'GET', `/v1/dossiers/${id}`, FORCE)).status).toBe(404);
  });

  it('a packet filed for a dossier whose record is gone writes nothing for that dossier', async () => {
    const ghost = `dos_${'e'.repeat(32)}`;
    const now = new Date();
    const expiresAt = new Date(now.getTime() + 730 * DAY_MS).toISOString();
    await new Mailbox(new RedisMailbox(gw.redis, keys, gatewayRecordAuth(gw.config.stateDir))).create([
      {
        packet: { id: 'pkt_ghost', partner: 'dvla', dossier: ghost, source: 'west-midlands', createdAt: now.toISOString(), expiresAt, state: 'delivered', message: 'x', refs: 'y' },
        delivery: { state: 'delivered', packetId: 'pkt_ghost', expiresAt, updatedAt: now.toISOString() },
      },
    ]);
    expect(await gw.redis.exists(keys.dossier(ghost), keys.hits(ghost), keys.dossierLinks(ghost))).toBe(0);
    expect(await gw.redis.zscore(retentionKey(keys), `dossier|${ghost}`)).toBeNull();
  });
});
