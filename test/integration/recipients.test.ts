/**
 * Recipients chosen per dossier, against a real gateway (real Redis, OpenPGP keys, HTTP) on the sample
 * policies: a vehicles-only request reaches DVLA and, under its statutory condition, children's
 * services, and nobody else; an unknown partner id is refused with its path and nothing stored; a
 * deferral is audited; a hit of a kind the dossier did not ask for is refused.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decryptAndVerify, parseArmoredPrivateKey, parseArmoredPublicKey } from '../../gateway/crypto/openpgp.js';
import { api, fixture, ROOT, startTestGateway, TOKENS, waitSettled, type TestGateway } from '../helpers/gateway.js';

const FORCE = TOKENS['west-midlands-rocu']!;
let gw: TestGateway;
let gatewayKey: string;

function dossier(requests: Record<string, unknown> | undefined, reference: string): Record<string, unknown> {
  const d = structuredClone(fixture('dossier-full.json'));
  d.reference = reference;
  if (requests === undefined) delete d.requests;
  else d.requests = requests;
  return d;
}

async function auditRecords(): Promise<Array<Record<string, any>>> {
  return (await gw.redis.lrange(`${gw.prefix}:audit:log`, 0, -1)).map((r) => JSON.parse(r) as Record<string, any>);
}

/** Every key the dossier store holds (records, deliveries, idempotency keys). */
async function storedDossierKeys(): Promise<string[]> {
  return (await gw.redis.keys(`${gw.prefix}:*`)).filter((k) => k.includes(':dossier:') || k.includes(':idem:')).sort();
}

async function packetOf(partner: string, packetId: string): Promise<any> {
  const res = await api(gw.url, 'GET', `/v1/packets/${packetId}`, TOKENS[partner]);
  expect(res.status).toBe(200);
  const secret = await parseArmoredPrivateKey(await readFile(path.join(ROOT, `test/fixtures/keys/${partner}.sec.asc`), 'utf8'));
  return JSON.parse((await decryptAndVerify(res.text, secret, [await parseArmoredPublicKey(gatewayKey)])).data);
}

beforeAll(async () => {
  gw = await startTestGateway();
  gatewayKey = (await api(gw.url, 'GET', '/v1/keys/gateway')).text;
});
afterAll(async () => {
  await gw?.stop();
});

describe('a vehicles-only dossier', () => {
  let id: string;
  let accepted: any;

  beforeAll(async () => {
    const res = await api(gw.url, 'POST', '/v1/dossiers', FORCE, dossier({ checks: ['vehicles'] }, 'WMP-OCG-2026-70001'));
    expect(res.status, res.text).toBe(202);
    accepted = res.json;
    id = res.json.id;
  });

  it('answers the recipients with why, and the partners not sent', () => {
    expect(accepted.partners).toEqual(['childrens-services', 'dvla']);
    expect(accepted.recipients).toEqual([
      { partner: 'childrens-services', why: { statutory: { name: 'child-at-risk', reason: expect.stringContaining('Children Act 2004 s.11'), subjects: expect.any(Number) } } },
      { partner: 'dvla', why: { requested: { checks: ['vehicles'], kinds: ['vehicle'] } } },
    ]);
    expect(accepted.notSent.map((n: any) => [n.partner, n.state])).toEqual([
      ['council-housing', 'not_requested'],
      ['dwp-benefits', 'not_requested'],
      ['hmrc', 'not_requested'],
      ['immigration-enforcement', 'not_requested'],
      ['riverside-homes', 'not_requested'],
    ]);
    for (const n of accepted.notSent) expect(n.reason).toContain('vehicles');
  });

  it('reaches DVLA and children\'s services only; the others show not_requested, with nothing in their mailboxes', async () => {
    const status = await waitSettled(gw.url, id);
    const byPartner = Object.fromEntries(status.deliveries.map((d: any) => [d.partner, d]));
    expect(Object.keys(byPartner).sort()).toEqual(['childrens-services', 'council-housing', 'dvla', 'dwp-benefits', 'hmrc', 'immigration-enforcement', 'riverside-homes']);
    expect(byPartner.dvla.state).toBe('delivered');
    expect(byPartner['childrens-services'].state).toBe('delivered');
    expect(byPartner['childrens-services'].why.statutory.reason).toContain('Children Act 2004 s.11');
    for (const p of ['council-housing', 'dwp-benefits', 'hmrc', 'immigration-enforcement', 'riverside-homes']) {
      expect(byPartner[p].state).toBe('not_requested');
      expect(byPartner[p].packetId).toBeUndefined();
      const mailbox = await api(gw.url, 'GET', '/v1/packets', TOKENS[p]);
      expect(mailbox.status).toBe(200);
      expect(mailbox.json.packets).toEqual([]); // this is the first dossier this gateway received
    }
    const dvla = await packetOf('dvla', byPartner.dvla.packetId);
    expect(dvla.dossier.subjects[0].vehicles[0].vrm).toBe('AB12 CDE');
  });

  it('audits why each partner was not sent, and the statutory delivery with its reason', async () => {
    const mine = (await auditRecords()).filter((r) => r.dossier === id);
    const notRequested = mine.filter((r) => r.action === 'delivery.not_requested');
    expect(notRequested.map((r) => r.recipient).sort()).toEqual(['council-housing', 'dwp-benefits', 'hmrc', 'immigration-enforcement', 'riverside-homes']);
    for (const r of notRequested) {
      expect(r.kind).toBe('decision');
      expect(r.checks).toEqual(['vehicles']);
    }
    const statutory = mine.filter((r) => r.action === 'delivery.statutory');
    expect(statutory).toEqual([expect.objectContaining({ kind: 'decision', recipient: 'childrens-services', statutory: 'child-at-risk', legalReason: expect.stringContaining('Children Act 2004 s.11') })]);
    expect(mine.filter((r) => r.action === 'packet.created').map((r) => r.recipient).sort()).toEqual(['childrens-services', 'dvla']);
  });

  it('refuses a hit of a kind the dossier did not ask DVLA for (422, with its path), and takes one it did', async () => {
    const status = await waitSettled(gw.url, id);
    const packetId = status.deliveries.find((d: any) => d.partner === 'dvla').packetId;
    const packet = await packetOf('dvla', packetId);
    const ref = packet.dossier.subjects[0].id;
    const hit = (kind: string) => ({ subject: ref, kind, detail: { vrm: 'AB12 CDE' }, matchedOn: ['name'], confidence: 'confirmed' });
    const refused = await api(gw.url, 'POST', `/v1/packets/${packetId}/hits`, TOKENS.dvla, { schema: 'cordon.hits/v1', packet: packetId, hits: [hit('vehicle'), hit('address')] });
    expect(refused.status, refused.text).toBe(422);
    expect(refused.json.error.code).toBe('hit_kind_not_permitted');
    expect(refused.json.error.details).toEqual([expect.objectContaining({ path: '/hits/1/kind', message: expect.stringContaining('not asked') })]);
    expect(await gw.redis.exists(`${gw.prefix}:dossier:${id}:hits`)).toBe(0);
    expect((await auditRecords()).filter((r) => r.dossier === id && r.action === 'hits.received')).toEqual([]);
    const taken = await api(gw.url, 'POST', `/v1/packets/${packetId}/hits`, TOKENS.dvla, { schema: 'cordon.hits/v1', packet: packetId, hits: [hit('vehicle')] });
    expect(taken.status, taken.text).toBe(202);
    expect(taken.json.accepted).toBe(1);
  });
});

describe('refusals and deferrals', () => {
  it('refuses an unknown partner id in requests.partners with its path; nothing is stored', async () => {
    const before = await storedDossierKeys();
    const received = (await auditRecords()).filter((r) => r.action === 'dossier.received').length;
    const res = await api(gw.url, 'POST', '/v1/dossiers', FORCE, dossier({ checks: ['vehicles'], partners: ['nobody', 'dvla'] }, 'WMP-OCG-2026-70002'), { 'Idempotency-Key': 'recipients-unknown-1' });
    expect(res.status, res.text).toBe(400);
    expect(res.json.error.code).toBe('partner_unknown');
    expect(res.json.error.details).toEqual([expect.objectContaining({ path: '/requests/partners/0' })]);
    expect(await storedDossierKeys()).toEqual(before);
    expect((await auditRecords()).filter((r) => r.action === 'dossier.received')).toHaveLength(received);
    expect((await auditRecords()).at(-1)).toMatchObject({ action: 'dossier.rejected', reason: 'partner_unknown', paths: ['/requests/partners/0'] });
  });

  it('refuses a deferral of a delivery no statutory condition makes (400, with its path)', async () => {
    const res = await api(gw.url, 'POST', '/v1/dossiers', FORCE, dossier({ checks: ['vehicles'], defer: [{ partner: 'dvla', reason: 'not yet', reviewBy: '2026-12-31' }] }, 'WMP-OCG-2026-70003'));
    expect(res.status, res.text).toBe(400);
    expect(res.json.error.code).toBe('defer_not_statutory');
    expect(res.json.error.details[0].path).toBe('/requests/defer/0/partner');
  });

  it('defers the statutory delivery: shown deferred with the force\'s reason and review date, audited without that reason', async () => {
    const reason = 'The group watches the family home; a referral now would alert them before the warrant';
    const res = await api(gw.url, 'POST', '/v1/dossiers', FORCE, dossier({ checks: ['vehicles'], defer: [{ partner: 'childrens-services', reason, reviewBy: '2026-12-31' }] }, 'WMP-OCG-2026-70004'));
    expect(res.status, res.text).toBe(202);
    expect(res.json.partners).toEqual(['dvla']);
    expect(res.json.notSent).toContainEqual({ partner: 'childrens-services', state: 'deferred', reason, reviewBy: '2026-12-31' });
    const status = await waitSettled(gw.url, res.json.id);
    expect(status.deliveries.find((d: any) => d.partner === 'childrens-services')).toMatchObject({ state: 'deferred', reason, reviewBy: '2026-12-31' });
    const mine = (await auditRecords()).filter((r) => r.dossier === res.json.id);
    expect(mine.filter((r) => r.action === 'delivery.deferred')).toEqual([
      expect.objectContaining({ kind: 'decision', recipient: 'childrens-services', statutory: 'child-at-risk', reviewBy: '2026-12-31' }),
    ]);
    expect(JSON.stringify(mine)).not.toContain('warrant');
    expect(mine.filter((r) => r.action === 'packet.created').map((r) => r.recipient)).toEqual(['dvla']);
  });

  it('without requests.checks, only the statutory recipient receives the dossier', async () => {
    const res = await api(gw.url, 'POST', '/v1/dossiers', FORCE, dossier(undefined, 'WMP-OCG-2026-70005'));
    expect(res.status, res.text).toBe(202);
    expect(res.json.partners).toEqual(['childrens-services']);
    expect(res.json.notSent).toHaveLength(6);
  });
});
