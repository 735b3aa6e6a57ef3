/**
 * Match first, then disclose, between two real gateways on loopback (real Redis, real keys, real HTTP).
 * West Midlands (A) has an after-match agreement with Warwickshire (B): A's first envelope is a match
 * envelope, identifiers only; B's force lists it, fetches it (encrypted to its own key) and answers hit
 * or no trace per ref through B; B relays the answers to A, which shows them per subject in the dossier's
 * `matches` and, for the hits alone, sends the follow-up dossier envelope (at once, or once an officer
 * approves). No trace for all: nothing more. Refs not in the request are refused on both sides.
 */
import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken, newToken } from '../../gateway/config/clients.js';
import { encryptAndSign, parseRecipientKey, type GatewayKey } from '../../gateway/crypto/openpgp.js';
import { clientsFile, openAs, peerClient, pointPeer, prepareSide } from '../helpers/peers.js';
import { editYaml } from '../helpers/policies.js';
import { api, fixture, ROOT, startTestGateway, TOKENS, waitSettled, type TestGateway, until } from '../helpers/gateway.js';

const FPS = JSON.parse(await readFile(path.join(ROOT, 'test/fixtures/keys/fingerprints.json'), 'utf8')) as Record<string, string>;
const FORCE = TOKENS['west-midlands-rocu']!;
const RETRY = { exchangeAttempts: 6, exchangeBackoffMs: 100 };
const MATCH = ['subjects[].name.given', 'subjects[].name.family', 'subjects[].dateOfBirth'];

interface Side {
  gw: TestGateway;
  key: GatewayKey;
  policyDir: string;
  stateDir: string;
}

let tmp: string;
let A: Side;
let B: Side;
const tokenAtoB = newToken();
const tokenBtoA = newToken();
/** Warwickshire's own force, answering at B. */
const WARKS = newToken();

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'cordon-match-'));
  const a = await prepareSide(tmp, 'a');
  const b = await prepareSide(tmp, 'b');
  await pointPeer(a.policyDir, ['peers/warwickshire.yaml'], 'warwickshire', 'Warwickshire Police', `http://127.0.0.1:${b.port}`, b.key);
  const peerFile = path.join(a.policyDir, 'peers/warwickshire.yaml');
  await editYaml(peerFile, ['agreement', 'disclosure'], 'after-match');
  await editYaml(peerFile, ['agreement', 'followUp'], 'automatic');
  await editYaml(peerFile, ['match'], MATCH);
  await unlink(path.join(b.policyDir, 'sources/west-midlands.yaml'));
  await writeFile(
    path.join(b.policyDir, 'sources/warwickshire.yaml'),
    `source:\n  id: warwickshire\n  name: Warwickshire Police\n  key:\n    file: keys/warwickshire.asc\n    fingerprint: "${FPS.warwickshire}"\n`,
  );
  await pointPeer(b.policyDir, ['peers/warwickshire.yaml'], 'west-midlands', 'West Midlands Police', `http://127.0.0.1:${a.port}`, a.key);
  const aClients = await clientsFile(a.stateDir, peerClient('warwickshire-gateway', 'warwickshire', tokenBtoA));
  const bClients = await clientsFile(
    b.stateDir,
    peerClient('west-midlands-gateway', 'west-midlands', tokenAtoB) + `  - id: warwickshire-rocu\n    role: source\n    source: warwickshire\n    tokens: ["${hashToken(WARKS)}"]\n`,
  );
  await writeFile(path.join(a.stateDir, 'peers/warwickshire.token'), tokenAtoB, { mode: 0o600 });
  await writeFile(path.join(b.stateDir, 'peers/west-midlands.token'), tokenBtoA, { mode: 0o600 });
  const [gwA, gwB] = await Promise.all([
    startTestGateway({ ...RETRY, policyDir: a.policyDir, stateDir: a.stateDir, port: a.port, clientsFile: aClients }),
    startTestGateway({ ...RETRY, policyDir: b.policyDir, stateDir: b.stateDir, port: b.port, clientsFile: bClients }),
  ]);
  A = { gw: gwA, ...a };
  B = { gw: gwB, ...b };
}, 60_000);

afterAll(async () => {
  await Promise.all([A?.gw.stop(), B?.gw.stop()]);
  await rm(tmp, { recursive: true, force: true });
});

async function auditOf(side: Side): Promise<any[]> {
  return (await side.gw.redis.lrange(`${side.gw.prefix}:audit:log`, 0, -1)).map((r) => JSON.parse(r));
}

async function dossierCount(side: Side): Promise<number> {
  const keys = await side.gw.redis.keys(`${side.gw.prefix}:dossier:dos_*`);
  return keys.filter((k) => /:dossier:dos_[0-9a-f]+$/.test(k)).length;
}

async function status(id: string): Promise<any> {
  return (await api(A.gw.url, 'GET', `/v1/dossiers/${id}`, FORCE)).json;
}

/** A sends the example dossier asking Warwickshire; returns A's id and B's id of the match request once it has left. */
async function ask(): Promise<{ id: string; match: string; envelope: string }> {
  const dossier = fixture('dossier-full.json') as any;
  dossier.requests = { ...dossier.requests, peers: ['warwickshire'] };
  const sent = await api(A.gw.url, 'POST', '/v1/dossiers', FORCE, dossier);
  expect(sent.status).toBe(202);
  const id = sent.json.id as string;
  await waitSettled(A.gw.url, id);
  const peer = await until('the match envelope to leave', async () => {
    const p = (await status(id)).peers?.[0];
    return p?.state === 'sent' ? p : undefined;
  });
  expect(peer).toMatchObject({ peer: 'warwickshire', state: 'sent', stage: 'match_sent' });
  expect(peer.envelopeId).toBe(peer.matchEnvelopeId);
  expect(peer.remoteDossier).toMatch(/^mrq_/);
  return { id, match: peer.remoteDossier, envelope: peer.matchEnvelopeId };
}

/** The match request as B's force sees it: decrypted with Warwickshire's key, signed by B's gateway. */
async function openMatch(match: string): Promise<any> {
  const r = await api(B.gw.url, 'GET', `/v1/exchange/matches/${match}`, WARKS);
  expect(r.status).toBe(200);
  return openAs('warwickshire', r.text, B.key);
}

function answer(match: string, results: Array<{ subject: string; result: string }>, packet = match) {
  return api(B.gw.url, 'POST', `/v1/exchange/matches/${match}/answers`, WARKS, { schema: 'cordon.matches/v1', packet, results });
}

function refOf(doc: any, given: string): string {
  return (doc.subjects as any[]).find((s) => s.name?.given === given).ref;
}

describe('match first, then disclose, between two gateways', () => {
  it("the peer's first envelope holds identifiers only, and B's force sees it to answer", async () => {
    const before = await dossierCount(B);
    const { id, match, envelope } = await ask();
    const listed = (await api(B.gw.url, 'GET', '/v1/exchange/matches', WARKS)).json.matches as any[];
    expect(listed.find((m) => m.id === match)).toMatchObject({ peer: 'west-midlands', subjects: 4, answered: 0, state: 'open' });
    // Another source or a partner of B sees nothing of it.
    expect((await api(B.gw.url, 'GET', `/v1/exchange/matches/${match}`, TOKENS['council-housing'])).status).toBe(403);
    const doc = await openMatch(match);
    expect(doc.match).toMatchObject({ id: match, peer: 'west-midlands', force: 'west-midlands', envelope });
    for (const s of doc.subjects as any[]) {
      expect(Object.keys(s).sort()).toEqual(['dateOfBirth', 'name', 'ref']);
      expect(Object.keys(s.name).sort()).toEqual(['family', 'given']);
      expect(s.ref).toMatch(/^ref_[0-9a-f]{16}$/);
    }
    const text = JSON.stringify(doc);
    for (const absent of ['Foleshill', 'intelligence', 'summary', '"role"', 'principal', 'potential-victim', '"group"', 'vulnerab', 'S1', 'Danny O']) expect(text).not.toContain(absent);
    // Nothing was made a dossier at B, nothing went to its partners.
    expect(await dossierCount(B)).toBe(before);
    expect((await status(id)).matches['peer:warwickshire']).toEqual({ S1: 'pending', S2: 'pending', S3: 'pending', S4: 'pending' });
    const prepared = (await auditOf(A)).find((r) => r.action === 'exchange.match_prepared' && r.dossier === id);
    expect(prepared).toMatchObject({ kind: 'disclosure', recipient: 'peer:warwickshire', packet: envelope, subjects: 4 });
    expect((prepared.fields as any[]).map((f) => f.path).sort()).toEqual(['subjects[].dateOfBirth', 'subjects[].id', 'subjects[].name.family', 'subjects[].name.given']);
    expect((await auditOf(B)).map((r) => r.action)).toEqual(expect.arrayContaining(['exchange.match_received', 'exchange.match_retrieved']));
  }, 60_000);

  it('no trace for every ref: A shows it, and nothing more is ever sent', async () => {
    const before = await dossierCount(B);
    const { id, match, envelope } = await ask();
    const doc = await openMatch(match);
    const r = await answer(match, (doc.subjects as any[]).map((s) => ({ subject: s.ref, result: 'no_trace' })));
    expect(r.status).toBe(202);
    expect(r.json).toMatchObject({ match, received: 4, accepted: 4, duplicates: 0 });
    await until('the answers at A', async () => {
      const m = (await status(id)).matches['peer:warwickshire'];
      return Object.values(m).every((v) => v === 'no_trace') ? m : undefined;
    });
    await new Promise((res) => setTimeout(res, 1000));
    const peer = (await status(id)).peers[0];
    expect(peer).toMatchObject({ state: 'sent', envelopeId: envelope, stage: 'no_trace' });
    expect(await dossierCount(B)).toBe(before);
    const aRows = (await auditOf(A)).filter((r) => r.dossier === id);
    expect(aRows.map((r) => r.action)).toContain('exchange.answers_received');
    expect(aRows.map((r) => r.action)).not.toContain('exchange.followup_prepared');
    expect(aRows.find((r) => r.action === 'exchange.answers_received')).toMatchObject({ kind: 'combination', source: 'peer:warwickshire', hit: 0, noTrace: 4 });
    // Nothing can follow: A's copy of the dossier kept for the follow-up is gone.
    expect(await A.gw.redis.hexists(`${A.gw.prefix}:exchange:env:${envelope}`, 'held')).toBe(0);
    expect((await auditOf(B)).find((r) => r.action === 'exchange.answers_relayed' && r.match === match)).toMatchObject({ kind: 'disclosure', recipient: 'peer:west-midlands', noTrace: 4 });
  }, 60_000);

  it('a hit for one ref: the follow-up envelope carries that subject alone, once', async () => {
    const before = await dossierCount(B);
    const { id, match, envelope } = await ask();
    const doc = await openMatch(match);
    const daniel = refOf(doc, 'Daniel');
    const results = (doc.subjects as any[]).map((s) => ({ subject: s.ref, result: s.ref === daniel ? 'hit' : 'no_trace' }));
    expect((await answer(match, results)).status).toBe(202);
    const peer = await until('the follow-up to leave', async () => {
      const p = (await status(id)).peers[0];
      return p.stage === 'disclosed' ? p : undefined;
    });
    expect(peer.envelopeId).not.toBe(envelope);
    expect(peer.matchEnvelopeId).toBe(envelope);
    expect(peer.remoteDossier).toMatch(/^dos_/);
    expect((await status(id)).matches['peer:warwickshire']).toEqual({ S1: 'hit', S2: 'no_trace', S3: 'no_trace', S4: 'no_trace' });
    // The force's bundle shows the peer's answers beside its partners'.
    const bundle = await openAs('west-midlands', (await api(A.gw.url, 'GET', `/v1/dossiers/${id}/hits`, FORCE)).text, A.key);
    expect(bundle.matches['peer:warwickshire']).toEqual({ S1: 'hit', S2: 'no_trace', S3: 'no_trace', S4: 'no_trace' });
    expect(await dossierCount(B)).toBe(before + 1);
    const received = (await auditOf(B)).find((r) => r.action === 'exchange.dossier_received' && r.dossier === peer.remoteDossier);
    expect(received).toMatchObject({ subjects: 1, packet: peer.envelopeId });
    const followUp = (await auditOf(A)).find((r) => r.action === 'exchange.followup_prepared' && r.dossier === id);
    expect(followUp).toMatchObject({ kind: 'disclosure', recipient: 'peer:warwickshire', matchPacket: envelope, subjects: 1 });
    // B takes the follow-up as any dossier: its partner's hit on it comes back to A under S1.
    const list = await until('a packet of the follow-up at B', async () => (await api(B.gw.url, 'GET', '/v1/packets', TOKENS['council-housing'])).json.packets?.[0]);
    const packet = await openAs('council-housing', (await api(B.gw.url, 'GET', `/v1/packets/${list.id}`, TOKENS['council-housing'])).text, B.key);
    expect((packet.dossier.subjects as any[]).map((x) => x.name?.given)).toEqual(['Daniel']);
    const hit = { subject: packet.dossier.subjects[0].id, kind: 'tenancy', detail: { town: 'Nuneaton', postcode: 'CV11 4AB' }, matchedOn: ['name', 'dateOfBirth'], confidence: 'confirmed' };
    expect((await api(B.gw.url, 'POST', `/v1/packets/${list.id}/hits`, TOKENS['council-housing'], { schema: 'cordon.hits/v1', packet: list.id, hits: [hit] })).status).toBe(202);
    const relayed = await until('the relayed hit in A bundle', async () => {
      const b = await openAs('west-midlands', (await api(A.gw.url, 'GET', `/v1/dossiers/${id}/hits`, FORCE)).text, A.key);
      return b.bundle.count > 0 ? b : undefined;
    });
    expect(Object.keys(relayed.subjects)).toEqual(['S1']);
    expect(relayed.subjects.S1[0]).toMatchObject({ kind: 'tenancy', partner: 'council-housing', via: 'warwickshire' });
    // The same answers again: nothing new is sent.
    expect((await answer(match, results)).json).toMatchObject({ accepted: 0, duplicates: 4 });
    await new Promise((res) => setTimeout(res, 1000));
    expect((await auditOf(A)).filter((r) => r.action === 'exchange.followup_prepared' && r.dossier === id)).toHaveLength(1);
    expect(await dossierCount(B)).toBe(before + 1);
  }, 60_000);

  it('a ref not in the request is refused, at B from its force and at A from the peer, nothing stored', async () => {
    const { id, match, envelope } = await ask();
    const wrong = await answer(match, [{ subject: 'ref_0123456789abcdef', result: 'hit' }]);
    expect(wrong.status).toBe(422);
    expect(wrong.json.error).toMatchObject({ code: 'unknown_subject_ref', details: [{ path: '/results/0/subject' }] });
    const mismatch = await answer(match, [{ subject: 'ref_0123456789abcdef', result: 'hit' }], 'mrq_other');
    expect(mismatch.status).toBe(400);
    expect(mismatch.json.error.code).toBe('packet_mismatch');
    expect((await api(B.gw.url, 'GET', '/v1/exchange/matches', WARKS)).json.matches.find((m: any) => m.id === match).answered).toBe(0);
    // A forged answers envelope (signed by B's real key) naming a ref that match envelope never held.
    const now = Date.now();
    const forged = {
      envelope: { type: 'answers', id: 'env_' + 'c'.repeat(24), from: 'warwickshire', to: 'west-midlands', issuedAt: new Date(now).toISOString(), expiresAt: new Date(now + 600_000).toISOString(), inReplyTo: envelope },
      matches: { schema: 'cordon.matches/v1', packet: envelope, results: [{ subject: 'ref_0123456789abcdef', result: 'hit' }] },
    };
    const aKey = await parseRecipientKey(A.key.publicArmored, A.key.fingerprint);
    const r = await api(A.gw.url, 'POST', '/v1/exchange/inbound', tokenBtoA, await encryptAndSign(JSON.stringify(forged), aKey, B.key), { 'content-type': 'application/pgp-encrypted' });
    expect(r.status).toBe(422);
    expect(r.json.error).toMatchObject({ code: 'unknown_subject_ref', details: [{ path: '/matches/results/0/subject' }] });
    // Answers to an envelope that is not a match envelope of A to that peer.
    forged.envelope.inReplyTo = 'env_' + 'd'.repeat(24);
    forged.envelope.id = 'env_' + 'e'.repeat(24);
    const unknown = await api(A.gw.url, 'POST', '/v1/exchange/inbound', tokenBtoA, await encryptAndSign(JSON.stringify(forged), aKey, B.key), { 'content-type': 'application/pgp-encrypted' });
    expect(unknown.status).toBe(404);
    expect(unknown.json.error.code).toBe('envelope_unknown');
    expect((await status(id)).matches['peer:warwickshire']).toEqual({ S1: 'pending', S2: 'pending', S3: 'pending', S4: 'pending' });
    expect((await auditOf(A)).filter((r) => r.action === 'exchange.rejected').map((r) => r.reason)).toEqual(expect.arrayContaining(['unknown_subject_ref', 'envelope_unknown']));
  }, 60_000);

  it('a match envelope carrying anything but identifiers is refused at B, nothing stored', async () => {
    const now = Date.now();
    const env = {
      envelope: { type: 'match', id: 'env_' + 'f'.repeat(24), from: 'west-midlands', to: 'warwickshire', issuedAt: new Date(now).toISOString(), expiresAt: new Date(now + 600_000).toISOString() },
      subjects: [{ ref: 'ref_0123456789abcdef', name: { given: 'Daniel' }, role: 'principal' }],
    };
    const bKey = await parseRecipientKey(B.key.publicArmored, B.key.fingerprint);
    const before = (await api(B.gw.url, 'GET', '/v1/exchange/matches', WARKS)).json.matches.length;
    const r = await api(B.gw.url, 'POST', '/v1/exchange/inbound', tokenAtoB, await encryptAndSign(JSON.stringify(env), bKey, A.key), { 'content-type': 'application/pgp-encrypted' });
    expect(r.status).toBe(400);
    expect(r.json.error).toMatchObject({ code: 'schema_violation', details: [{ path: '/subjects/0/role' }] });
    expect((await api(B.gw.url, 'GET', '/v1/exchange/matches', WARKS)).json.matches.length).toBe(before);
  }, 30_000);

  it('under followUp: approval, a hit waits for an officer of the force; then that subject alone follows', async () => {
    const loaded = (await auditOf(A)).filter((r) => r.action === 'policy.loaded').length;
    await editYaml(path.join(A.policyDir, 'peers/warwickshire.yaml'), ['agreement', 'followUp'], 'approval');
    await until('A to load its edited peer file', async () => ((await auditOf(A)).filter((r) => r.action === 'policy.loaded').length > loaded ? true : undefined));
    const { id, match, envelope } = await ask();
    const doc = await openMatch(match);
    const samuel = refOf(doc, 'Samuel');
    const results = (doc.subjects as any[]).map((s) => ({ subject: s.ref, result: s.ref === samuel ? 'hit' : 'no_trace' }));
    expect((await answer(match, results)).status).toBe(202);
    await until('the hit awaiting approval', async () => ((await status(id)).peers[0].stage === 'awaiting_approval' ? true : undefined));
    await new Promise((res) => setTimeout(res, 500));
    expect((await status(id)).peers[0].envelopeId).toBe(envelope);
    // Another partner's name or a subject without a hit: nothing approved.
    const wrong = await api(A.gw.url, 'POST', `/v1/dossiers/${id}/approvals`, FORCE, { partner: 'peer:warwickshire', officer: { name: 'DI Jane Marsh', id: 'WM-4471' }, subjects: ['S1'] });
    expect(wrong.status).toBe(409);
    expect(wrong.json.error).toMatchObject({ code: 'nothing_to_approve', details: [{ path: '/subjects/0' }] });
    const ok = await api(A.gw.url, 'POST', `/v1/dossiers/${id}/approvals`, FORCE, { partner: 'peer:warwickshire', officer: { name: 'DI Jane Marsh', id: 'WM-4471' } });
    expect(ok.status).toBe(202);
    expect(ok.json).toMatchObject({ partner: 'peer:warwickshire', approved: ['S2'] });
    const peer = await until('the approved follow-up to leave', async () => {
      const p = (await status(id)).peers[0];
      return p.stage === 'disclosed' ? p : undefined;
    });
    const received = (await auditOf(B)).find((r) => r.action === 'exchange.dossier_received' && r.dossier === peer.remoteDossier);
    expect(received).toMatchObject({ subjects: 1 });
    const rows = (await auditOf(A)).filter((r) => r.dossier === id);
    expect(rows.find((r) => r.action === 'followup.approved')).toMatchObject({ kind: 'decision', actor: 'west-midlands-rocu', recipient: 'peer:warwickshire', officer: { name: 'DI Jane Marsh', id: 'WM-4471' } });
    expect(rows.find((r) => r.action === 'exchange.followup_prepared')).toMatchObject({ subjects: 1, approvedBy: [{ name: 'DI Jane Marsh', id: 'WM-4471' }] });
  }, 60_000);

  it('a recall of a dossier whose peer was only asked closes the match request at B', async () => {
    const { id, match, envelope } = await ask();
    expect(await A.gw.redis.hexists(`${A.gw.prefix}:exchange:env:${envelope}`, 'held')).toBe(1);
    const recalled = await api(A.gw.url, 'POST', `/v1/dossiers/${id}/recall`, FORCE, { reason: 'withdrawn' });
    expect(recalled.status).toBeLessThan(300);
    // Nothing can follow a recall: A's copy of the dossier for the follow-up is gone at once.
    expect(await A.gw.redis.hexists(`${A.gw.prefix}:exchange:env:${envelope}`, 'held')).toBe(0);
    await until('the recall at B', async () => {
      const m = (await api(B.gw.url, 'GET', '/v1/exchange/matches', WARKS)).json.matches.find((x: any) => x.id === match);
      return m?.state === 'recalled' ? m : undefined;
    });
    expect((await openMatch(match)).subjects).toEqual([]);
    const late = await answer(match, [{ subject: 'ref_0123456789abcdef', result: 'hit' }]);
    expect(late.status).toBe(409);
    expect(late.json.error.code).toBe('dossier_recalled');
  }, 60_000);

  it("both gateways' audit records match schemas/audit-event.schema.json", async () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats.default(ajv);
    const valid = ajv.compile(JSON.parse(await readFile(path.join(ROOT, 'schemas/audit-event.schema.json'), 'utf8')) as object);
    for (const side of [A, B]) for (const row of await auditOf(side)) expect(valid(row), `${row.action}: ${JSON.stringify(valid.errors)}`).toBe(true);
  });
});
