/**
 * Answers (hit or no trace per subject) against a real gateway (real Redis, keys, HTTP) on a copy of the
 * sample policies where DVLA must answer within 0 days (so at once overdue) and council housing within
 * 14: recorded and shown in the force's status and bundle, idempotent, checked whole before anything is
 * stored, kept from other partners, signed and encrypted like hits, withdrawable, counted for governance.
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import * as openpgp from 'openpgp';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decryptAndVerify, parseArmoredPrivateKey, parseArmoredPublicKey } from '../../gateway/crypto/openpgp.js';
import { api, deleteKeys, dumpKeys, fixture, REDIS_URL, ROOT, startTestGateway, TOKENS, waitSettled, withoutCiphertext, type TestGateway } from '../helpers/gateway.js';
import { copyPolicies, editYaml } from '../helpers/policies.js';

const FORCE = TOKENS['west-midlands-rocu']!;
const HOUSING = TOKENS['council-housing']!;
const DWP = TOKENS['dwp-benefits']!;

let gw: TestGateway;
let cleanup: () => Promise<void>;
let gatewayKey: string;
let dossier: string;
let housing: { id: string; refs: Record<string, string> };
let dwp: { id: string; refs: Record<string, string> };

/** The partner's packet for the dossier, decrypted with its TEST key: its id and given name → ref. */
async function packetOf(partner: string, dossierId: string): Promise<{ id: string; refs: Record<string, string> }> {
  const status = await api(gw.url, 'GET', `/v1/dossiers/${dossierId}`, FORCE);
  const id = status.json.deliveries.find((d: any) => d.partner === partner).packetId as string;
  const res = await api(gw.url, 'GET', `/v1/packets/${id}`, TOKENS[partner]);
  const secret = await parseArmoredPrivateKey(await readFile(path.join(ROOT, `test/fixtures/keys/${partner}.sec.asc`), 'utf8'));
  const { data } = await decryptAndVerify(res.text, secret, [await parseArmoredPublicKey(gatewayKey)]);
  const refs: Record<string, string> = {};
  // DWP is asked first (after-match): its first packet is a match request, `{match, subjects: [{ref, …}]}`.
  const plain = JSON.parse(data);
  for (const s of plain.dossier?.subjects ?? plain.subjects) refs[s.name.given] = s.id ?? s.ref;
  return { id, refs };
}

function answer(packet: string, results: Array<{ subject: string; result: string }>) {
  return { schema: 'cordon.matches/v1', packet, results };
}

async function status(): Promise<any> {
  const res = await api(gw.url, 'GET', `/v1/dossiers/${dossier}`, FORCE);
  expect(res.status).toBe(200);
  return res.json;
}

async function bundle(): Promise<any> {
  const res = await api(gw.url, 'GET', `/v1/dossiers/${dossier}/hits`, FORCE);
  expect(res.status, res.text).toBe(200);
  const secret = await parseArmoredPrivateKey(await readFile(path.join(ROOT, 'test/fixtures/keys/west-midlands.sec.asc'), 'utf8'));
  const { data } = await decryptAndVerify(res.text, secret, [await parseArmoredPublicKey(gatewayKey)]);
  return JSON.parse(data);
}

async function auditActions(): Promise<string[]> {
  const res = await api(gw.url, 'GET', `/v1/audit?dossier=${dossier}&limit=500`, TOKENS.governance);
  return ((res.json?.records ?? []) as Array<{ action: string }>).map((r) => r.action);
}

beforeAll(async () => {
  const copy = await copyPolicies();
  cleanup = copy.cleanup;
  await editYaml(path.join(copy.dir, 'partners/dvla.yaml'), ['agreement', 'respondWithinDays'], 0);
  await editYaml(path.join(copy.dir, 'partners/council-housing.yaml'), ['agreement', 'respondWithinDays'], 14);
  gw = await startTestGateway({ policyDir: copy.dir });
  gatewayKey = (await api(gw.url, 'GET', '/v1/keys/gateway')).text;
  const res = await api(gw.url, 'POST', '/v1/dossiers', FORCE, fixture('dossier-full.json'));
  expect(res.status, res.text).toBe(202);
  dossier = res.json.id;
  await waitSettled(gw.url, dossier);
  housing = await packetOf('council-housing', dossier);
  dwp = await packetOf('dwp-benefits', dossier);
});

afterAll(async () => {
  await gw?.stop();
  if (gw?.prefix) {
    const redis = new Redis(REDIS_URL);
    await deleteKeys(redis, gw.prefix);
    await redis.quit();
  }
  if (gw?.stateDir) await rm(gw.stateDir, { recursive: true, force: true });
  await cleanup?.();
});

describe('answers per subject', () => {
  it('before any answer: pending within the agreement time, overdue after it (respondWithinDays: 0)', async () => {
    const { matches } = await status();
    // Only the subjects each partner was sent (S1 and S2 here; children's services only S4).
    expect(matches['council-housing']).toEqual({ S1: 'pending', S2: 'pending' });
    expect(matches.dvla).toEqual({ S1: 'overdue', S2: 'overdue' });
    expect(matches['childrens-services']).toEqual({ S4: 'pending' }); // no respondWithinDays: never overdue
  });

  it('no_trace and hit are recorded and shown; the same answers again are stored once', async () => {
    const body = answer(housing.id, [
      { subject: housing.refs.Daniel!, result: 'hit' },
      { subject: housing.refs.Samuel!, result: 'no_trace' },
    ]);
    const res = await api(gw.url, 'POST', `/v1/packets/${housing.id}/matches`, HOUSING, body);
    expect(res.status, res.text).toBe(202);
    expect(res.json).toEqual({ packet: housing.id, received: 2, accepted: 2, duplicates: 0, withdrawn: 0 });
    expect((await status()).matches['council-housing']).toEqual({ S1: 'hit', S2: 'no_trace' });

    const before = await dumpKeys(gw.redis, gw.prefix);
    const again = await api(gw.url, 'POST', `/v1/packets/${housing.id}/matches`, HOUSING, body);
    expect(again.json).toEqual({ packet: housing.id, received: 2, accepted: 0, duplicates: 2, withdrawn: 0 });
    const after = await dumpKeys(gw.redis, gw.prefix);
    const answersKey = [...after.keys()].find((k) => k.endsWith(`${dossier}:answers`))!;
    expect(after.get(answersKey)).toEqual(before.get(answersKey));
    // Nothing readable at rest: no ref, no subject id, no answer in the clear.
    const stored = withoutCiphertext(after.get(answersKey)!);
    for (const v of [housing.refs.Daniel!, 'no_trace', '"S1"']) expect(stored).not.toContain(v);
    expect(await auditActions()).toContain('matches.received');

    const bundled = await bundle();
    expect(bundled.matches['council-housing']).toEqual({ S1: 'hit', S2: 'no_trace' });
  });

  it('a ref not in the packet is 422 with its path, and nothing is stored', async () => {
    const before = await dumpKeys(gw.redis, gw.prefix);
    const res = await api(gw.url, 'POST', `/v1/packets/${housing.id}/matches`, HOUSING, answer(housing.id, [
      { subject: housing.refs.Daniel!, result: 'no_trace' },
      { subject: 'subj_not_in_this_packet', result: 'hit' },
    ]));
    expect(res.status).toBe(422);
    expect(res.json.error.code).toBe('unknown_subject_ref');
    expect(res.json.error.details).toEqual([expect.objectContaining({ path: '/results/1/subject' })]);
    const after = await dumpKeys(gw.redis, gw.prefix);
    const keys = (m: Map<string, string>) => [...m.keys()].filter((k) => !k.includes(':audit:') && !k.includes(':rl:'));
    expect(keys(after)).toEqual(keys(before));
    for (const k of keys(after)) expect(after.get(k), k).toEqual(before.get(k));
    expect((await status()).matches['council-housing'].S1).toBe('hit');
  });

  it("another partner's packet answers exactly like a missing one: 404", async () => {
    const body = answer(housing.id, [{ subject: housing.refs.Samuel!, result: 'hit' }]);
    const other = await api(gw.url, 'POST', `/v1/packets/${housing.id}/matches`, TOKENS.dvla, body);
    const missing = await api(gw.url, 'POST', `/v1/packets/pkt_aaaaaaaaaaaaaaaa/matches`, TOKENS.dvla, { ...body, packet: 'pkt_aaaaaaaaaaaaaaaa' });
    expect(other.status).toBe(404);
    expect(other.json.error.code).toBe('not_found');
    expect(other.json.error.message).toBe(missing.json.error.message);
    expect((await api(gw.url, 'POST', `/v1/packets/${housing.id}/matches`, FORCE, body)).status).toBe(403);
  });

  it('a body off the schema is 400 with every path', async () => {
    const res = await api(gw.url, 'POST', `/v1/packets/${housing.id}/matches`, HOUSING, {
      schema: 'cordon.matches/v1',
      packet: housing.id,
      results: [{ subject: housing.refs.Samuel!, result: 'maybe' }, { result: 'hit' }],
      extra: 1,
    });
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe('schema_violation');
    expect(res.json.error.details.map((d: any) => d.path).sort()).toEqual(['/extra', '/results/0/result', '/results/1/subject']);
    const mismatch = await api(gw.url, 'POST', `/v1/packets/${housing.id}/matches`, HOUSING, answer('pkt_other', [{ subject: housing.refs.Samuel!, result: 'hit' }]));
    expect(mismatch.status).toBe(400);
    expect(mismatch.json.error.code).toBe('packet_mismatch');
  });

  it('signed and encrypted answers go through the same door as signed hits', async () => {
    const secret = await parseArmoredPrivateKey(await readFile(path.join(ROOT, 'test/fixtures/keys/dwp-benefits.sec.asc'), 'utf8'));
    const encrypt = async (body: unknown, signed: boolean) =>
      (await openpgp.encrypt({
        message: await openpgp.createMessage({ text: JSON.stringify(body) }),
        encryptionKeys: await parseArmoredPublicKey(gatewayKey),
        ...(signed ? { signingKeys: secret } : {}),
      })) as string;
    const pgp = { 'content-type': 'application/pgp-encrypted' };
    const res = await api(gw.url, 'POST', `/v1/packets/${dwp.id}/matches`, DWP, await encrypt(answer(dwp.id, [{ subject: dwp.refs.Daniel!, result: 'no_trace' }]), true), pgp);
    expect(res.status, res.text).toBe(202);
    expect(res.json.accepted).toBe(1);
    expect((await status()).matches['dwp-benefits']).toEqual({ S1: 'no_trace', S2: 'pending' });
    const unsigned = await api(gw.url, 'POST', `/v1/packets/${dwp.id}/matches`, DWP, await encrypt(answer(dwp.id, [{ subject: dwp.refs.Samuel!, result: 'hit' }]), false), pgp);
    expect(unsigned.status).toBe(400);
    expect(unsigned.json.error.code).toBe('signature_invalid');
  });

  it('a reported hit counts as hit; a withdrawal takes back the answer and the hits, and the force sees it', async () => {
    const hits = await api(gw.url, 'POST', `/v1/packets/${dwp.id}/hits`, DWP, {
      schema: 'cordon.hits/v1',
      packet: dwp.id,
      hits: [{ subject: dwp.refs.Daniel!, kind: 'benefit-claim', detail: { note: 'claimant' }, matchedOn: ['name'], confidence: 'possible' }],
    });
    expect(hits.status, hits.text).toBe(202);
    expect((await status()).matches['dwp-benefits'].S1).toBe('hit'); // the hit outranks the earlier no trace

    const taken = await api(gw.url, 'POST', `/v1/packets/${dwp.id}/matches`, DWP, answer(dwp.id, [{ subject: dwp.refs.Daniel!, result: 'withdrawn' }]));
    expect(taken.status, taken.text).toBe(202);
    const wrong = await api(gw.url, 'POST', `/v1/packets/${housing.id}/matches`, HOUSING, answer(housing.id, [{ subject: housing.refs.Daniel!, result: 'withdrawn' }]));
    expect(wrong.json.withdrawn).toBe(1);
    const seen = await status();
    expect(seen.matches['dwp-benefits']).toEqual({ S1: 'pending', S2: 'pending' });
    expect(seen.matches['council-housing']).toEqual({ S1: 'pending', S2: 'no_trace' });
    expect(seen.withdrawals).toEqual([
      expect.objectContaining({ partner: 'dwp-benefits', subject: 'S1', answer: 'no_trace', hits: 1 }),
      expect.objectContaining({ partner: 'council-housing', subject: 'S1', answer: 'hit', hits: 0 }),
    ]);
    const bundled = await bundle();
    expect(bundled.subjects.S1).toEqual([expect.objectContaining({ partner: 'dwp-benefits', kind: 'benefit-claim', withdrawn: true })]);
    expect(bundled.withdrawals).toEqual(seen.withdrawals);
    expect(bundled.matches).toEqual(seen.matches);
    expect(await auditActions()).toContain('matches.withdrawn');

    // Nothing left to withdraw: a duplicate.
    const again = await api(gw.url, 'POST', `/v1/packets/${dwp.id}/matches`, DWP, answer(dwp.id, [{ subject: dwp.refs.Daniel!, result: 'withdrawn' }]));
    expect(again.json).toMatchObject({ accepted: 0, duplicates: 1, withdrawn: 0 });
  });

  it('answers live as long as the dossier record: filed among its companions, erased with it', async () => {
    const companions = await gw.redis.smembers(`${gw.prefix}:dossier:${dossier}:companions`);
    expect(companions).toContain(`${gw.prefix}:dossier:${dossier}:answers`);
    const [record, answers] = await Promise.all([gw.redis.pexpiretime(`${gw.prefix}:dossier:${dossier}`), gw.redis.pexpiretime(`${gw.prefix}:dossier:${dossier}:answers`)]);
    expect(answers).toBe(record);
  });

  it('a recalled dossier takes no answers: 409 dossier_recalled, nothing stored, audited', async () => {
    const res = await api(gw.url, 'POST', '/v1/dossiers', FORCE, fixture('dossier-full.json'));
    const recalled = res.json.id as string;
    await waitSettled(gw.url, recalled);
    const packet = await packetOf('council-housing', recalled);
    expect((await api(gw.url, 'POST', `/v1/dossiers/${recalled}/recall`, FORCE, { reason: 'withdrawn', note: 'sent in error' })).status).toBe(200);
    const refused = await api(gw.url, 'POST', `/v1/packets/${packet.id}/matches`, HOUSING, answer(packet.id, [{ subject: packet.refs.Daniel!, result: 'no_trace' }]));
    expect(refused.status).toBe(409);
    expect(refused.json.error.code).toBe('dossier_recalled');
    expect(await gw.redis.exists(`${gw.prefix}:dossier:${recalled}:answers`)).toBe(0);
    const audit = await api(gw.url, 'GET', `/v1/audit?dossier=${recalled}&limit=500`, TOKENS.governance);
    expect(audit.json.records.map((r: any) => r.action)).toContain('matches.refused');
  });

  it('governance sees answers per agreement and the hit rate; nobody else does', async () => {
    const res = await api(gw.url, 'GET', '/v1/answers/rates', TOKENS.governance);
    expect(res.status, res.text).toBe(200);
    const row = res.json.agreements.find((a: any) => a.partner === 'council-housing');
    expect(row).toMatchObject({ hit: 1, noTrace: 1, withdrawn: 1, hitRate: 0.5 });
    expect(res.json.agreements.find((a: any) => a.partner === 'dwp-benefits')).toMatchObject({ hit: 0, noTrace: 1, withdrawn: 1, hitRate: 0 });
    expect((await api(gw.url, 'GET', '/v1/answers/rates', HOUSING)).status).toBe(403);
    expect((await api(gw.url, 'GET', '/v1/answers/rates', FORCE)).status).toBe(403);
  });
});
