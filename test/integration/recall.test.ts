/**
 * Rectification: the force recalls a dossier it sent. Every partner that was sent a packet finds a
 * recall notice in its mailbox (encrypted to it, signed by the gateway), packets not yet pulled are
 * erased, the dossier shows as withdrawn, and the audit has the recall with its reason, each notice
 * and each erasure. The free-text note travels only inside the notices.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../gateway/audit/log.js';
import { decryptAndVerify, parseArmoredPrivateKey, parseArmoredPublicKey } from '../../gateway/crypto/openpgp.js';
import { api, dumpKeys, fixture, PARTNERS, ROOT, startTestGateway, TOKENS, waitSettled, type TestGateway } from '../helpers/gateway.js';

const FORCE = TOKENS['west-midlands-rocu']!;
const NOTE = 'Subject Daniel Okafor was confused with another man of the same name';
let gw: TestGateway;
let id: string;
let packets: Record<string, string>;
let result: any;

async function auditOf(): Promise<AuditRecord[]> {
  return (await gw.redis.lrange(`${gw.prefix}:audit:log`, 0, -1)).map((r) => JSON.parse(r) as AuditRecord);
}

async function openNotice(partner: string, armored: string): Promise<any> {
  const secret = await parseArmoredPrivateKey(await readFile(path.join(ROOT, `test/fixtures/keys/${partner}.sec.asc`), 'utf8'));
  const gatewayKey = await parseArmoredPublicKey((await api(gw.url, 'GET', '/v1/keys/gateway')).text);
  const { data } = await decryptAndVerify(armored, secret, [gatewayKey]);
  return JSON.parse(data);
}

beforeAll(async () => {
  gw = await startTestGateway();
  const res = await api(gw.url, 'POST', '/v1/dossiers', FORCE, fixture('dossier-full.json'));
  id = res.json.id;
  const status = await waitSettled(gw.url, id);
  packets = Object.fromEntries(status.deliveries.map((d: any) => [d.partner, d.packetId]));
  for (const p of ['dvla', 'council-housing']) expect((await api(gw.url, 'GET', `/v1/packets/${packets[p]}`, TOKENS[p])).status).toBe(200);
});
afterAll(async () => {
  await gw?.stop();
});

describe('POST /v1/dossiers/:id/recall', () => {
  it('refuses other roles, unknown dossiers and bad requests, changing nothing', async () => {
    const partner = await api(gw.url, 'POST', `/v1/dossiers/${id}/recall`, TOKENS['dvla'], { reason: 'withdrawn' });
    expect(partner.status).toBe(403);
    const missing = await api(gw.url, 'POST', `/v1/dossiers/dos_${'0'.repeat(32)}/recall`, FORCE, { reason: 'withdrawn' });
    expect(missing.status).toBe(404);
    const bad = await api(gw.url, 'POST', `/v1/dossiers/${id}/recall`, FORCE, { reason: 'oops', note: 'x'.repeat(501), extra: 1 });
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe('schema_violation');
    expect(bad.json.error.details.map((d: any) => d.path).sort()).toEqual(['/extra', '/note', '/reason']);
    expect((await api(gw.url, 'POST', `/v1/dossiers/${id}/recall`, FORCE, 'reason=withdrawn', { 'content-type': 'text/plain' })).status).toBe(415);
    expect((await api(gw.url, 'GET', `/v1/dossiers/${id}/recall`, FORCE)).status).toBe(405);
    expect((await api(gw.url, 'GET', `/v1/dossiers/${id}`, FORCE)).json.state).toBe('processed');
    expect((await auditOf()).some((r) => r.action === 'dossier.recalled')).toBe(false);
  });

  it('withdraws the dossier: a notice for every partner sent a packet, unretrieved packets erased', async () => {
    const res = await api(gw.url, 'POST', `/v1/dossiers/${id}/recall`, FORCE, { reason: 'withdrawn', note: NOTE });
    expect(res.status).toBe(200);
    result = res.json;
    expect(result).toMatchObject({ id, state: 'withdrawn', recall: { reason: 'withdrawn', issuedAt: expect.any(String) }, replayed: false });
    const by = Object.fromEntries(result.partners.map((o: any) => [o.partner, o]));
    expect(Object.keys(by).sort()).toEqual(PARTNERS);
    for (const p of PARTNERS) {
      expect(by[p]).toMatchObject({ packet: packets[p], notice: expect.stringMatching(/^pkt_/) });
      expect(by[p].erased).toBe(!['dvla', 'council-housing'].includes(p));
    }

    const status = await api(gw.url, 'GET', `/v1/dossiers/${id}`, FORCE);
    expect(status.json.state).toBe('withdrawn');
    const states = Object.fromEntries(status.json.deliveries.map((d: any) => [d.partner, d]));
    expect(states.dvla.state).toBe('retrieved');
    expect(states['council-housing'].state).toBe('retrieved');
    expect(states.hmrc).toMatchObject({ state: 'expired', reason: 'recalled', packetId: packets.hmrc });

    // Erased packets are gone for good; retrieved ones stay until their retention ends.
    expect((await api(gw.url, 'GET', `/v1/packets/${packets.hmrc}`, TOKENS['hmrc'])).status).toBe(404);
    expect(await gw.redis.exists(`${gw.prefix}:packet:${packets.hmrc}`)).toBe(0);
    expect(await gw.redis.exists(`${gw.prefix}:packet:${packets.dvla}`)).toBe(1);
  });

  it('each partner lists the notice as type "recall" and reads it: signed by the gateway, encrypted to it', async () => {
    for (const p of ['dvla', 'hmrc']) {
      const list = await api(gw.url, 'GET', '/v1/packets', TOKENS[p]);
      const notices = list.json.packets.filter((x: any) => x.type === 'recall');
      expect(notices).toEqual([expect.objectContaining({ id: result.partners.find((o: any) => o.partner === p).notice, recalls: packets[p], state: 'delivered' })]);
      const got = await api(gw.url, 'GET', `/v1/packets/${notices[0].id}`, TOKENS[p]);
      expect(got.status).toBe(200);
      expect(got.headers.get('content-type')).toMatch(/^application\/pgp-encrypted/);
      const body = await openNotice(p, got.text);
      expect(body).toEqual({
        recall: { id: notices[0].id, packet: packets[p], reason: 'withdrawn', issuedAt: result.recall.issuedAt, action: expect.stringMatching(/stop using it/), note: NOTE },
      });
      // Another partner cannot read it, and gets the same 404 as for nothing at all.
      expect((await api(gw.url, 'GET', `/v1/packets/${notices[0].id}`, TOKENS['dwp-benefits'])).status).toBe(404);
      expect((await api(gw.url, 'POST', `/v1/packets/${notices[0].id}/ack`, TOKENS[p])).json).toMatchObject({ state: 'acknowledged', type: 'recall' });
    }
    // Reading a notice does not disturb the delivery the force sees.
    const states = Object.fromEntries((await api(gw.url, 'GET', `/v1/dossiers/${id}`, FORCE)).json.deliveries.map((d: any) => [d.partner, d]));
    expect(states.dvla).toMatchObject({ state: 'retrieved', packetId: packets.dvla });
    expect(states.hmrc).toMatchObject({ state: 'expired', packetId: packets.hmrc });
  });

  it('is audited with its reason, each notice and each erasure, and the note is stored nowhere in plaintext', async () => {
    const audit = (await auditOf()).filter((r) => r.dossier === id);
    const recalled = audit.filter((r) => r.action === 'dossier.recalled');
    expect(recalled).toEqual([expect.objectContaining({ kind: 'alteration', actor: 'west-midlands-rocu', reason: 'withdrawn', recipients: PARTNERS })]);
    const i = audit.indexOf(recalled[0]!);
    const after = audit.slice(i + 1);
    expect(after.filter((r) => r.action === 'recall.notice_sent').map((r) => r.recipient).sort()).toEqual(PARTNERS);
    expect(after.filter((r) => r.action === 'recall.notice_sent').every((r) => r.kind === 'disclosure' && r.reason === 'withdrawn')).toBe(true);
    const erased = after.filter((r) => r.action === 'packet.erased');
    expect(erased.map((r) => r.recipient).sort()).toEqual(PARTNERS.filter((p) => !['dvla', 'council-housing'].includes(p)));
    expect(erased.every((r) => r.reason === 'recalled' && r.kind === 'erasure')).toBe(true);
    const dump = [...(await dumpKeys(gw.redis, gw.prefix)).values()].join('\n');
    expect(dump).not.toContain('confused with another man');
    expect(dump).not.toContain('Okafor');
  });

  it('sent again for the same reason it completes without duplicates and changes nothing recorded; another reason is refused', async () => {
    const statusBefore = (await api(gw.url, 'GET', `/v1/dossiers/${id}`, FORCE)).json.recall;
    const recordsBefore = (await auditOf()).filter((r) => r.dossier === id).length;
    await new Promise((r) => setTimeout(r, 5)); // a repeat at another time, by another client of the force
    const again = await api(gw.url, 'POST', `/v1/dossiers/${id}/recall`, FORCE, { reason: 'withdrawn' });
    expect(again.status).toBe(200);
    expect(again.json.replayed).toBe(true);
    expect(again.json.recall).toEqual(result.recall); // the first recall's time
    expect((await api(gw.url, 'GET', `/v1/dossiers/${id}`, FORCE)).json.recall).toEqual(statusBefore);
    expect(statusBefore).toMatchObject({ issuedAt: result.recall.issuedAt, by: 'west-midlands-rocu' });
    const added = (await auditOf()).filter((r) => r.dossier === id).slice(recordsBefore);
    expect(added.filter((r) => r.action === 'dossier.recalled')).toEqual([]);
    expect(again.json.partners.map((o: any) => o.notice)).toEqual(result.partners.map((o: any) => o.notice));
    expect(again.json.partners.every((o: any) => o.erased === false)).toBe(true);
    const list = await api(gw.url, 'GET', '/v1/packets', TOKENS['hmrc']);
    expect(list.json.packets.filter((x: any) => x.type === 'recall')).toHaveLength(1);
    const other = await api(gw.url, 'POST', `/v1/dossiers/${id}/recall`, FORCE, { reason: 'corrected' });
    expect(other.status).toBe(409);
    expect(other.json.error.code).toBe('dossier_recalled');
  });

  it('a dossier still being delivered cannot be recalled yet (409), and nothing changes', async () => {
    const api1 = await startTestGateway({ role: 'api' });
    try {
      const res = await api(api1.url, 'POST', '/v1/dossiers', FORCE, fixture('dossier-minimal.json'));
      const refused = await api(api1.url, 'POST', `/v1/dossiers/${res.json.id}/recall`, FORCE, { reason: 'corrected' });
      expect(refused.status).toBe(409);
      expect(refused.json.error.code).toBe('dossier_not_settled');
      expect((await api(api1.url, 'GET', `/v1/dossiers/${res.json.id}`, FORCE)).json.state).toBe('accepted');
    } finally {
      await api1.stop();
    }
  });
});
