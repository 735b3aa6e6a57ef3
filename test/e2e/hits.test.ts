/**
 * The return path end to end (real Redis, real keys, real HTTP, GnuPG on both ends): the force pushes
 * the example dossier, council housing and DVLA pull and decrypt their packets, report hits quoting
 * their packet refs (as JSON, and as OpenPGP messages signed with their own keys), and the force fetches
 * one bundle, decrypts it with its own key and finds the hits under its own subject ids, with the links
 * the example data makes between subjects.
 */
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, fixture, ROOT, startTestGateway, TOKENS, waitSettled, type TestGateway } from '../helpers/gateway.js';
import { gpgDecryptVerify, gpgImport, withGnupgHome, type GnupgHome } from '../helpers/gpg.js';

const FINGERPRINTS = JSON.parse(await readFile(path.join(ROOT, 'test/fixtures/keys/fingerprints.json'), 'utf8')) as Record<string, string>;
const FORCE = TOKENS['west-midlands-rocu']!;

let gw: TestGateway;
let home: GnupgHome;
let gatewayKey: string;
let dossierId: string;
const packets = new Map<string, { id: string; body: any }>();

/** The packet ref of the subject with this given name, as the partner saw it. */
function ref(partner: string, given: string): string {
  const s = packets.get(partner)!.body.dossier.subjects.find((x: any) => x.name?.given === given);
  if (!s) throw new Error(`${partner} did not receive ${given}`);
  return s.id;
}

function run(cmd: string, args: string[], input: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

/** What a partner does with GnuPG: sign with its own key (or `signer`'s), encrypt to the gateway's key. */
async function gpgSignEncrypt(plaintext: string, signer: string | undefined): Promise<string> {
  const recipientFile = path.join(home.dir, 'gateway.asc');
  await writeFile(recipientFile, gatewayKey);
  const args = ['--batch', '--no-tty', '--pinentry-mode', 'loopback', '--passphrase', '', '--trust-model', 'always', '--armor', '--recipient-file', recipientFile];
  const res = await run('gpg', signer ? [...args, '--local-user', FINGERPRINTS[signer]!, '--sign', '--encrypt'] : [...args, '--encrypt'], plaintext, {
    ...process.env,
    GNUPGHOME: home.dir,
  });
  if (res.code !== 0) throw new Error(`gpg failed: ${res.stderr}`);
  return res.stdout;
}

async function hitCount(): Promise<number> {
  return gw.redis.hlen(`${gw.prefix}:dossier:${dossierId}:hits`);
}

async function fetchBundle(): Promise<any> {
  const res = await api(gw.url, 'GET', `/v1/dossiers/${dossierId}/hits`, FORCE);
  expect(res.status, res.text).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^application\/pgp-encrypted/);
  expect(res.headers.get('cache-control')).toBe('no-store');
  expect(res.text).toContain('-----BEGIN PGP MESSAGE-----');
  const { plaintext, goodSignatureFingerprint } = await gpgDecryptVerify(home, res.text, gatewayKey);
  expect(goodSignatureFingerprint).toMatch(/^[0-9A-F]{40}$/);
  return JSON.parse(plaintext);
}

beforeAll(async () => {
  gw = await startTestGateway();
  home = await withGnupgHome();
  gatewayKey = (await api(gw.url, 'GET', '/v1/keys/gateway')).text;
  for (const party of ['council-housing', 'dvla', 'west-midlands', 'intruder']) {
    await gpgImport(home, await readFile(path.join(ROOT, `test/fixtures/keys/${party}.sec.asc`), 'utf8'));
  }
  const pushed = await api(gw.url, 'POST', '/v1/dossiers', FORCE, fixture('dossier-full.json'));
  expect(pushed.status).toBe(202);
  dossierId = pushed.json.id;
  await waitSettled(gw.url, dossierId);
  for (const partner of ['council-housing', 'dvla']) {
    const list = await api(gw.url, 'GET', '/v1/packets', TOKENS[partner]);
    const id = list.json.packets[0].id as string;
    const res = await api(gw.url, 'GET', `/v1/packets/${id}`, TOKENS[partner]);
    const { plaintext } = await gpgDecryptVerify(home, res.text, gatewayKey);
    packets.set(partner, { id, body: JSON.parse(plaintext) });
  }
});

afterAll(async () => {
  await home?.cleanup();
  await gw?.stop();
});

const councilHits = () => ({
  schema: 'cordon.hits/v1',
  packet: packets.get('council-housing')!.id,
  hits: [
    {
      subject: ref('council-housing', 'Daniel'),
      kind: 'tenancy',
      detail: { line1: '18 Cedar Road', town: 'Coventry', postcode: 'CV6 5HX', tenure: 'council', since: '2022-05-01', tenant: 'Daniel Okafor' },
      matchedOn: ['name', 'dateOfBirth'],
      confidence: 'confirmed',
      partnerRecordRef: 'HSG-778812',
    },
    {
      // Housing is never told of the victim (Andrei, 22 Cedar Road): it reports the house against its landlord.
      subject: ref('council-housing', 'Daniel'),
      kind: 'address',
      detail: { line1: '22 Cedar Road', town: 'Coventry', postcode: 'CV6 5HX', occupants: 9, note: 'HMO licence refused 2025' },
      matchedOn: ['postcode'],
      confidence: 'possible',
      partnerRecordRef: 'HMO-2025-0441',
    },
    {
      subject: ref('council-housing', 'Daniel'),
      kind: 'address',
      detail: { line1: '22 Cedar Rd', town: 'Coventry', postcode: 'cv6 5hx', role: 'landlord of record on the HMO licence application' },
      matchedOn: ['name', 'dateOfBirth'],
      confidence: 'probable',
      partnerRecordRef: 'HMO-2025-0441-APP',
    },
  ],
});

const dvlaHits = () => ({
  schema: 'cordon.hits/v1',
  packet: packets.get('dvla')!.id,
  hits: [
    {
      subject: ref('dvla', 'Samuel'),
      kind: 'vehicle',
      detail: { vrm: 'kx19 lmn', make: 'Mercedes-Benz', model: 'Sprinter', colour: 'white', keeperSince: '2024-02-11' },
      matchedOn: ['name', 'dateOfBirth'],
      confidence: 'confirmed',
      partnerRecordRef: 'V5C-7781-2024',
    },
    {
      subject: ref('dvla', 'Samuel'),
      kind: 'address',
      detail: { line1: '14 Cedar Rd', town: 'Coventry', postcode: 'CV65HX', record: 'driving licence address' },
      matchedOn: ['name', 'dateOfBirth'],
      confidence: 'confirmed',
    },
  ],
});

describe('partners report hits; the force gets them back under its own subject ids', () => {
  it('council housing and DVLA post hits quoting their packet refs: 202 with counts', async () => {
    const council = await api(gw.url, 'POST', `/v1/packets/${packets.get('council-housing')!.id}/hits`, TOKENS['council-housing'], councilHits());
    expect(council.status, council.text).toBe(202);
    expect(council.json).toEqual({ packet: packets.get('council-housing')!.id, received: 3, accepted: 3, duplicates: 0 });
    const dvla = await api(gw.url, 'POST', `/v1/packets/${packets.get('dvla')!.id}/hits`, TOKENS['dvla'], dvlaHits());
    expect(dvla.status, dvla.text).toBe(202);
    expect(dvla.json).toMatchObject({ accepted: 2, duplicates: 0 });
    expect(await hitCount()).toBe(5);
  });

  it('the bundle decrypts with the force key (gpg), is signed by the gateway, and maps every hit to S1 and S2', async () => {
    const bundle = await fetchBundle();
    expect(bundle.bundle).toMatchObject({ dossier: dossierId, source: 'west-midlands', count: 5 });
    expect(Date.parse(bundle.bundle.generatedAt)).toBeGreaterThan(0);
    expect(Object.keys(bundle.subjects)).toEqual(['S1', 'S2']);
    const summary = (s: string) => bundle.subjects[s].map((h: any) => `${h.partner}:${h.kind}:${h.partnerRecordRef ?? '-'}`).sort();
    expect(summary('S1')).toEqual(['council-housing:address:HMO-2025-0441', 'council-housing:address:HMO-2025-0441-APP', 'council-housing:tenancy:HSG-778812']);
    expect(summary('S2')).toEqual(['dvla:address:-', 'dvla:vehicle:V5C-7781-2024']);
    const tenancy = bundle.subjects.S1.find((h: any) => h.kind === 'tenancy');
    expect(tenancy).toEqual({
      partner: 'council-housing',
      kind: 'tenancy',
      detail: { line1: '18 Cedar Road', town: 'Coventry', postcode: 'CV6 5HX', tenure: 'council', since: '2022-05-01', tenant: 'Daniel Okafor' },
      matchedOn: ['name', 'dateOfBirth'],
      confidence: 'confirmed',
      partnerRecordRef: 'HSG-778812',
      receivedAt: expect.any(String),
      agreement: { reference: 'ISA-WMP-CCC-HSG-2025-01' },
      signed: false, // reported as plain JSON with the partner's bearer token
    });
    expect(bundle.subjects.S2[0].agreement.reference).toBe('ISA-WMP-DVLA-2025-02');
    // No packet refs travel back to the force: it only ever sees its own subject ids.
    expect(JSON.stringify(bundle)).not.toMatch(/ref_[0-9a-f]{16}/);
  });

  it('links connect subjects where the example data and the hits meet (same address, vehicle, postcode)', async () => {
    const bundle = await fetchBundle();
    const links = bundle.links.map((l: any) => ({ kind: l.kind, value: l.value, subjects: l.subjects }));
    expect(links).toEqual([
      // S1's home in the dossier is DVLA's licence address for S2.
      { kind: 'address', value: '14 CEDAR ROAD, CV6 5HX', subjects: ['S1', 'S2'] },
      // S3 lives at 22 Cedar Road (dossier) where S1 is the landlord of record (council): the force, not
      // housing, learns that the HMO it reports is where a potential victim lives.
      { kind: 'address', value: '22 CEDAR ROAD, CV6 5HX', subjects: ['S1', 'S3'] },
      // S1 uses the Sprinter (dossier); DVLA has S2 as its keeper.
      { kind: 'vehicle', value: 'KX19LMN', subjects: ['S1', 'S2'] },
      // Several houses in one postcode unit: 14, 18 and 22 Cedar Road.
      { kind: 'postcode', value: 'CV6 5HX', subjects: ['S1', 'S2', 'S3'] },
    ]);
    const vehicle = bundle.links.find((l: any) => l.kind === 'vehicle');
    expect(vehicle.evidence).toEqual([
      { subject: 'S1', source: 'dossier', path: '/subjects/0/vehicles/1/vrm' },
      { subject: 'S2', source: 'dvla', hit: 'vehicle', path: 'detail.vrm', partnerRecordRef: 'V5C-7781-2024' },
    ]);
    const house = bundle.links.find((l: any) => l.value === '22 CEDAR ROAD, CV6 5HX');
    expect(house.evidence).toEqual(
      expect.arrayContaining([
        { subject: 'S3', source: 'dossier', path: '/subjects/2/addresses/0' },
        expect.objectContaining({ subject: 'S1', source: 'council-housing', partnerRecordRef: 'HMO-2025-0441' }),
        expect.objectContaining({ subject: 'S1', source: 'council-housing', partnerRecordRef: 'HMO-2025-0441-APP' }),
      ]),
    );
  });

  it('resubmitting the same hits stores nothing twice: 202 with every hit a duplicate', async () => {
    const again = await api(gw.url, 'POST', `/v1/packets/${packets.get('council-housing')!.id}/hits`, TOKENS['council-housing'], councilHits());
    expect(again.status).toBe(202);
    expect(again.json).toMatchObject({ received: 3, accepted: 0, duplicates: 3 });
    // The hit without a partner record ref is recognised by its content.
    const dvla = await api(gw.url, 'POST', `/v1/packets/${packets.get('dvla')!.id}/hits`, TOKENS['dvla'], dvlaHits());
    expect(dvla.json).toMatchObject({ accepted: 0, duplicates: 2 });
    // Same partner record ref and subject, changed detail: still the same record, the first report stands.
    const changed: any = councilHits();
    changed.hits = [{ ...changed.hits[0], detail: { ...changed.hits[0].detail, since: '2022-06-01' } }];
    const res = await api(gw.url, 'POST', `/v1/packets/${changed.packet}/hits`, TOKENS['council-housing'], changed);
    expect(res.json).toMatchObject({ accepted: 0, duplicates: 1 });
    expect(await hitCount()).toBe(5);
    expect((await fetchBundle()).bundle.count).toBe(5);
  });

  it("another partner cannot post hits on a packet it does not own: the same 404 as a missing packet", async () => {
    const body = councilHits();
    const other = await api(gw.url, 'POST', `/v1/packets/${body.packet}/hits`, TOKENS['dvla'], body);
    const missingId = `pkt_${'a'.repeat(26)}`;
    const missing = await api(gw.url, 'POST', `/v1/packets/${missingId}/hits`, TOKENS['dvla'], { ...body, packet: missingId });
    expect(other.status).toBe(404);
    expect(missing.status).toBe(404);
    expect({ ...other.json.error, requestId: '' }).toEqual({ ...missing.json.error, requestId: '' });
    expect(await hitCount()).toBe(5);
  });

  it('invalid hits give 400 with every path, and nothing of the submission is stored', async () => {
    const body: any = councilHits();
    body.hits[0].partnerRecordRef = 'NEW-1'; // would be new if the submission were accepted
    body.hits[1].confidence = 'certain';
    delete body.hits[2].matchedOn;
    body.hits.push({ subject: ref('council-housing', 'Samuel'), kind: 'tenancy', detail: { nested: { no: 1 } }, matchedOn: ['name'], confidence: 'possible' });
    const res = await api(gw.url, 'POST', `/v1/packets/${body.packet}/hits`, TOKENS['council-housing'], body);
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe('schema_violation');
    const paths = res.json.error.details.map((d: any) => d.path);
    expect(paths).toEqual(expect.arrayContaining(['/hits/1/confidence', '/hits/2/matchedOn', '/hits/3/detail/nested']));
    expect(await hitCount()).toBe(5);
  });

  it('a body naming another packet than the URL is refused with /packet', async () => {
    const body = councilHits();
    body.packet = packets.get('dvla')!.id;
    const res = await api(gw.url, 'POST', `/v1/packets/${packets.get('council-housing')!.id}/hits`, TOKENS['council-housing'], body);
    expect(res.status).toBe(400);
    expect(res.json.error).toMatchObject({ code: 'packet_mismatch', details: [{ path: '/packet' }] });
  });

  it('a subject ref that is not in the packet is refused with its index path; nothing is stored', async () => {
    const body = councilHits();
    body.hits[0]!.partnerRecordRef = 'NEW-2';
    body.hits[2]!.subject = ref('dvla', 'Daniel'); // DVLA's ref for the same person: not this packet's
    const res = await api(gw.url, 'POST', `/v1/packets/${body.packet}/hits`, TOKENS['council-housing'], body);
    expect(res.status).toBe(422);
    expect(res.json.error).toMatchObject({ code: 'unknown_subject_ref', details: [{ path: '/hits/2/subject' }] });
    expect(await hitCount()).toBe(5);
  });

  it("a kind outside the partner's checks is refused with its index path; nothing is stored", async () => {
    const body: any = dvlaHits();
    body.hits[0].partnerRecordRef = 'NEW-3';
    body.hits[1].kind = 'benefit-claim';
    const res = await api(gw.url, 'POST', `/v1/packets/${body.packet}/hits`, TOKENS['dvla'], body);
    expect(res.status).toBe(422);
    expect(res.json.error.code).toBe('hit_kind_not_permitted');
    expect(res.json.error.details).toEqual([expect.objectContaining({ path: '/hits/1/kind' })]);
    expect(res.json.error.details[0].message).toContain('vehicle, address');
    expect(await hitCount()).toBe(5);
  });

  it('hits signed with the partner key and encrypted to the gateway key are accepted', async () => {
    const body = {
      schema: 'cordon.hits/v1',
      packet: packets.get('dvla')!.id,
      hits: [
        {
          subject: ref('dvla', 'Daniel'),
          kind: 'vehicle',
          detail: { vrm: 'AB12CDE', make: 'BMW', model: 'X5', keeperSince: '2023-03-02' },
          matchedOn: ['name', 'dateOfBirth', 'drivingLicence'],
          confidence: 'confirmed',
          partnerRecordRef: 'V5C-1202-2023',
        },
      ],
    };
    const armored = await gpgSignEncrypt(JSON.stringify(body), 'dvla');
    const res = await api(gw.url, 'POST', `/v1/packets/${body.packet}/hits`, TOKENS['dvla'], armored, { 'content-type': 'application/pgp-encrypted' });
    expect(res.status, res.text).toBe(202);
    expect(res.json).toMatchObject({ accepted: 1, duplicates: 0 });
    const bundle = await fetchBundle();
    expect(bundle.subjects.S1.map((h: any) => h.partnerRecordRef)).toContain('V5C-1202-2023');
  });

  it('a bad signature (another key) or no signature is refused and nothing is stored', async () => {
    const before = await hitCount();
    const body = { ...dvlaHits(), hits: [{ ...dvlaHits().hits[0]!, partnerRecordRef: 'FORGED-1' }] };
    for (const armored of [await gpgSignEncrypt(JSON.stringify(body), 'intruder'), await gpgSignEncrypt(JSON.stringify(body), undefined)]) {
      const res = await api(gw.url, 'POST', `/v1/packets/${body.packet}/hits`, TOKENS['dvla'], armored, { 'content-type': 'application/pgp-encrypted' });
      expect(res.status).toBe(400);
      expect(res.json.error.code).toBe('signature_invalid');
      expect(res.json.error.message).toMatch(/signature/);
    }
    // Signed by council housing's own pinned key but sent by DVLA: not DVLA's signature.
    const council = await gpgSignEncrypt(JSON.stringify(body), 'council-housing');
    const res = await api(gw.url, 'POST', `/v1/packets/${body.packet}/hits`, TOKENS['dvla'], council, { 'content-type': 'application/pgp-encrypted' });
    expect(res.status).toBe(400);
    const garbage = await api(gw.url, 'POST', `/v1/packets/${body.packet}/hits`, TOKENS['dvla'], 'not a message', { 'content-type': 'application/pgp-encrypted' });
    expect(garbage.status).toBe(400);
    expect(await hitCount()).toBe(before);
  });

  it('only partners post hits and only the source fetches the bundle; wrong content types are 415', async () => {
    const body = councilHits();
    expect((await api(gw.url, 'POST', `/v1/packets/${body.packet}/hits`, FORCE, body)).status).toBe(403);
    expect((await api(gw.url, 'GET', `/v1/dossiers/${dossierId}/hits`, TOKENS['council-housing'])).status).toBe(403);
    expect((await api(gw.url, 'GET', `/v1/dossiers/${dossierId}/hits`)).status).toBe(401);
    const text = await api(gw.url, 'POST', `/v1/packets/${body.packet}/hits`, TOKENS['council-housing'], JSON.stringify(body), { 'content-type': 'text/plain' });
    expect(text.status).toBe(415);
    expect(text.json.error.code).toBe('unsupported_media_type');
    expect((await api(gw.url, 'GET', `/v1/dossiers/dos_${'0'.repeat(32)}/hits`, FORCE)).status).toBe(404);
    expect((await api(gw.url, 'PUT', `/v1/dossiers/${dossierId}/hits`, FORCE)).status).toBe(405);
  });

  it('receipts and deliveries are in the audit trail with counts and kinds, never values', async () => {
    const records = (await gw.redis.lrange(`${gw.prefix}:audit:log`, 0, -1)).map((r) => JSON.parse(r));
    const received = records.filter((r) => r.action === 'hits.received');
    expect(received[0]).toMatchObject({
      kind: 'combination',
      actor: 'council-housing',
      partner: 'council-housing',
      packet: packets.get('council-housing')!.id,
      dossier: dossierId,
      count: 3,
      duplicates: 0,
      kinds: ['address', 'tenancy'],
    });
    const delivered = records.filter((r) => r.action === 'hits.bundle_delivered');
    expect(delivered.length).toBeGreaterThan(0);
    expect(delivered[0]).toMatchObject({ kind: 'consultation', actor: 'west-midlands-rocu', dossier: dossierId, recipient: 'west-midlands', count: 5 });
    const text = JSON.stringify([...received, ...delivered]);
    for (const value of ['Cedar', 'CV6', 'KX19', 'HSG-778812', 'Okafor']) expect(text).not.toContain(value);
  });
});
