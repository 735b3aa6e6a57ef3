/**
 * Match first, then disclose, against a real gateway (real Redis, OpenPGP keys, HTTP) on the sample
 * policies: DWP and HMRC are after-match with automatic follow-up, Immigration Enforcement after-match
 * with approval. Packets are decrypted with the partners' TEST keys. The first packet an after-match
 * partner gets holds identifiers only; no trace for every ref brings nothing more; a hit for one ref
 * brings one packet with that subject only, with the same ref; approval names the officer in the audit;
 * bad approvals are refused with their paths and change nothing.
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decryptAndVerify, parseArmoredPrivateKey, parseArmoredPublicKey } from '../../gateway/crypto/openpgp.js';
import { api, deleteKeys, dumpKeys, fixture, PARTNERS, REDIS_URL, ROOT, startTestGateway, TOKENS, until, waitSettled, type TestGateway } from '../helpers/gateway.js';

const FORCE = TOKENS['west-midlands-rocu']!;

let gw: TestGateway;
let gatewayKey: string;
let dossier: string;

async function open(partner: string, packetId: string): Promise<any> {
  const res = await api(gw.url, 'GET', `/v1/packets/${packetId}`, TOKENS[partner]);
  expect(res.status, res.text).toBe(200);
  const secret = await parseArmoredPrivateKey(await readFile(path.join(ROOT, `test/fixtures/keys/${partner}.sec.asc`), 'utf8'));
  const { data } = await decryptAndVerify(res.text, secret, [await parseArmoredPublicKey(gatewayKey)]);
  return JSON.parse(data);
}

async function status(): Promise<any> {
  const res = await api(gw.url, 'GET', `/v1/dossiers/${dossier}`, FORCE);
  expect(res.status).toBe(200);
  return res.json;
}

async function delivery(partner: string): Promise<any> {
  return (await status()).deliveries.find((d: any) => d.partner === partner);
}

async function mailbox(partner: string): Promise<Array<{ id: string; type: string }>> {
  const res = await api(gw.url, 'GET', '/v1/packets', TOKENS[partner]);
  expect(res.status).toBe(200);
  return res.json.packets;
}

/** The partner's match request for the dossier: its id, plaintext and given name → ref. */
async function matchRequest(partner: string): Promise<{ id: string; plain: any; text: string; refs: Record<string, string> }> {
  const id = (await delivery(partner)).matchPacketId as string;
  const plain = await open(partner, id);
  const refs: Record<string, string> = {};
  for (const s of plain.subjects) refs[s.name.given] = s.ref;
  return { id, plain, text: JSON.stringify(plain), refs };
}

function answer(packet: string, results: Array<{ subject: string; result: string }>) {
  return { schema: 'cordon.matches/v1', packet, results };
}

async function auditRecords(): Promise<any[]> {
  const res = await api(gw.url, 'GET', `/v1/audit?dossier=${dossier}&limit=500`, TOKENS.governance);
  expect(res.status).toBe(200);
  return res.json.records;
}

beforeAll(async () => {
  gw = await startTestGateway();
  gatewayKey = (await api(gw.url, 'GET', '/v1/keys/gateway')).text;
  // Riverside Homes is asked blind (test/e2e/blind-match.test.ts): this dossier is for the after-match partners.
  const full = fixture('dossier-full.json') as { requests: Record<string, unknown> };
  full.requests = { ...full.requests, partners: PARTNERS.filter((p) => p !== 'riverside-homes') };
  const res = await api(gw.url, 'POST', '/v1/dossiers', FORCE, full);
  expect(res.status, res.text).toBe(202);
  dossier = res.json.id;
  await waitSettled(gw.url, dossier);
});

afterAll(async () => {
  await gw?.stop();
  if (gw?.prefix) {
    const redis = new Redis(REDIS_URL);
    await deleteKeys(redis, gw.prefix);
    await redis.quit();
  }
  if (gw?.stateDir) await rm(gw.stateDir, { recursive: true, force: true });
});

describe('the match request', () => {
  it('is the first thing in an after-match partner\'s mailbox, listed as type match', async () => {
    for (const partner of ['dwp-benefits', 'hmrc', 'immigration-enforcement']) {
      const d = await delivery(partner);
      expect(d, partner).toMatchObject({ state: 'delivered', stage: 'match_sent' });
      expect(d.packetId).toBe(d.matchPacketId);
      expect(await mailbox(partner)).toEqual([expect.objectContaining({ id: d.matchPacketId, type: 'match' })]);
    }
    // Immediate partners are sent today's packet, with no stage.
    const housing = await delivery('council-housing');
    expect(housing.matchPacketId).toBeUndefined();
    expect(housing.stage).toBeUndefined();
    expect((await mailbox('council-housing'))[0]!.type).toBe('packet');
  });

  it('holds only the allowlisted identifiers: no intelligence summary, group name, role or other subject', async () => {
    const { plain, text, id } = await matchRequest('dwp-benefits');
    expect(Object.keys(plain).sort()).toEqual(['match', 'subjects']);
    expect(Object.keys(plain.match).sort()).toEqual(['agreement', 'expiresAt', 'id', 'issuedAt', 'policy', 'recipient']);
    expect(plain.match).toMatchObject({ id, recipient: 'dwp-benefits', agreement: { reference: 'ISA-WMP-DWP-CFCD-2025-03' } });
    // DWP's policy sends adults who are neither victims nor witnesses: Daniel and Samuel.
    expect(plain.subjects.map((s: any) => s.name.given).sort()).toEqual(['Daniel', 'Samuel']);
    const daniel = plain.subjects.find((s: any) => s.name.given === 'Daniel');
    expect(daniel).toEqual({
      ref: expect.stringMatching(/^ref_[0-9a-f]{16}$/),
      name: { given: 'Daniel', family: 'Okafor', aliases: ['Danny O', 'D. Oka'] },
      dateOfBirth: '1987-04-12',
      identifiers: { niNumber: 'QQ123456C' },
      addresses: [{ postcode: 'CV6 5HX' }, { postcode: 'CV6 4FL' }],
    });
    for (const leak of ['Foleshill', 'OCG-WM-0193', 'Stores cash', 'Believed to control', 'Collects debts', 'principal', 'intelligence', 'Andrei', 'Tyler', '"S1"', 'WMP-OCG', 'QQ-PNC', '09/123456X', 'AB12 CDE']) {
      expect(text, leak).not.toContain(leak);
    }
    // The agreement's purpose may speak of groups and members; the subjects carry identifiers only.
    for (const s of plain.subjects) expect(Object.keys(s).sort()).toEqual(expect.arrayContaining(['name', 'ref']));
    for (const s of plain.subjects) for (const k of Object.keys(s)) expect(['ref', 'name', 'dateOfBirth', 'identifiers', 'addresses']).toContain(k);
    expect(JSON.stringify(plain.subjects)).not.toMatch(/member|principal|role|group/);
  });

  it('the partnership toolkit says who is asked first, how the follow-up goes and on which identifiers', async () => {
    const res = await api(gw.url, 'GET', '/v1/partners', TOKENS['dwp-benefits']);
    const byId = Object.fromEntries((res.json.partners as any[]).map((p) => [p.id, p.agreement]));
    expect(byId['dvla']).toMatchObject({ disclosure: 'immediate' });
    expect(byId['dvla'].followUp).toBeUndefined();
    expect(byId['hmrc']).toMatchObject({ disclosure: 'after-match', followUp: 'automatic' });
    expect(byId['immigration-enforcement']).toMatchObject({ disclosure: 'after-match', followUp: 'approval', match: expect.arrayContaining(['subjects[].identifiers.passport']) });
  });

  it('is audited as a disclosure of identifiers only', async () => {
    const created = (await auditRecords()).filter((r) => r.action === 'match.created');
    expect(created.map((r) => r.recipient).sort()).toEqual(['dwp-benefits', 'hmrc', 'immigration-enforcement']);
    const dwp = created.find((r) => r.recipient === 'dwp-benefits');
    expect(dwp.kind).toBe('disclosure');
    expect(dwp.fields.map((f: any) => f.path).sort()).toEqual([
      'subjects[].addresses[].postcode', 'subjects[].dateOfBirth', 'subjects[].id', 'subjects[].identifiers.niNumber',
      'subjects[].name.aliases[]', 'subjects[].name.family', 'subjects[].name.given',
    ]);
    expect(dwp.subjects).toBe(2);
  });
});

describe('answers and follow-up', () => {
  it('no trace for every ref brings no further packet', async () => {
    const { id, refs } = await matchRequest('hmrc');
    const res = await api(gw.url, 'POST', `/v1/packets/${id}/matches`, TOKENS.hmrc, answer(id, Object.values(refs).map((subject) => ({ subject, result: 'no_trace' }))));
    expect(res.status, res.text).toBe(202);
    await until('hmrc no_trace stage', async () => ((await delivery('hmrc')).stage === 'no_trace' ? true : undefined));
    await new Promise((r) => setTimeout(r, 500)); // a follow-up job would have run by now
    expect((await mailbox('hmrc')).map((p) => p.type)).toEqual(['match']);
    expect((await status()).matches.hmrc).toEqual({ S1: 'no_trace', S2: 'no_trace' });
    expect((await auditRecords()).filter((r) => r.action === 'followup.created' && r.recipient === 'hmrc')).toEqual([]);
  });

  it('a hit for one ref brings one packet with that subject only, under the same ref (automatic)', async () => {
    const { id, refs } = await matchRequest('dwp-benefits');
    const res = await api(gw.url, 'POST', `/v1/packets/${id}/matches`, TOKENS['dwp-benefits'], answer(id, [
      { subject: refs.Daniel!, result: 'hit' },
      { subject: refs.Samuel!, result: 'no_trace' },
    ]));
    expect(res.status, res.text).toBe(202);
    const d = await until('dwp follow-up', async () => {
      const x = await delivery('dwp-benefits');
      return x.stage === 'disclosed' ? x : undefined;
    });
    expect(d.packetId, JSON.stringify([d, await mailbox("dwp-benefits")])).not.toBe(id);
    expect(d.matchPacketId).toBe(id);
    const packets = await mailbox('dwp-benefits');
    expect(packets.map((p) => p.type).sort()).toEqual(['match', 'packet']);
    const plain = await open('dwp-benefits', d.packetId);
    expect(plain.packet.id).toBe(d.packetId);
    expect(plain.dossier.subjects).toHaveLength(1);
    const [daniel] = plain.dossier.subjects;
    expect(daniel.id).toBe(refs.Daniel);
    expect(daniel.name.given).toBe('Daniel');
    // The full policy now: Daniel's role comes with it; Samuel, his brother, is left out with the association.
    expect(daniel.role).toBe('principal');
    expect(JSON.stringify(plain)).not.toContain('Samuel');
    expect(JSON.stringify(plain)).not.toContain(refs.Samuel!);
    expect((await status()).matches['dwp-benefits']).toEqual({ S1: 'hit', S2: 'no_trace' });
    const followed = (await auditRecords()).filter((r) => r.action === 'followup.created');
    expect(followed).toEqual([expect.objectContaining({ kind: 'disclosure', recipient: 'dwp-benefits', packet: d.packetId, matchPacket: id, subjects: 1 })]);

    // The same answers again change nothing: still one follow-up packet.
    await api(gw.url, 'POST', `/v1/packets/${id}/matches`, TOKENS['dwp-benefits'], answer(id, [{ subject: refs.Daniel!, result: 'hit' }]));
    await new Promise((r) => setTimeout(r, 500));
    expect((await mailbox('dwp-benefits')).length).toBe(2);
  });
});

describe('follow-up after approval', () => {
  let match: Awaited<ReturnType<typeof matchRequest>>;

  beforeAll(async () => {
    match = await matchRequest('immigration-enforcement');
    const given = Object.keys(match.refs);
    expect(given.length).toBeGreaterThan(0);
    const res = await api(gw.url, 'POST', `/v1/packets/${match.id}/matches`, TOKENS['immigration-enforcement'], answer(match.id, [{ subject: match.refs[given[0]!]!, result: 'hit' }]));
    expect(res.status, res.text).toBe(202);
  });

  it('waits for the force: awaiting_approval, nothing more in the mailbox', async () => {
    await new Promise((r) => setTimeout(r, 500));
    expect((await delivery('immigration-enforcement')).stage).toBe('awaiting_approval');
    expect((await mailbox('immigration-enforcement')).map((p) => p.type)).toEqual(['match']);
  });

  it('refuses bad approvals with their paths, and keeps nothing', async () => {
    const before = await dumpKeys(gw.redis, gw.prefix);
    const url = `/v1/dossiers/${dossier}/approvals`;
    const officer = { name: 'DI Anna Kowalski', id: 'WM2207' };
    const noOfficer = await api(gw.url, 'POST', url, FORCE, { partner: 'immigration-enforcement' });
    expect(noOfficer.status).toBe(400);
    expect(noOfficer.json.error.details).toEqual([expect.objectContaining({ path: '/officer' })]);
    const badId = await api(gw.url, 'POST', url, FORCE, { partner: 'immigration-enforcement', officer: { name: 'DI Anna Kowalski', id: '' }, extra: 1 });
    expect(badId.status).toBe(400);
    expect([...new Set(badId.json.error.details.map((d: any) => d.path))].sort()).toEqual(['/extra', '/officer/id']);
    const missing = await api(gw.url, 'POST', `/v1/dossiers/dos_${'0'.repeat(32)}/approvals`, FORCE, { partner: 'immigration-enforcement', officer });
    expect(missing.status).toBe(404);
    const immediate = await api(gw.url, 'POST', url, FORCE, { partner: 'council-housing', officer });
    expect(immediate.status).toBe(409);
    expect(immediate.json.error).toMatchObject({ code: 'nothing_to_approve', details: [expect.objectContaining({ path: '/partner' })] });
    const automatic = await api(gw.url, 'POST', url, FORCE, { partner: 'dwp-benefits', officer });
    expect(automatic.status).toBe(409);
    const notAwaiting = await api(gw.url, 'POST', url, FORCE, { partner: 'immigration-enforcement', officer, subjects: ['S2'] });
    expect(notAwaiting.status).toBe(409);
    expect(notAwaiting.json.error.details).toEqual([expect.objectContaining({ path: '/subjects/0' })]);
    // A partner cannot approve its own follow-up.
    expect((await api(gw.url, 'POST', url, TOKENS['immigration-enforcement'], { partner: 'immigration-enforcement', officer })).status).toBe(403);
    const after = await dumpKeys(gw.redis, gw.prefix);
    const keys = (m: Map<string, string>) => [...m.keys()].filter((k) => !k.includes(':audit:') && !k.includes(':rl:') && !k.includes(':bull:'));
    expect(keys(after)).toEqual(keys(before));
    for (const k of keys(after)) expect(after.get(k), k).toEqual(before.get(k));
  });

  it('an approval names the officer in the audit, then the follow-up is disclosed', async () => {
    const officer = { name: 'DI Anna Kowalski', id: 'WM2207' };
    const res = await api(gw.url, 'POST', `/v1/dossiers/${dossier}/approvals`, FORCE, { partner: 'immigration-enforcement', officer });
    expect(res.status, res.text).toBe(202);
    expect(res.json).toMatchObject({ dossier, partner: 'immigration-enforcement', officer, approved: [expect.any(String)] });
    const d = await until('immigration follow-up', async () => {
      const x = await delivery('immigration-enforcement');
      return x.stage === 'disclosed' ? x : undefined;
    });
    const plain = await open('immigration-enforcement', d.packetId);
    expect(plain.dossier.subjects.map((s: any) => s.id)).toEqual([match.refs[Object.keys(match.refs)[0]!]]);
    const records = await auditRecords();
    const approved = records.find((r) => r.action === 'followup.approved');
    expect(approved).toMatchObject({ kind: 'decision', actor: 'west-midlands-rocu', officer, recipient: 'immigration-enforcement', matchPacket: match.id, subjects: 1 });
    const created = records.find((r) => r.action === 'followup.created' && r.recipient === 'immigration-enforcement');
    expect(created).toMatchObject({ approvedBy: [officer], packet: d.packetId });
    // Approving again: nothing is awaiting any more.
    expect((await api(gw.url, 'POST', `/v1/dossiers/${dossier}/approvals`, FORCE, { partner: 'immigration-enforcement', officer })).status).toBe(409);
  });

  it('once every match request is answered and followed up, the sealed dossier is erased (audited)', async () => {
    const sealed = async () => gw.redis.hexists(`${gw.prefix}:dossier:${dossier}`, 'sealed');
    expect(await sealed()).toBe(1); // Immigration Enforcement has not answered every subject yet
    const rest = Object.values(match.refs).slice(1).map((subject) => ({ subject, result: 'no_trace' }));
    expect(rest.length).toBeGreaterThan(0);
    const res = await api(gw.url, 'POST', `/v1/packets/${match.id}/matches`, TOKENS['immigration-enforcement'], answer(match.id, rest));
    expect(res.status, res.text).toBe(202);
    await until('sealed dossier erased', async () => ((await sealed()) === 0 ? true : undefined));
    const erased = (await auditRecords()).filter((r) => r.action === 'dossier.sealed_content_erased');
    expect(erased).toEqual([expect.objectContaining({ kind: 'erasure', reason: 'every match request answered and followed up' })]);
  });
});

describe('recall stops match first, then disclose', () => {
  it('erases the kept sealed dossier and unretrieved match requests; an approval after it is refused', async () => {
    const pushed = await api(gw.url, 'POST', '/v1/dossiers', FORCE, fixture('dossier-full.json'), { 'idempotency-key': 'after-match-recall' });
    expect(pushed.status, pushed.text).toBe(202);
    const id = pushed.json.id as string;
    const settled = await waitSettled(gw.url, id);
    const of = (partner: string) => settled.deliveries.find((d: any) => d.partner === partner);
    // Immigration Enforcement answers hit; its follow-up waits for approval.
    const imm = of('immigration-enforcement');
    const plain = await open('immigration-enforcement', imm.matchPacketId);
    const hit = await api(gw.url, 'POST', `/v1/packets/${imm.matchPacketId}/matches`, TOKENS['immigration-enforcement'], answer(imm.matchPacketId, [{ subject: plain.subjects[0].ref, result: 'hit' }]));
    expect(hit.status, hit.text).toBe(202);
    expect(await gw.redis.hexists(`${gw.prefix}:dossier:${id}`, 'sealed')).toBe(1);

    const recalled = await api(gw.url, 'POST', `/v1/dossiers/${id}/recall`, FORCE, { reason: 'withdrawn' });
    expect(recalled.status, recalled.text).toBe(200);
    expect(await gw.redis.hexists(`${gw.prefix}:dossier:${id}`, 'sealed')).toBe(0);
    const records = (await api(gw.url, 'GET', `/v1/audit?dossier=${id}&limit=500`, TOKENS.governance)).json.records as any[];
    expect(records.filter((r) => r.action === 'dossier.sealed_content_erased')).toEqual([expect.objectContaining({ reason: 'recalled' })]);
    // HMRC never pulled its match request: erased, its delivery expired (recalled).
    const hmrc = (await api(gw.url, 'GET', `/v1/dossiers/${id}`, FORCE)).json.deliveries.find((d: any) => d.partner === 'hmrc');
    expect(hmrc).toMatchObject({ state: 'expired', reason: 'recalled' });
    expect(await gw.redis.exists(`${gw.prefix}:packet:${of('hmrc').matchPacketId}`)).toBe(0);

    const approval = await api(gw.url, 'POST', `/v1/dossiers/${id}/approvals`, FORCE, { partner: 'immigration-enforcement', officer: { name: 'DI Anna Kowalski', id: 'WM2207' } });
    expect(approval.status).toBe(409);
    expect(approval.json.error.code).toBe('dossier_recalled');
    expect((await mailbox('immigration-enforcement')).filter((p) => p.type === 'packet')).toHaveLength(1); // the first dossier's follow-up only
  });
});
