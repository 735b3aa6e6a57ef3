/**
 * Hits against a real gateway (real Redis, keys, HTTP) on edited copies of the sample policies:
 * sources kept apart, cross-dossier links, nothing plaintext at rest, the audit gate, expired packets,
 * agreements that end after hits were received, a missing source key.
 */
import { cp, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken } from '../../gateway/config/clients.js';
import { decryptAndVerify, parseArmoredPrivateKey, parseArmoredPublicKey } from '../../gateway/crypto/openpgp.js';
import { Redis } from 'ioredis';
import { api, deleteKeys, dumpKeys, fixture, REDIS_URL, ROOT, startTestGateway, TOKENS, waitSettled, type TestGateway, withoutCiphertext } from '../helpers/gateway.js';
import { changeRecordAsGateway } from '../helpers/records.js';

const FORCE = TOKENS['west-midlands-rocu']!;
const OTHER_FORCE = 'other-force-test-token';

let dir: string;
let policies: string;
let clientsFile: string;
let gw: TestGateway;
let gatewayKey: string;
/** The first gateway's prefix and state: restarts reuse them (startTestGateway reports its own, not overrides). */
let prefix: string;
let stateDir: string;

async function decryptBundle(armored: string): Promise<any> {
  const secret = await parseArmoredPrivateKey(await readFile(path.join(ROOT, 'test/fixtures/keys/west-midlands.sec.asc'), 'utf8'));
  const { data } = await decryptAndVerify(armored, secret, [await parseArmoredPublicKey(gatewayKey)]);
  return JSON.parse(data);
}

async function push(token: string, dossier: unknown): Promise<string> {
  const res = await api(gw.url, 'POST', '/v1/dossiers', token, dossier);
  expect(res.status, res.text).toBe(202);
  await waitSettledAs(res.json.id, token);
  return res.json.id;
}

async function waitSettledAs(id: string, token: string): Promise<void> {
  if (token === FORCE) {
    await waitSettled(gw.url, id);
    return;
  }
  for (let i = 0; i < 300; i++) {
    const res = await api(gw.url, 'GET', `/v1/dossiers/${id}`, token);
    if (res.json.state !== 'accepted' && res.json.deliveries.every((d: any) => d.state !== 'queued')) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('not settled');
}

/** The partner's packet for a dossier, decrypted with its TEST key. */
async function packetOf(partner: string, dossierId: string, token = FORCE): Promise<{ id: string; body: any }> {
  const status = await api(gw.url, 'GET', `/v1/dossiers/${dossierId}`, token);
  const id = status.json.deliveries.find((d: any) => d.partner === partner).packetId as string;
  const res = await api(gw.url, 'GET', `/v1/packets/${id}`, TOKENS[partner]);
  const secret = await parseArmoredPrivateKey(await readFile(path.join(ROOT, `test/fixtures/keys/${partner}.sec.asc`), 'utf8'));
  const { data } = await decryptAndVerify(res.text, secret, [await parseArmoredPublicKey(gatewayKey)]);
  return { id, body: JSON.parse(data) };
}

function refOf(packet: { body: any }, given: string): string {
  return packet.body.dossier.subjects.find((s: any) => s.name.given === given).id;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cordon-hits-'));
  policies = path.join(dir, 'policies');
  await cp(path.join(ROOT, 'policies'), policies, { recursive: true });
  // A second force, with its own (TEST) key pin, to show sources never see each other's dossiers.
  await writeFile(
    path.join(policies, 'sources/other-force.yaml'),
    'source:\n  id: other-force\n  name: Other Force\n  key:\n    file: keys/west-midlands.asc\n    fingerprint: "3592B5342928DE3E0933D8B142CA952FED11EB04"\n',
  );
  clientsFile = path.join(dir, 'clients.yaml');
  const sample = await readFile(path.join(ROOT, 'policies/clients.sample.yaml'), 'utf8');
  await writeFile(clientsFile, `${sample}\n  - id: other-force-rocu\n    role: source\n    source: other-force\n    tokens: ["${hashToken(OTHER_FORCE)}"]\n`);
  gw = await startTestGateway({ policyDir: policies, clientsFile });
  prefix = gw.prefix;
  stateDir = gw.stateDir;
  gatewayKey = (await api(gw.url, 'GET', '/v1/keys/gateway')).text;
});

afterAll(async () => {
  await gw?.stop();
  if (prefix) {
    const redis = new Redis(REDIS_URL);
    await deleteKeys(redis, prefix);
    await redis.quit();
  }
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Stops the gateway (keeping Redis and state) and starts it again on the same prefix and state dir. */
async function restart(): Promise<void> {
  const first = gw;
  await first.close();
  await first.redis.quit();
  gw = await startTestGateway({ policyDir: policies, clientsFile, redisPrefix: prefix, stateDir });
}

describe('hits across dossiers and sources', () => {
  let a: string;
  let b: string;
  let c: string;

  it('the dossier data alone already links subjects; the bundle has no hits yet', async () => {
    a = await push(FORCE, fixture('dossier-full.json'));
    const res = await api(gw.url, 'GET', `/v1/dossiers/${a}/hits`, FORCE);
    expect(res.status).toBe(200);
    const bundle = await decryptBundle(res.text);
    expect(bundle.bundle.count).toBe(0);
    expect(bundle.subjects).toEqual({});
    expect(bundle.links).toEqual([expect.objectContaining({ kind: 'postcode', value: 'CV6 5HX', subjects: ['S1', 'S3'] })]);
  });

  it("links reach the same source's other dossiers (by keyed HMAC), never another source's", async () => {
    const minimal = fixture('dossier-minimal.json') as any;
    minimal.subjects[0].vehicles = [{ vrm: 'KX19LMN' }];
    b = await push(FORCE, minimal);
    const other = fixture('dossier-minimal.json') as any;
    other.originator.force = 'other-force';
    other.reference = 'OTH-2026-1';
    other.subjects[0].vehicles = [{ vrm: 'KX19 LMN' }];
    c = await push(OTHER_FORCE, other);

    // DVLA reports a phone for B's subject that is S1's phone in A.
    const packet = await packetOf('dvla', b);
    const res = await api(gw.url, 'POST', `/v1/packets/${packet.id}/hits`, TOKENS['dvla'], {
      schema: 'cordon.hits/v1',
      packet: packet.id,
      hits: [{ subject: refOf(packet, 'Lee'), kind: 'vehicle', detail: { vrm: 'LX07ABC', phone: '+44 (0)7700 900123' }, matchedOn: ['vrm'], confidence: 'probable', partnerRecordRef: 'DVLA-B-1' }],
    });
    expect(res.status, res.text).toBe(202);

    const bundleA = await decryptBundle((await api(gw.url, 'GET', `/v1/dossiers/${a}/hits`, FORCE)).text);
    const vehicle = bundleA.links.find((l: any) => l.kind === 'vehicle');
    expect(vehicle).toMatchObject({ value: 'KX19LMN', subjects: ['S1'], otherDossiers: [{ dossier: b, reference: 'WMP-OCG-2026-00999', subject: 'S1' }] });
    expect(vehicle.evidence).toEqual([
      { subject: 'S1', source: 'dossier', path: '/subjects/0/vehicles/1/vrm' },
      { dossier: b, subject: 'S1', source: 'dossier', path: '/subjects/0/vehicles/0/vrm' },
    ]);
    const phone = bundleA.links.find((l: any) => l.kind === 'phone');
    expect(phone).toMatchObject({ value: '+447700900123', subjects: ['S1'], otherDossiers: [{ dossier: b, subject: 'S1' }] });
    expect(JSON.stringify(bundleA)).not.toContain(c);
    expect(JSON.stringify(bundleA)).not.toContain('OTH-2026-1');
    // Nothing else of B enters A's bundle: not its other vehicle, not its hits' other values.
    expect(JSON.stringify(bundleA)).not.toContain('LX07');
    expect(JSON.stringify(bundleA)).not.toContain('Lee');

    const bundleB = await decryptBundle((await api(gw.url, 'GET', `/v1/dossiers/${b}/hits`, FORCE)).text);
    expect(bundleB.subjects.S1).toHaveLength(1);
    expect(bundleB.links.map((l: any) => [l.kind, l.subjects, l.otherDossiers.map((o: any) => `${o.dossier === a ? 'A' : o.dossier}:${o.subject}`)])).toEqual([
      ['vehicle', ['S1'], ['A:S1']],
      ['phone', ['S1'], ['A:S1']],
    ]);

    const bundleC = await decryptBundle((await api(gw.url, 'GET', `/v1/dossiers/${c}/hits`, OTHER_FORCE)).text);
    expect(bundleC.links).toEqual([]);
  });

  it("another source's dossier answers like a missing one", async () => {
    const other = await api(gw.url, 'GET', `/v1/dossiers/${a}/hits`, OTHER_FORCE);
    const missing = await api(gw.url, 'GET', `/v1/dossiers/dos_${'f'.repeat(32)}/hits`, OTHER_FORCE);
    expect(other.status).toBe(404);
    expect({ ...other.json.error, requestId: '' }).toEqual({ ...missing.json.error, requestId: '' });
  });

  it('Redis holds hits only sealed: no hit value, ref or normalised value in plaintext', async () => {
    const packet = await packetOf('council-housing', a);
    const res = await api(gw.url, 'POST', `/v1/packets/${packet.id}/hits`, TOKENS['council-housing'], {
      schema: 'cordon.hits/v1',
      packet: packet.id,
      hits: [
        {
          subject: refOf(packet, 'Daniel'),
          kind: 'address',
          detail: { line1: '22 Cedar Road', town: 'Coventry', postcode: 'CV6 5HX', occupants: 9, note: 'HMO licence refused 2025', phone: '07700 900555' },
          matchedOn: ['postcode'],
          confidence: 'possible',
          partnerRecordRef: 'HMO-2025-0441',
        },
      ],
    });
    expect(res.status).toBe(202);
    const dump = withoutCiphertext([...(await dumpKeys(gw.redis, prefix))].map(([k, v]) => `${k} ${v}`).join('\n'));
    expect(dump).toContain('[sealed]');
    for (const value of ['Cedar', 'CEDAR', 'CV6', 'HMO-2025-0441', 'HMO licence', '900555', '+447700900555', '+447700900123', 'KX19', 'kx19', 'LX07', 'Popescu', 'Andrei', 'Okafor', refOf(packet, 'Daniel')]) {
      expect(dump, value).not.toContain(value);
    }
  });
});

describe('bad hits', () => {
  it('control characters (ANSI escapes and the like) in detail → 400 naming each path; tab and newline pass; nothing is stored', async () => {
    const id = await push(FORCE, fixture('dossier-full.json'));
    const packet = await packetOf('council-housing', id);
    const hit = (detail: Record<string, unknown>) => ({ subject: refOf(packet, 'Daniel'), kind: 'address', detail, matchedOn: ['postcode'], confidence: 'possible' });
    const before = await dumpKeys(gw.redis, prefix);
    const res = await api(gw.url, 'POST', `/v1/packets/${packet.id}/hits`, TOKENS['council-housing'], {
      schema: 'cordon.hits/v1',
      packet: packet.id,
      hits: [hit({ line1: '1 Elm Street', postcode: 'CV1 1AA' }), hit({ line1: '\u001b[2J\u001b[1;1HAll clear', note: 'fine', bell: 'a\u0007', csi: 'x\u009b31m', cr: 'visible\rhidden' })],
    });
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe('schema_violation');
    expect(res.json.error.details.map((d: any) => d.path)).toEqual(['/hits/1/detail/line1', '/hits/1/detail/bell', '/hits/1/detail/csi', '/hits/1/detail/cr']);
    expect(res.text).not.toContain('All clear');
    const after = await dumpKeys(gw.redis, prefix);
    // No hit, link or index written (the fan-out's own queue bookkeeping may still move meanwhile).
    const changed = [...after.keys()].filter((k) => /hit|link|match/.test(k) && after.get(k) !== before.get(k));
    expect(changed).toEqual([]);
    expect(after.has(`${prefix}:dossier:${id}:hits`)).toBe(false);
    const ok = await api(gw.url, 'POST', `/v1/packets/${packet.id}/hits`, TOKENS['council-housing'], {
      schema: 'cordon.hits/v1',
      packet: packet.id,
      hits: [hit({ line1: '1 Elm Street', postcode: 'CV1 1AA', note: 'two lines:\n\tsecond' })],
    });
    expect(ok.status, ok.text).toBe(202);
  });
});

describe('fail closed', () => {
  it('if the audit cannot be written, hits are not kept and no bundle goes out (503)', async () => {
    const id = await push(FORCE, fixture('dossier-full.json'));
    const packet = await packetOf('council-housing', id);
    const head = `${prefix}:audit:head`;
    const saved = await gw.redis.get(head);
    await gw.redis.del(head);
    await gw.redis.hset(head, 'broken', '1'); // wrong type: every audit append fails
    try {
      const res = await api(gw.url, 'POST', `/v1/packets/${packet.id}/hits`, TOKENS['council-housing'], {
        schema: 'cordon.hits/v1',
        packet: packet.id,
        hits: [{ subject: refOf(packet, 'Daniel'), kind: 'tenancy', detail: { postcode: 'CV6 5HX' }, matchedOn: ['name'], confidence: 'possible' }],
      });
      expect(res.status).toBe(503);
      expect(res.json.error.code).toBe('audit_unavailable');
      expect(await gw.redis.exists(`${prefix}:dossier:${id}:hits`)).toBe(0);
      const bundle = await api(gw.url, 'GET', `/v1/dossiers/${id}/hits`, FORCE);
      expect(bundle.status).toBe(503);
      expect(bundle.text).not.toContain('PGP MESSAGE');
    } finally {
      await gw.redis.del(head);
      if (saved) await gw.redis.set(head, saved);
    }
  });

  it('a packet past its expiry answers 410 to its partner (404 to anyone else); nothing is stored', async () => {
    const id = await push(FORCE, fixture('dossier-full.json'));
    const packet = await packetOf('dvla', id);
    await changeRecordAsGateway(gw, 'packet', packet.id, { set: { expiresAt: new Date(Date.now() - 1000).toISOString() } });
    const body = { schema: 'cordon.hits/v1', packet: packet.id, hits: [{ subject: refOf(packet, 'Daniel'), kind: 'vehicle', detail: { vrm: 'AB12CDE' }, matchedOn: ['name'], confidence: 'confirmed' }] };
    const res = await api(gw.url, 'POST', `/v1/packets/${packet.id}/hits`, TOKENS['dvla'], body);
    expect(res.status).toBe(410);
    expect(res.json.error.code).toBe('packet_expired');
    expect((await api(gw.url, 'POST', `/v1/packets/${packet.id}/hits`, TOKENS['hmrc'], body)).status).toBe(404);
    expect(await gw.redis.exists(`${prefix}:dossier:${id}:hits`)).toBe(0);
  });
});

describe('policy changes after hits were received', () => {
  it('hits from a partner whose agreement has since expired are still returned, marked; new ones are refused', async () => {
    const id = await push(FORCE, fixture('dossier-full.json'));
    for (const partner of ['council-housing', 'dvla']) {
      const packet = await packetOf(partner, id);
      const res = await api(gw.url, 'POST', `/v1/packets/${packet.id}/hits`, TOKENS[partner], {
        schema: 'cordon.hits/v1',
        packet: packet.id,
        hits: [{ subject: refOf(packet, 'Samuel'), kind: 'address', detail: { postcode: 'CV1 4FS' }, matchedOn: ['name'], confidence: 'possible', partnerRecordRef: `${partner}-1` }],
      });
      expect(res.status, res.text).toBe(202);
    }
    const councilPacket = await packetOf('council-housing', id);

    // Restart on the same Redis and state with council housing's agreement past its review date.
    const file = path.join(policies, 'partners/council-housing.yaml');
    const original = await readFile(file, 'utf8');
    await writeFile(file, original.replace(/reviewBy: "\d{4}-\d{2}-\d{2}"/, 'reviewBy: "2025-06-30"'));
    try {
      await restart();
      const bundle = await decryptBundle((await api(gw.url, 'GET', `/v1/dossiers/${id}/hits`, FORCE)).text);
      const byPartner = Object.fromEntries(bundle.subjects.S2.map((h: any) => [h.partner, h]));
      expect(byPartner['council-housing'].agreementExpired).toBe(true);
      expect(byPartner['dvla'].agreementExpired).toBeUndefined();

      const late = await api(gw.url, 'POST', `/v1/packets/${councilPacket.id}/hits`, TOKENS['council-housing'], {
        schema: 'cordon.hits/v1',
        packet: councilPacket.id,
        hits: [{ subject: refOf(councilPacket, 'Samuel'), kind: 'address', detail: { postcode: 'CV1 4FS' }, matchedOn: ['name'], confidence: 'possible', partnerRecordRef: 'late-1' }],
      });
      expect(late.status).toBe(409);
      expect(late.json.error.code).toBe('agreement_expired');
    } finally {
      await writeFile(file, original);
    }
  });

  it("a missing source key refuses the bundle (409 source_key_invalid): it is never encrypted to another key", async () => {
    const id = await push(FORCE, fixture('dossier-full.json'));
    const keyFile = path.join(policies, 'keys/west-midlands.asc');
    const saved = await readFile(keyFile, 'utf8');
    await unlink(keyFile);
    try {
      await restart();
      const res = await api(gw.url, 'GET', `/v1/dossiers/${id}/hits`, FORCE);
      expect(res.status, res.text).toBe(409);
      expect(res.json.error.code).toBe('source_key_invalid');
      expect(res.json.error.message).toMatch(/never sent under another key/);
    } finally {
      await writeFile(keyFile, saved);
    }
  });
});
