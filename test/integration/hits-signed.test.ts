/**
 * Signed hits against a real gateway (real Redis, keys, HTTP) on a copy of the sample policies where
 * council housing's agreement sets `requireSignedHits`: its plain-JSON hits and answers are refused with
 * 403 signature_required before they are read (nothing stored, audited as hits.refused / matches.refused),
 * its signed ones are taken; DWP (no such setting) may still send JSON. The force's bundle says per hit
 * whether it was signed.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../gateway/audit/log.js';
import { decryptAndVerify, parseArmoredPrivateKey, parseArmoredPublicKey } from '../../gateway/crypto/openpgp.js';
import { RedisAuditChain } from '../../gateway/store/audit.js';
import { Keys } from '../../gateway/store/redis.js';
import { api, fixture, ROOT, startTestGateway, TOKENS, waitSettled, type TestGateway } from '../helpers/gateway.js';
import { copyPolicies, editYaml } from '../helpers/policies.js';

const FORCE = TOKENS['west-midlands-rocu']!;
let gw: TestGateway;
let cleanup: () => Promise<void>;
let gatewayKey: string;
let dossier: string;

async function packetOf(partner: string): Promise<{ id: string; refs: Record<string, string> }> {
  const status = await api(gw.url, 'GET', `/v1/dossiers/${dossier}`, FORCE);
  const id = status.json.deliveries.find((d: any) => d.partner === partner).packetId as string;
  const res = await api(gw.url, 'GET', `/v1/packets/${id}`, TOKENS[partner]);
  const secret = await parseArmoredPrivateKey(await readFile(path.join(ROOT, `test/fixtures/keys/${partner}.sec.asc`), 'utf8'));
  const { data } = await decryptAndVerify(res.text, secret, [await parseArmoredPublicKey(gatewayKey)]);
  const refs: Record<string, string> = {};
  // DWP is asked first (after-match): its packet is a match request, `{match, subjects: [{ref, …}]}`.
  const plain = JSON.parse(data);
  for (const s of plain.dossier?.subjects ?? plain.subjects) refs[s.name.given] = s.id ?? s.ref;
  return { id, refs };
}

/** `body` signed with the partner's TEST key and encrypted to the gateway. */
async function signed(partner: string, body: unknown): Promise<string> {
  const secret = await parseArmoredPrivateKey(await readFile(path.join(ROOT, `test/fixtures/keys/${partner}.sec.asc`), 'utf8'));
  return (await openpgp.encrypt({ message: await openpgp.createMessage({ text: JSON.stringify(body) }), encryptionKeys: await parseArmoredPublicKey(gatewayKey), signingKeys: secret })) as string;
}

function hitsOf(packet: string, subject: string, kind: string, ref: string) {
  return { schema: 'cordon.hits/v1', packet, hits: [{ subject, kind, detail: { town: 'Coventry' }, matchedOn: ['name'], confidence: 'probable', partnerRecordRef: ref }] };
}

beforeAll(async () => {
  const copy = await copyPolicies();
  cleanup = copy.cleanup;
  await editYaml(path.join(copy.dir, 'partners/council-housing.yaml'), ['agreement', 'requireSignedHits'], true);
  gw = await startTestGateway({ policyDir: copy.dir });
  gatewayKey = (await api(gw.url, 'GET', '/v1/keys/gateway')).text;
  const res = await api(gw.url, 'POST', '/v1/dossiers', FORCE, fixture('dossier-full.json'));
  expect(res.status, res.text).toBe(202);
  dossier = res.json.id;
  await waitSettled(gw.url, dossier);
});

afterAll(async () => {
  await gw?.stop();
  await cleanup?.();
});

describe('requireSignedHits', () => {
  it('refuses the partner’s unsigned hits and answers (403 signature_required), nothing stored, audited; takes signed ones; the bundle marks each hit signed or not', async () => {
    const housing = await packetOf('council-housing');
    const dwp = await packetOf('dwp-benefits');
    const hitsKey = new Keys(gw.prefix).hits(dossier);
    const audit = new AuditLog(new RedisAuditChain(gw.redis, new Keys(gw.prefix)));
    const before = (await audit.read()).length;

    const plain = await api(gw.url, 'POST', `/v1/packets/${housing.id}/hits`, TOKENS['council-housing'], hitsOf(housing.id, housing.refs.Daniel!, 'tenancy', 'HSG-1'));
    expect(plain.status, plain.text).toBe(403);
    expect(plain.json.error).toMatchObject({ code: 'signature_required', message: expect.stringMatching(/requires hits signed with your pinned key.*nothing was stored/) });
    const answers = await api(gw.url, 'POST', `/v1/packets/${housing.id}/matches`, TOKENS['council-housing'], { schema: 'cordon.matches/v1', packet: housing.id, results: [{ subject: housing.refs.Daniel!, result: 'hit' }] });
    expect(answers.status, answers.text).toBe(403);
    expect(answers.json.error.code).toBe('signature_required');
    expect(await gw.redis.hlen(hitsKey)).toBe(0);
    expect((await api(gw.url, 'GET', `/v1/dossiers/${dossier}`, FORCE)).json.matches['council-housing']).toEqual({ S1: 'pending', S2: 'pending' });
    const refusals = (await audit.read()).slice(before);
    expect(refusals.map((r) => [r.action, r.reason, r.actor])).toEqual([
      ['hits.refused', 'signature_required', 'council-housing'],
      ['matches.refused', 'signature_required', 'council-housing'],
    ]);

    // Signed: taken. DWP, whose agreement does not ask for signatures, may still send JSON.
    const good = await api(gw.url, 'POST', `/v1/packets/${housing.id}/hits`, TOKENS['council-housing'], await signed('council-housing', hitsOf(housing.id, housing.refs.Daniel!, 'tenancy', 'HSG-1')), { 'content-type': 'application/pgp-encrypted' });
    expect(good.status, good.text).toBe(202);
    const json = await api(gw.url, 'POST', `/v1/packets/${dwp.id}/hits`, TOKENS['dwp-benefits'], hitsOf(dwp.id, dwp.refs.Daniel!, 'benefit-claim', 'DWP-1'));
    expect(json.status, json.text).toBe(202);

    const res = await api(gw.url, 'GET', `/v1/dossiers/${dossier}/hits`, FORCE);
    expect(res.status).toBe(200);
    const secret = await parseArmoredPrivateKey(await readFile(path.join(ROOT, 'test/fixtures/keys/west-midlands.sec.asc'), 'utf8'));
    const bundle = JSON.parse((await decryptAndVerify(res.text, secret, [await parseArmoredPublicKey(gatewayKey)])).data);
    const byPartner = Object.fromEntries((bundle.subjects.S1 as any[]).map((h) => [h.partner, h.signed]));
    expect(byPartner).toEqual({ 'council-housing': true, 'dwp-benefits': false });
  });
});
