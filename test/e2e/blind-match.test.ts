/**
 * Blind matching end to end against a real gateway (real Redis, OpenPGP keys, HTTP) on the sample
 * policies: Riverside Homes, a housing association under `disclosure: blind-match`, runs the partner
 * client (gateway/client/blind.ts) on a records file holding one of a dossier's four subjects. The
 * force sees a hit for that one and no trace for three; the follow-up disclosure holds that subject
 * only; nothing the partner received for the dossier names the other three. An answer of made-up
 * values obtains nothing, and the partner's client refuses a request over its cap.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, writeFile } from 'node:fs/promises';
import { BlindPartner, parseRecords, type BlindPartnerOptions } from '../../gateway/client/blind.js';
import { partnerMatch } from '../../scripts/cli/partner-match.js';
import { decryptAndVerify, encryptAndSign, parseArmoredPrivateKey, parseRecipientKey, readPublicKeyInfo } from '../../gateway/crypto/openpgp.js';
import { api, fixture, ROOT, startTestGateway, TOKENS, until, waitSettled, type TestGateway } from '../helpers/gateway.js';

const FORCE = TOKENS['west-midlands-rocu']!;
const PARTNER = 'riverside-homes';
const TOKEN = TOKENS[PARTNER]!;

let gw: TestGateway;
let gatewayKey: string;
let secretArmored: string;
let stateDir: string;

/** dossier-full with four adult subjects (a member and an associate where it has a victim and a child), asked of Riverside Homes only. */
function fourSubjects(reference: string): Record<string, any> {
  const d = fixture('dossier-full.json') as any;
  d.reference = reference;
  d.subjects[2].role = 'member';
  d.subjects[3].dateOfBirth = '1996-07-19';
  delete d.subjects[3].vulnerabilities;
  d.requests = { checks: ['tenancies'], partners: [PARTNER] };
  return d;
}

/** Andrei Popescu (S3) among made-up tenants; the other three subjects are not held. */
const RECORDS = [
  'tenancyRef,given,family,dateOfBirth,line1,postcode',
  ...Array.from({ length: 40 }, (_, i) => `T-${1000 + i},Tenant${i},Example${i},19${50 + (i % 40)}-0${1 + (i % 9)}-1${i % 9},${i + 1} Example Street,CV${1 + (i % 6)} ${i % 9}AB`),
  'T-2000,"Andrei","Popescu",2000-02-05,"22 Cedar Rd","cv6 5hx"',
].join('\n');

async function push(reference: string): Promise<string> {
  const res = await api(gw.url, 'POST', '/v1/dossiers', FORCE, fourSubjects(reference));
  expect(res.status, res.text).toBe(202);
  expect(res.json.recipients.map((r: any) => r.partner)).toContain(PARTNER);
  await waitSettled(gw.url, res.json.id);
  return res.json.id;
}

async function status(id: string): Promise<any> {
  return (await api(gw.url, 'GET', `/v1/dossiers/${id}`, FORCE)).json;
}

async function openPacket(id: string): Promise<string> {
  const res = await api(gw.url, 'GET', `/v1/packets/${id}`, TOKEN);
  expect(res.status, res.text).toBe(200);
  const { data } = await decryptAndVerify(res.text, await parseArmoredPrivateKey(secretArmored), [(await parseRecipientKey(gatewayKey, (await readPublicKeyInfo(gatewayKey)).fingerprint)).key]);
  return data;
}

const PGP = { 'content-type': 'application/pgp-encrypted' };

/** `body` signed with the partner's TEST key and encrypted to the gateway, as its client sends it. */
async function signed(body: unknown): Promise<string> {
  const signer = await parseArmoredPrivateKey(secretArmored);
  const gk = await parseRecipientKey(gatewayKey, (await readPublicKeyInfo(gatewayKey)).fingerprint);
  return encryptAndSign(JSON.stringify(body), gk, { privateKey: signer, publicKey: signer.toPublic(), publicArmored: '', fingerprint: signer.getFingerprint().toUpperCase() });
}

function client(extra: Partial<BlindPartnerOptions> = {}) {
  return BlindPartner.open({ gateway: gw.url, token: TOKEN, secretKeyArmored: secretArmored, gatewayKeyArmored: gatewayKey, stateDir, keyTypes: ['name-dob', 'address-family'], ...extra });
}

beforeAll(async () => {
  gw = await startTestGateway();
  gatewayKey = (await api(gw.url, 'GET', '/v1/keys/gateway')).text;
  secretArmored = await readFile(path.join(ROOT, `test/fixtures/keys/${PARTNER}.sec.asc`), 'utf8');
  stateDir = await mkdtemp(path.join(tmpdir(), 'cordon-blind-'));
});

afterAll(async () => {
  await gw?.stop();
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

describe('blind matching (disclosure: blind-match)', () => {
  it('a hit for the one subject the partner holds, no trace for three, a follow-up with that subject only, and nothing about the other three', async () => {
    const partner = await client();
    const records = parseRecords(RECORDS, 'tenants.csv');
    const first = await partner.publish(records);
    expect(first).toMatchObject({ published: true, records: 41, keys: 82, cached: 0 });
    // Unchanged records: nothing rebuilt, nothing published again.
    expect(await partner.publish(records)).toMatchObject({ published: false, digest: first.digest, cached: 82 });

    const id = await push('OP-BLIND-1');
    const blindPacket = (await status(id)).deliveries.find((d: any) => d.partner === PARTNER).matchPacketId as string;
    expect((await api(gw.url, 'GET', '/v1/packets', TOKEN)).json.packets.find((p: any) => p.id === blindPacket).type).toBe('blind-match');
    // A partner cannot claim hits on a blind-match request.
    const claim = await api(gw.url, 'POST', `/v1/packets/${blindPacket}/matches`, TOKEN, await signed({ schema: 'cordon.matches/v1', packet: blindPacket, results: [] }), PGP);
    expect(claim.status).toBe(409);
    expect(claim.json.error.code).toBe('blind_answered_by_gateway');

    expect(await partner.answerPending()).toEqual([{ packet: blindPacket, outcome: 'answered' }]);
    const matches = await until('the blind-match result', async () => {
      const s = await status(id);
      const row = s.matches?.[PARTNER];
      return row && !Object.values(row).includes('pending') ? row : undefined;
    });
    expect(matches).toEqual({ S1: 'no_trace', S2: 'no_trace', S3: 'hit', S4: 'no_trace' });

    const followUp = await until('the follow-up disclosure', async () => {
      const list = (await api(gw.url, 'GET', '/v1/packets', TOKEN)).json.packets as Array<{ id: string; type: string }>;
      return list.find((p) => p.type === 'packet');
    });
    const disclosed = JSON.parse(await openPacket(followUp.id));
    expect(disclosed.dossier.subjects.map((s: any) => `${s.name.given} ${s.name.family}`)).toEqual(['Andrei Popescu']);

    // Everything the partner received for this dossier: every packet's plaintext and every answer.
    const received = [await openPacket(blindPacket), JSON.stringify(disclosed)].join('\n');
    const others = ['Daniel', 'Samuel', 'Tyler', 'Okafor', 'Brooks', 'Danny', '1987-04-12', '1991-11-30', '1996-07-19', 'QQ123456C', 'QQ654321A', '14 Cedar Road', 'Stoney Stanton', 'Lythalls', 'CV1 4FS', 'CV6 6FP'];
    for (const v of others) {
      expect(received.toLowerCase(), v).not.toContain(v.toLowerCase());
    }
    const request = JSON.parse(await openPacket(blindPacket));
    expect(Object.keys(request).sort()).toEqual(['blindMatch', 'request']);
    expect(request.request.elements).toHaveLength(32); // 8 keys at most, padded
  });

  it('the same subjects in a second request are blinded afresh, and made-up answer values obtain nothing', async () => {
    const id = await push('OP-BLIND-2');
    const blindPacket = (await status(id)).deliveries.find((d: any) => d.partner === PARTNER).matchPacketId as string;
    const request = JSON.parse(await openPacket(blindPacket)).request;
    const earlier = (await api(gw.url, 'GET', '/v1/packets', TOKEN)).json.packets.filter((p: any) => p.type === 'blind-match' && p.id !== blindPacket);
    const before = JSON.parse(await openPacket(earlier[0].id)).request.elements as string[];
    expect(request.elements.filter((e: string) => before.includes(e))).toEqual([]);

    const held = (await api(gw.url, 'GET', '/v1/blind/setup', TOKEN)).json;
    expect(held.digest).toMatch(/^sha256:/);
    const setupKey = JSON.parse(await readFile(path.join(stateDir, 'oprf-key.json'), 'utf8')).publicKey as string;
    const madeUp = { schema: 'cordon.blind-answer/v1', packet: blindPacket, publicKey: setupKey, evaluated: request.elements, proof: Buffer.alloc(64, 7).toString('base64') };
    const res = await api(gw.url, 'POST', `/v1/packets/${blindPacket}/blind-answer`, TOKEN, await signed(madeUp), PGP);
    expect(res.status, res.text).toBe(422);
    expect(res.json.error).toMatchObject({ code: 'blind_proof_invalid', details: [{ path: '/proof' }] });
    // Unsigned JSON is refused before it is read: the agreement requires signed submissions.
    const plain = await api(gw.url, 'POST', `/v1/packets/${blindPacket}/blind-answer`, TOKEN, madeUp);
    expect(plain.status).toBe(403);
    await new Promise((r) => setTimeout(r, 300));
    const s = await status(id);
    expect(s.matches[PARTNER], JSON.stringify(s)).toEqual({ S1: 'pending', S2: 'pending', S3: 'pending', S4: 'pending' });
    const list = (await api(gw.url, 'GET', '/v1/packets', TOKEN)).json.packets as Array<{ id: string; type: string }>;
    expect(list.filter((p) => p.type === 'packet')).toHaveLength(1); // the first dossier's follow-up only
  });

  it('cordon partner match: the key types from the agreement, the setup unchanged, the waiting request answered', async () => {
    const id = await push('OP-BLIND-CLI');
    const files = path.join(stateDir, 'cli');
    await rm(files, { recursive: true, force: true });
    await mkdir(files, { recursive: true });
    await writeFile(path.join(files, 'tenants.csv'), RECORDS);
    await writeFile(path.join(files, 'gateway.asc'), gatewayKey);
    await writeFile(path.join(files, 'token'), TOKEN);
    const lines: string[] = [];
    const base = { records: path.join(files, 'tenants.csv'), partner: PARTNER, url: gw.url, tokenFile: path.join(files, 'token'), key: path.join(ROOT, `test/fixtures/keys/${PARTNER}.sec.asc`), gatewayKey: path.join(files, 'gateway.asc'), maxElements: '256', maxRequestsPerDay: '50', answer: true };
    // The same state directory as the client above: its key and cache, so the setup is unchanged.
    await partnerMatch({ ...base, state: stateDir }, (l) => lines.push(l));
    expect(lines[0]).toMatch(/^setup unchanged: sha256:/);
    // This dossier's request, and the one answered with made-up values above, still unanswered.
    const blindPacket = (await status(id)).deliveries.find((d: any) => d.partner === PARTNER).matchPacketId as string;
    expect(lines).toContain(`answered ${blindPacket}`);
    const row = await until('the result', async () => {
      const r = (await status(id)).matches?.[PARTNER];
      return r && !Object.values(r).includes('pending') ? r : undefined;
    });
    expect(row).toEqual({ S1: 'no_trace', S2: 'no_trace', S3: 'hit', S4: 'no_trace' });
    await expect(partnerMatch({ ...base, gatewayKey: undefined, state: stateDir }, () => undefined)).rejects.toThrow(/pinned gateway key/);
  });

  it("the partner's client refuses a request over its size cap", async () => {
    await push('OP-BLIND-3');
    const partner = await client({ maxElements: 16, stateDir: path.join(stateDir, 'capped') });
    const results = (await partner.answerPending()).filter((r) => r.outcome === 'refused');
    expect(results.length).toBeGreaterThan(0);
    for (const r of results) expect(r).toMatchObject({ outcome: 'refused', reason: 'request_too_large' });
  });
});
