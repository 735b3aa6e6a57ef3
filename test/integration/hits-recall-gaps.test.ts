/**
 * Hits and recall together, on a real gateway (real Redis, real OpenPGP keys, HTTP):
 *   - hits on a packet whose dossier has been recalled are refused (409 dossier_recalled), nothing is
 *     stored or queued, and the refusal is audited (`hits.refused`);
 *   - hits on a recall notice (it lives in the same mailbox as packets) are refused
 *     (409 packet_is_recall_notice), nothing stored;
 *   - the source's status shows the recall: when, by which client, why, and per partner the notice
 *     and whether it was pulled, with every existing field unchanged and no free text.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../gateway/audit/log.js';
import { decryptAndVerify, parseArmoredPrivateKey, parseArmoredPublicKey } from '../../gateway/crypto/openpgp.js';
import { deriveKey } from '../../gateway/crypto/seal.js';
import type { StoredHit } from '../../gateway/hits/store.js';
import { RedisHitStore } from '../../gateway/store/hits.js';
import { Keys } from '../../gateway/store/redis.js';
import { api, dumpKeys, fixture, PARTNERS, ROOT, startTestGateway, TOKENS, waitSettled, type TestGateway } from '../helpers/gateway.js';
import { changeRecordAsGateway } from '../helpers/records.js';

const FORCE = TOKENS['west-midlands-rocu']!;
const NOTE = 'Mistaken identity: the man at Cedar Road is not our subject';
let gw: TestGateway;
let id: string;
let packets: Record<string, string>;
let councilRef: string;
let recallResult: any;

async function auditOf(): Promise<AuditRecord[]> {
  return (await gw.redis.lrange(`${gw.prefix}:audit:log`, 0, -1)).map((r) => JSON.parse(r) as AuditRecord);
}

/** Everything under the prefix but the audit trail, the rate limiter and BullMQ's stalled-job timer. */
async function snapshot(): Promise<Map<string, string>> {
  const all = await dumpKeys(gw.redis, gw.prefix);
  return new Map([...all].filter(([k]) => !k.includes(':audit:') && !k.includes(':rl:') && !k.endsWith(':stalled-check')));
}

function hitsBody(packet: string, partnerRecordRef: string) {
  return {
    schema: 'cordon.hits/v1',
    packet,
    hits: [{ subject: councilRef, kind: 'tenancy', detail: { line1: '18 Cedar Road', postcode: 'CV6 5HX' }, matchedOn: ['name'], confidence: 'confirmed', partnerRecordRef }],
  };
}

async function status(): Promise<any> {
  const res = await api(gw.url, 'GET', `/v1/dossiers/${id}`, FORCE);
  expect(res.status).toBe(200);
  return res.json;
}

beforeAll(async () => {
  gw = await startTestGateway();
  const res = await api(gw.url, 'POST', '/v1/dossiers', FORCE, fixture('dossier-full.json'));
  id = res.json.id;
  const settled = await waitSettled(gw.url, id);
  packets = Object.fromEntries(settled.deliveries.map((d: any) => [d.partner, d.packetId]));
  // Council housing and DVLA pull their packets (so the recall leaves them in place).
  const gatewayKey = await parseArmoredPublicKey((await api(gw.url, 'GET', '/v1/keys/gateway')).text);
  const pulled = await api(gw.url, 'GET', `/v1/packets/${packets['council-housing']}`, TOKENS['council-housing']);
  const secret = await parseArmoredPrivateKey(await readFile(path.join(ROOT, 'test/fixtures/keys/council-housing.sec.asc'), 'utf8'));
  const { data } = await decryptAndVerify(pulled.text, secret, [gatewayKey]);
  councilRef = JSON.parse(data).dossier.subjects.find((s: any) => s.name.given === 'Daniel').id;
  expect((await api(gw.url, 'GET', `/v1/packets/${packets.dvla}`, TOKENS['dvla'])).status).toBe(200);
  // One hit before the recall: accepted as usual.
  const before = await api(gw.url, 'POST', `/v1/packets/${packets['council-housing']}/hits`, TOKENS['council-housing'], hitsBody(packets['council-housing']!, 'HSG-1'));
  expect(before.status, before.text).toBe(202);
  expect(before.json.accepted).toBe(1);
});

afterAll(async () => {
  await gw?.stop();
});

describe('the status of a dossier that has not been recalled', () => {
  it('has no recall member', async () => {
    const s = await status();
    expect(Object.keys(s).sort()).toEqual(['deliveries', 'id', 'matches', 'policyRevision', 'receivedAt', 'state']);
    expect(s.state).toBe('processed');
  });
});

describe('after the dossier is recalled', () => {
  let statusBefore: any;

  beforeAll(async () => {
    statusBefore = await status();
    const res = await api(gw.url, 'POST', `/v1/dossiers/${id}/recall`, FORCE, { reason: 'withdrawn', note: NOTE });
    expect(res.status, res.text).toBe(200);
    recallResult = res.json;
  });

  it('the status shows when, by whom and why, and every partner sent a packet with its notice; existing fields unchanged', async () => {
    const s = await status();
    // Additive only: the same members as before, plus `recall`.
    expect(Object.keys(s).sort()).toEqual(['deliveries', 'id', 'matches', 'policyRevision', 'recall', 'receivedAt', 'state']);
    expect(s).toMatchObject({ id, state: 'withdrawn', receivedAt: statusBefore.receivedAt, policyRevision: statusBefore.policyRevision });
    expect(s.deliveries.map((d: any) => d.partner)).toEqual(statusBefore.deliveries.map((d: any) => d.partner));
    expect(s.recall).toEqual({
      reason: 'withdrawn',
      issuedAt: recallResult.recall.issuedAt,
      by: 'west-midlands-rocu',
      partners: PARTNERS.map((partner) => ({
        partner,
        packet: packets[partner],
        notice: recallResult.partners.find((o: any) => o.partner === partner).notice,
        noticeState: 'delivered',
      })),
    });
    // No free text: the recall's note travels only inside the sealed notices.
    expect(JSON.stringify(s)).not.toContain('Mistaken');
    expect(JSON.stringify(s)).not.toContain('Cedar');
  });

  it('hits on a packet of the recalled dossier are refused: 409 dossier_recalled, nothing stored or queued, audited', async () => {
    const packet = packets['council-housing']!;
    const auditBefore = (await auditOf()).length;
    const keysBefore = await snapshot();

    const res = await api(gw.url, 'POST', `/v1/packets/${packet}/hits`, TOKENS['council-housing'], hitsBody(packet, 'HSG-2'));
    expect(res.status).toBe(409);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.json.error).toMatchObject({
      code: 'dossier_recalled',
      message: expect.stringMatching(/recalled \("withdrawn"\).*nothing was stored/),
      details: [{ path: '', message: 'the dossier was recalled', reason: 'withdrawn', recalledAt: recallResult.recall.issuedAt }],
      requestId: expect.any(String),
    });
    // Refused before the body is even read: a signed submission is refused the same way.
    const armored = await api(gw.url, 'POST', `/v1/packets/${packet}/hits`, TOKENS['council-housing'], '-----BEGIN PGP MESSAGE-----\n\nxx\n-----END PGP MESSAGE-----\n', {
      'content-type': 'application/pgp-encrypted',
    });
    expect(armored.status).toBe(409);
    expect(armored.json.error.code).toBe('dossier_recalled');

    // Nothing stored, nothing queued: every key as it was (the hit from before the recall alone).
    expect(await snapshot()).toEqual(keysBefore);
    expect(await gw.redis.hlen(`${gw.prefix}:dossier:${id}:hits`)).toBe(1);

    const added = (await auditOf()).slice(auditBefore);
    expect(added.map((r) => r.action)).toEqual(['hits.refused', 'hits.refused']);
    expect(added[0]).toMatchObject({
      kind: 'rejection',
      actor: 'council-housing',
      partner: 'council-housing',
      packet,
      dossier: id,
      recipient: 'west-midlands',
      reason: 'dossier_recalled',
    });

    // Another partner still gets the plain 404 of a packet that does not exist.
    const other = await api(gw.url, 'POST', `/v1/packets/${packet}/hits`, TOKENS['dvla'], hitsBody(packet, 'X'));
    expect(other.status).toBe(404);
    expect(other.json.error.code).toBe('not_found');
  });

  it('hits on a recall notice are refused: 409 packet_is_recall_notice naming the packet it recalls; nothing stored', async () => {
    const notice = recallResult.partners.find((o: any) => o.partner === 'council-housing').notice as string;
    const keysBefore = await snapshot();
    const res = await api(gw.url, 'POST', `/v1/packets/${notice}/hits`, TOKENS['council-housing'], hitsBody(notice, 'HSG-3'));
    expect(res.status).toBe(409);
    expect(res.json.error).toMatchObject({
      code: 'packet_is_recall_notice',
      message: expect.stringContaining('is a recall notice, not a dossier packet'),
      details: [{ path: '', message: 'is a recall notice', recalls: packets['council-housing'] }],
    });
    expect(await snapshot()).toEqual(keysBefore);
    // Another partner's notice answers like nothing at all.
    const other = await api(gw.url, 'POST', `/v1/packets/${notice}/hits`, TOKENS['dvla'], hitsBody(notice, 'X'));
    const missing = await api(gw.url, 'POST', `/v1/packets/pkt_${'a'.repeat(52)}/hits`, TOKENS['dvla'], hitsBody(notice, 'X'));
    expect(other.status).toBe(404);
    expect({ ...other.json.error, requestId: '' }).toEqual({ ...missing.json.error, requestId: '' });
  });

  it('the status follows each notice: pulled, acknowledged, erased, not sent, or not yet recorded', async () => {
    const noticeOf = (p: string) => recallResult.partners.find((o: any) => o.partner === p).notice as string;
    expect((await api(gw.url, 'GET', `/v1/packets/${noticeOf('dvla')}`, TOKENS['dvla'])).status).toBe(200);
    expect((await api(gw.url, 'GET', `/v1/packets/${noticeOf('hmrc')}`, TOKENS['hmrc'])).status).toBe(200);
    expect((await api(gw.url, 'POST', `/v1/packets/${noticeOf('hmrc')}/ack`, TOKENS['hmrc'])).status).toBe(200);
    // Simulated: one notice erased at the end of its retention, one partner whose key was unusable,
    // and one partner the recall had not reached yet (interrupted).
    await gw.redis.del(`${gw.prefix}:packet:${noticeOf('dwp-benefits')}`);
    await changeRecordAsGateway(gw, 'dossier', id, { set: { 'notice:immigration-enforcement': JSON.stringify({ problem: 'recipient_key_invalid' }) }, del: ['notice:childrens-services'] });

    const by = Object.fromEntries((await status()).recall.partners.map((p: any) => [p.partner, p]));
    expect(by.dvla).toEqual({ partner: 'dvla', packet: packets.dvla, notice: noticeOf('dvla'), noticeState: 'retrieved', retrievedAt: expect.any(String) });
    expect(by.hmrc).toEqual({
      partner: 'hmrc',
      packet: packets.hmrc,
      notice: noticeOf('hmrc'),
      noticeState: 'acknowledged',
      retrievedAt: expect.any(String),
      acknowledgedAt: expect.any(String),
    });
    expect(by['dwp-benefits']).toEqual({ partner: 'dwp-benefits', packet: packets['dwp-benefits'], notice: noticeOf('dwp-benefits'), noticeState: 'expired' });
    expect(by['immigration-enforcement']).toEqual({ partner: 'immigration-enforcement', packet: packets['immigration-enforcement'], noticeState: 'not_sent', problem: 'recipient_key_invalid' });
    expect(by['childrens-services']).toEqual({ partner: 'childrens-services', packet: packets['childrens-services'], noticeState: 'pending' });
    expect(by['council-housing'].noticeState).toBe('delivered');

    // Sending the same recall again completes it, and the status says so.
    expect((await api(gw.url, 'POST', `/v1/dossiers/${id}/recall`, FORCE, { reason: 'withdrawn' })).status).toBe(200);
    const again = Object.fromEntries((await status()).recall.partners.map((p: any) => [p.partner, p]));
    expect(again['childrens-services']).toMatchObject({ notice: noticeOf('childrens-services'), noticeState: 'delivered' });
    expect(again['immigration-enforcement']).toMatchObject({ notice: noticeOf('immigration-enforcement'), noticeState: 'delivered' });
    expect(again['dwp-benefits']).toMatchObject({ notice: noticeOf('dwp-benefits'), noticeState: 'delivered' });
    expect(again.hmrc.noticeState).toBe('acknowledged');
  });

  it('a recall landing while hits are being stored: the store refuses them atomically', async () => {
    const keys = new Keys(gw.prefix);
    const store = new RedisHitStore(gw.redis, keys, deriveKey(Buffer.alloc(32, 7), 'seal'), () => deriveKey(Buffer.alloc(32, 7), 'mac'));
    const hit: StoredHit = {
      id: 'hit_race',
      subject: 'S1',
      partner: 'council-housing',
      packet: packets['council-housing']!,
      kind: 'tenancy',
      detail: { postcode: 'CV6 5HX' },
      matchedOn: ['name'],
      confidence: 'possible',
      receivedAt: new Date().toISOString(),
      agreement: { reference: 'ISA-TEST' },
    };
    await expect(store.add(id, 'west-midlands', [hit], ['mac1'], { refuseRecalled: true })).rejects.toMatchObject({ code: 'dossier_recalled' });
    expect(await gw.redis.hexists(keys.hits(id), 'hit_race')).toBe(0);
    expect(await gw.redis.exists(keys.linkIndex('west-midlands', 'mac1'))).toBe(0);
    // Without the flag the store takes them as before (both partners' and relayed hits ask for the refusal:
    // see exchange-relay.test.ts for the relayed path).
    expect(await store.add(id, 'west-midlands', [hit], [])).toEqual({ added: 1, total: 2 });
  });
});
