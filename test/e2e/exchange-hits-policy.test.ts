/**
 * The per-peer hits policy between two real gateways on loopback (real Redis, keys, HTTP): West
 * Midlands (A) sends a dossier to Warwickshire (B); B's partners report hits; B relays them back under
 * its peer file for A (`hits:`). With `kinds: [tenancy]`, `detail: generalise`, `partnerRecordRef: keep`
 * only the tenancy crosses, with its town and postcode district but not its street, with its reference;
 * the address hit stays at B. With no `hits:` block at all, the minimum crosses: kind and subject,
 * no detail, no reference. A's bundle shows exactly that, and B's audit says what was held back.
 */
import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newToken } from '../../gateway/config/clients.js';
import type { GatewayKey } from '../../gateway/crypto/openpgp.js';
import { clientsFile, openAs, peerClient, pointPeer, prepareSide } from '../helpers/peers.js';
import { api, fixture, ROOT, startTestGateway, TOKENS, waitSettled, type TestGateway, until } from '../helpers/gateway.js';

const FPS = JSON.parse(await readFile(path.join(ROOT, 'test/fixtures/keys/fingerprints.json'), 'utf8')) as Record<string, string>;
const FORCE = TOKENS['west-midlands-rocu']!;
const HITS_BLOCK = /\nhits:\n( {2}.*\n)+/;

let tmp: string;
let A: TestGateway;
let B: TestGateway;
let aKey: GatewayKey;
let bKey: GatewayKey;
let bPeerFile: string;
const tokenAtoB = newToken();
const tokenBtoA = newToken();

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'cordon-hits-policy-'));
  const a = await prepareSide(tmp, 'a');
  const b = await prepareSide(tmp, 'b');
  await pointPeer(a.policyDir, ['peers/warwickshire.yaml'], 'warwickshire', 'Warwickshire Police', `http://127.0.0.1:${b.port}`, b.key);
  await unlink(path.join(b.policyDir, 'sources/west-midlands.yaml'));
  await writeFile(path.join(b.policyDir, 'sources/warwickshire.yaml'), `source:\n  id: warwickshire\n  name: Warwickshire Police\n  key:\n    file: keys/warwickshire.asc\n    fingerprint: "${FPS.warwickshire}"\n`);
  await pointPeer(b.policyDir, ['peers/warwickshire.yaml'], 'west-midlands', 'West Midlands Police', `http://127.0.0.1:${a.port}`, a.key);
  // B's hits policy for A: tenancies only, generalised, with the partner's reference.
  bPeerFile = path.join(b.policyDir, 'peers/west-midlands.yaml');
  const text = await readFile(bPeerFile, 'utf8');
  await writeFile(bPeerFile, text.replace(HITS_BLOCK, '\nhits:\n  kinds: [tenancy]\n  detail: generalise\n  partnerRecordRef: keep\n'));
  const aClients = await clientsFile(a.stateDir, peerClient('warwickshire-gateway', 'warwickshire', tokenBtoA));
  const bClients = await clientsFile(b.stateDir, peerClient('west-midlands-gateway', 'west-midlands', tokenAtoB));
  await writeFile(path.join(a.stateDir, 'peers/warwickshire.token'), tokenAtoB, { mode: 0o600 });
  await writeFile(path.join(b.stateDir, 'peers/west-midlands.token'), tokenBtoA, { mode: 0o600 });
  const [gwA, gwB] = await Promise.all([
    startTestGateway({ policyDir: a.policyDir, stateDir: a.stateDir, port: a.port, clientsFile: aClients }),
    startTestGateway({ policyDir: b.policyDir, stateDir: b.stateDir, port: b.port, clientsFile: bClients }),
  ]);
  A = gwA;
  B = gwB;
  aKey = a.key;
  bKey = b.key;
}, 60_000);

afterAll(async () => {
  await Promise.all([A?.stop(), B?.stop()]);
  await rm(tmp, { recursive: true, force: true });
});

async function auditOf(gw: TestGateway): Promise<any[]> {
  return (await gw.redis.lrange(`${gw.prefix}:audit:log`, 0, -1)).map((r) => JSON.parse(r));
}

/** A sends the full dossier to B; returns A's id, B's id and council housing's packet of it at B with Daniel's ref. */
async function sendAcross(): Promise<{ id: string; remote: string; packet: string; daniel: string }> {
  const dossier = fixture('dossier-full.json') as any;
  dossier.requests = { ...dossier.requests, peers: ['warwickshire'] };
  const sent = await api(A.url, 'POST', '/v1/dossiers', FORCE, dossier);
  expect(sent.status, sent.text).toBe(202);
  const id = sent.json.id as string;
  await waitSettled(A.url, id);
  const status = await until('the envelope to be sent', async () => {
    const s = await api(A.url, 'GET', `/v1/dossiers/${id}`, FORCE);
    return s.json.peers?.[0]?.state === 'sent' ? s.json : undefined;
  });
  const remote = status.peers[0].remoteDossier as string;
  const created = await until('a housing packet at B', async () => (await auditOf(B)).find((r) => r.action === 'packet.created' && r.dossier === remote && r.recipient === 'council-housing'));
  const packet = created.packet as string;
  const body = await openAs('council-housing', (await api(B.url, 'GET', `/v1/packets/${packet}`, TOKENS['council-housing'])).text, bKey);
  const daniel = (body.dossier.subjects as any[]).find((s) => s.name?.given === 'Daniel').id as string;
  return { id, remote, packet, daniel };
}

async function reportAtB(packet: string, daniel: string): Promise<void> {
  const res = await api(B.url, 'POST', `/v1/packets/${packet}/hits`, TOKENS['council-housing'], {
    schema: 'cordon.hits/v1',
    packet,
    hits: [
      { subject: daniel, kind: 'tenancy', detail: { line1: '4 Mill Lane', town: 'Nuneaton', postcode: 'CV11 4AB', tenure: 'council', tenant: 'D. Okafor' }, matchedOn: ['name', 'dateOfBirth'], confidence: 'confirmed', partnerRecordRef: 'NBBC-7731' },
      { subject: daniel, kind: 'address', detail: { line1: '9 Canal Row', town: 'Bedworth', postcode: 'CV12 8NE' }, matchedOn: ['name'], confidence: 'probable', partnerRecordRef: 'NBBC-AD-12' },
    ],
  });
  expect(res.status, res.text).toBe(202);
}

async function bundleAtA(id: string): Promise<any> {
  return until('the relayed hits in A bundle', async () => {
    const r = await api(A.url, 'GET', `/v1/dossiers/${id}/hits`, FORCE);
    if (r.status !== 200) return undefined;
    const b = await openAs('west-midlands', r.text, aKey);
    return b.bundle.count > 0 ? b : undefined;
  });
}

describe('what of B’s partners’ hits crosses back to A, under B’s peer file', () => {
  it('listed kinds only, detail generalised, reference kept: as the file says', async () => {
    const { id, remote, packet, daniel } = await sendAcross();
    await reportAtB(packet, daniel);
    const bundle = await bundleAtA(id);
    expect(bundle.bundle.count).toBe(1);
    expect(bundle.subjects.S1).toEqual([
      expect.objectContaining({ partner: 'council-housing', kind: 'tenancy', via: 'warwickshire', signed: false, detail: { town: 'Nuneaton', postcodeDistrict: 'CV11', tenure: 'council' }, partnerRecordRef: 'NBBC-7731' }),
    ]);
    const text = JSON.stringify(bundle);
    for (const held of ['Mill Lane', 'CV11 4AB', 'Okafor', 'Canal Row', 'Bedworth', 'NBBC-AD-12']) expect(text).not.toContain(held);
    const relayed = (await auditOf(B)).find((r) => r.action === 'exchange.hits_relayed' && r.dossier === remote);
    expect(relayed).toMatchObject({ recipient: 'peer:west-midlands', count: 1, notRelayed: 1, hitsPolicy: { detail: 'generalise', partnerRecordRef: 'keep' } });
  }, 60_000);

  it('no hits block: the minimum crosses (kind and subject, no detail, no reference), every kind', async () => {
    const before = (await auditOf(B)).filter((r) => r.action === 'policy.loaded').length;
    await writeFile(bPeerFile, (await readFile(bPeerFile, 'utf8')).replace(HITS_BLOCK, '\n'));
    await until('B to load its edited peer file', async () => ((await auditOf(B)).filter((r) => r.action === 'policy.loaded').length > before ? true : undefined));
    const { id, packet, daniel } = await sendAcross();
    await reportAtB(packet, daniel);
    const bundle = await until('both relayed hits in A bundle', async () => {
      const b = await bundleAtA(id);
      return b.bundle.count === 2 ? b : undefined;
    });
    const hits = (bundle.subjects.S1 as any[]).map((h) => ({ kind: h.kind, detail: h.detail, ref: h.partnerRecordRef, via: h.via })).sort((x, y) => x.kind.localeCompare(y.kind));
    expect(hits).toEqual([
      { kind: 'address', detail: {}, ref: undefined, via: 'warwickshire' },
      { kind: 'tenancy', detail: {}, ref: undefined, via: 'warwickshire' },
    ]);
    const text = JSON.stringify(bundle);
    for (const held of ['Mill Lane', 'Nuneaton', 'NBBC', 'Okafor', 'Canal Row', 'Bedworth']) expect(text).not.toContain(held);
  }, 60_000);
});
