/**
 * The whole exchange path as users see it: `npm start`-style process (real Redis, real keys, real HTTP),
 * the full example dossier pushed by the force, every partner pulling its packet and decrypting it with
 * GnuPG (and Sequoia), and every protection of the sample policies checked on what arrives.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decryptAndVerify, parseArmoredPrivateKey, parseArmoredPublicKey } from '../../gateway/crypto/openpgp.js';
import { freePort } from '../../gateway/store/private-redis.js';
import { api, deleteKeys, dossierValues, dumpKeys, fixture, PARTNERS, REDIS_URL, ROOT, TOKENS, waitSettled } from '../helpers/gateway.js';
import { gpgDecryptVerify, gpgImport, onPath, sqDecryptVerify, withGnupgHome } from '../helpers/gpg.js';

let child: ChildProcess;
let base: string;
let stateDir: string;
let prefix: string;
let redis: Redis;
let stderr = '';
const packets = new Map<string, { id: string; armored: string; body: any }>();
let dossierId: string;
let gatewayKey: string;
const full = fixture('dossier-full.json') as any;
// Riverside Homes is asked blind (test/e2e/blind-match.test.ts); this path is for the six partners it names.
const ASKED = PARTNERS.filter((p) => p !== 'riverside-homes');
full.requests = { ...full.requests, partners: ASKED };
/** The sample partners under after-match agreements (policies/partners/*.yaml). */
const AFTER_MATCH = ['dwp-benefits', 'hmrc', 'immigration-enforcement'];


beforeAll(async () => {
  stateDir = await mkdtemp(path.join(os.tmpdir(), 'cordon-e2e-'));
  prefix = `cordon-e2e-${randomBytes(4).toString('hex')}`;
  redis = new Redis(REDIS_URL);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  child = spawn(process.execPath, ['--import', 'tsx', 'gateway/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), REDIS_URL, CORDON_STATE_DIR: stateDir, CORDON_REDIS_PREFIX: prefix, LOG_LEVEL: 'debug' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (stderr += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ok = await fetch(`${base}/readyz`).then((r) => r.status === 200, () => false);
    if (ok) break;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`gateway did not start:\n${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  gatewayKey = (await api(base, 'GET', '/v1/keys/gateway')).text;
});

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
  await deleteKeys(redis, prefix);
  await redis.quit();
  await rm(stateDir, { recursive: true, force: true });
});

describe('dossier in, one encrypted packet per partner out', () => {
  it('accepts the full example dossier and delivers to every partner', async () => {
    const res = await api(base, 'POST', '/v1/dossiers', TOKENS['west-midlands-rocu'], full, { 'idempotency-key': 'e2e-full-1' });
    expect(res.status).toBe(202);
    expect(res.json.id).toMatch(/^dos_/);
    dossierId = res.json.id;

    const again = await api(base, 'POST', '/v1/dossiers', TOKENS['west-midlands-rocu'], full, { 'idempotency-key': 'e2e-full-1' });
    expect(again.status).toBe(202);
    expect(again.json.id).toBe(dossierId);
    expect(again.json.replayed).toBe(true);

    const status = await waitSettled(base, dossierId);
    expect(status.state).toBe('processed');
    const states = Object.fromEntries(status.deliveries.map((d: any) => [d.partner, d.state]));
    expect(states).toEqual({ ...Object.fromEntries(ASKED.map((p) => [p, 'delivered'])), 'riverside-homes': 'not_requested' });
  });

  it('each partner pulls exactly one packet, which gpg decrypts and verifies as signed by the gateway', async () => {
    const home = await withGnupgHome();
    try {
      for (const partner of ASKED) {
        const list = await api(base, 'GET', '/v1/packets', TOKENS[partner]);
        expect(list.status).toBe(200);
        expect(list.json.packets).toHaveLength(1);
        // Partners under after-match agreements are asked first: their one packet is a match request.
        expect(list.json.packets[0].type, partner).toBe(AFTER_MATCH.includes(partner) ? 'match' : 'packet');
        const id = list.json.packets[0].id as string;
        const res = await api(base, 'GET', `/v1/packets/${id}`, TOKENS[partner]);
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toMatch(/^application\/pgp-encrypted/);
        expect(res.text).toContain('-----BEGIN PGP MESSAGE-----');
        await gpgImport(home, await readFile(path.join(ROOT, `test/fixtures/keys/${partner}.sec.asc`), 'utf8'));
        const { plaintext } = await gpgDecryptVerify(home, res.text, gatewayKey);
        packets.set(partner, { id, armored: res.text, body: JSON.parse(plaintext) });
      }
    } finally {
      await home.cleanup();
    }
  });

  it('after-match partners answer hit for everyone and are then sent the disclosure (Immigration Enforcement once an officer approves)', async () => {
    for (const partner of AFTER_MATCH) {
      const { id, body } = packets.get(partner)!;
      expect(Object.keys(body).sort()).toEqual(['match', 'subjects']);
      const results = body.subjects.map((s: any) => ({ subject: s.ref, result: 'hit' }));
      const res = await api(base, 'POST', `/v1/packets/${id}/matches`, TOKENS[partner], { schema: 'cordon.matches/v1', packet: id, results });
      expect(res.status, res.text).toBe(202);
    }
    const officer = { name: 'DI Anna Kowalski', id: 'WM2207' };
    for (let i = 0; ; i++) {
      const res = await api(base, 'POST', `/v1/dossiers/${dossierId}/approvals`, TOKENS['west-midlands-rocu'], { partner: 'immigration-enforcement', officer });
      if (res.status === 202) break;
      expect(i, res.text).toBeLessThan(100); // the answers are in at once; retried only while they are stored
      await new Promise((r) => setTimeout(r, 100));
    }
    const secretOf = async (partner: string) => parseArmoredPrivateKey(await readFile(path.join(ROOT, `test/fixtures/keys/${partner}.sec.asc`), 'utf8'));
    const verify = await parseArmoredPublicKey(gatewayKey);
    for (let i = 0; i < 200; i++) {
      const status = await api(base, 'GET', `/v1/dossiers/${dossierId}`, TOKENS['west-midlands-rocu']);
      const followed = status.json.deliveries.filter((d: any) => AFTER_MATCH.includes(d.partner) && d.stage === 'disclosed');
      if (followed.length === AFTER_MATCH.length) {
        for (const d of followed) {
          expect(d.packetId).not.toBe(d.matchPacketId);
          const res = await api(base, 'GET', `/v1/packets/${d.packetId}`, TOKENS[d.partner]);
          const { data } = await decryptAndVerify(res.text, await secretOf(d.partner), [verify]);
          packets.set(d.partner, { id: d.packetId, armored: res.text, body: JSON.parse(data) });
        }
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    // The gateway's warnings and errors say why (a follow-up job failing and retried, say).
    const why = stderr.split('\n').filter((l) => /"level":(40|50|60)/.test(l)).slice(-20).join('\n');
    throw new Error(`the follow-ups did not arrive; the gateway logged:\n${why}`);
  });

  it.skipIf(!onPath('sq'))('Sequoia sq decrypts and verifies the packets too', async () => {
    for (const partner of ['dvla', 'childrens-services']) {
      const secret = await readFile(path.join(ROOT, `test/fixtures/keys/${partner}.sec.asc`), 'utf8');
      const { plaintext } = await sqDecryptVerify(packets.get(partner)!.armored, secret, gatewayKey);
      expect(JSON.parse(plaintext)).toEqual(packets.get(partner)!.body);
    }
  });

  it('packet headers carry recipient, policy revision, agreement and handling', async () => {
    for (const partner of ASKED) {
      const { id, body } = packets.get(partner)!;
      expect(body.packet).toMatchObject({
        id,
        recipient: partner,
        classification: 'OFFICIAL-SENSITIVE',
        handling: { code: 'C', conditions: full.handling.conditions },
        policy: { id: partner },
      });
      expect(body.packet.policy.revision).toMatch(/^[0-9a-f]{16}$/);
      expect(body.packet.agreement.reference).toBeTruthy();
      expect(body.packet.agreement.legalBasis).toBeTruthy();
      expect(Date.parse(body.packet.expiresAt)).toBeGreaterThan(Date.parse(body.packet.issuedAt));
    }
  });

  it('no partner receives CHIS intelligence, officer details, PNC ids or the dossier subject ids', () => {
    const chis = full.subjects[0].intelligence[0].summary;
    for (const partner of ASKED) {
      const text = JSON.stringify(packets.get(partner)!.body);
      for (const forbidden of [chis, 'INT-88121', full.originator.officer.name, full.originator.officer.email, '09/123456X', '12/998877K']) {
        expect(text, `${partner} got ${forbidden}`).not.toContain(forbidden);
      }
      const d = packets.get(partner)!.body.dossier;
      for (const s of d.subjects) {
        expect(s.id).toMatch(/^ref_/);
        for (const a of s.associates ?? []) expect(a.subject).toMatch(/^ref_/);
      }
    }
  });

  const names = (partner: string) => packets.get(partner)!.body.dossier.subjects.map((s: any) => s.name?.given);

  it('no subject under 18 reaches dvla, dwp-benefits, hmrc or immigration-enforcement; no potential victim reaches immigration', () => {
    for (const partner of ['dvla', 'dwp-benefits', 'hmrc', 'immigration-enforcement']) {
      expect(JSON.stringify(packets.get(partner)!.body), partner).not.toContain('Tyler');
      expect(JSON.stringify(packets.get(partner)!.body), partner).not.toContain('2010-07-19');
    }
    expect(JSON.stringify(packets.get('immigration-enforcement')!.body)).not.toContain('Popescu');
    expect(JSON.stringify(packets.get('immigration-enforcement')!.body)).not.toContain('RO0512345');
  });

  it("children's services receives the under-18s only, with name, date of birth and address", () => {
    const d = packets.get('childrens-services')!.body.dossier;
    expect(d.subjects).toHaveLength(1);
    const s = d.subjects[0];
    expect(s.name).toMatchObject({ given: 'Tyler', family: 'Brooks' });
    expect(s.dateOfBirth).toBe('2010-07-19');
    expect(s.addresses[0]).toMatchObject({ line1: '5 Lythalls Lane', postcode: 'CV6 6FP' });
  });

  it('each partner gets what its checks need', () => {
    const dvla = JSON.stringify(packets.get('dvla')!.body.dossier);
    for (const vrm of ['AB12 CDE', 'KX19 LMN', 'FG65 HJK']) expect(dvla).toContain(vrm);

    const dwp = packets.get('dwp-benefits')!.body.dossier;
    expect(names('dwp-benefits')).toEqual(expect.arrayContaining(['Daniel', 'Samuel']));
    expect(JSON.stringify(dwp)).toContain('1987-04-12');
    expect(JSON.stringify(dwp)).toContain('QQ123456C');

    const housing = packets.get('council-housing')!.body.dossier;
    expect(names('council-housing')).toEqual(expect.arrayContaining(['Daniel', 'Samuel']));
    expect(JSON.stringify(housing)).toContain('1987-04-12');
    expect(JSON.stringify(housing)).toContain('14 Cedar Road');

    const hmrc = JSON.stringify(packets.get('hmrc')!.body.dossier);
    expect(hmrc).toContain('Cedar Hand Car Wash Ltd');
    expect(hmrc).toContain('09876543');

    const ie = packets.get('immigration-enforcement')!.body.dossier;
    expect(names('immigration-enforcement')).toEqual(expect.arrayContaining(['Daniel', 'Samuel']));
    expect(ie.subjects.every((s: any) => typeof s.nationality === 'string')).toBe(true);
  });

  it("a partner asking for another partner's packet gets the same 404 as for a missing one", async () => {
    const other = await api(base, 'GET', `/v1/packets/${packets.get('dvla')!.id}`, TOKENS['council-housing']);
    const missing = await api(base, 'GET', `/v1/packets/pkt_${'a'.repeat(26)}`, TOKENS['council-housing']);
    expect(other.status).toBe(404);
    expect(missing.status).toBe(404);
    expect({ ...other.json.error, requestId: '' }).toEqual({ ...missing.json.error, requestId: '' });
    const ack = await api(base, 'POST', `/v1/packets/${packets.get('dvla')!.id}/ack`, TOKENS['council-housing']);
    expect(ack.status).toBe(404);
  });

  it('a partner lists only what it has not retrieved yet with ?state=delivered; bad filters are refused', async () => {
    const pending = await api(base, 'GET', '/v1/packets?state=delivered', TOKENS['dvla']);
    expect(pending.status).toBe(200);
    expect(pending.json.packets).toEqual([]); // pulled in the test above
    const all = await api(base, 'GET', '/v1/packets?limit=1', TOKENS['dvla']);
    expect(all.json.packets).toHaveLength(1);
    for (const bad of ['?limit=0', '?limit=501', '?state=acknowledged', '?colour=red']) {
      const res = await api(base, 'GET', `/v1/packets${bad}`, TOKENS['dvla']);
      expect(res.status, bad).toBe(400);
      expect(res.json.error.code).toBe('query_invalid');
    }
  });

  it('acknowledgement and retrieval show in the delivery status', async () => {
    const ack = await api(base, 'POST', `/v1/packets/${packets.get('dvla')!.id}/ack`, TOKENS['dvla']);
    expect(ack.status).toBe(200);
    expect(ack.json.state).toBe('acknowledged');
    const status = await api(base, 'GET', `/v1/dossiers/${dossierId}`, TOKENS['west-midlands-rocu']);
    const states = Object.fromEntries(status.json.deliveries.map((d: any) => [d.partner, d.state]));
    expect(states.dvla).toBe('acknowledged');
    expect(states['council-housing']).toBe('retrieved');
  });

  it('neither Redis nor the logs hold a dossier value in plaintext, and the sealed dossier is erased', async () => {
    const values = await dossierValues(full, 5);
    expect(values).toContain('Okafor');
    expect(values).toContain('QQ123456C');
    const dump = await dumpKeys(redis, prefix);
    expect(dump.size).toBeGreaterThan(0);
    for (const [key, content] of dump) {
      for (const v of values) {
        // A value as a whole token: "benefits" inside "dwp-benefits" (a partner id) is not a leak.
        const escaped = JSON.stringify(v).slice(1, -1).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        expect(new RegExp(`(^|[^A-Za-z0-9-])${escaped}($|[^A-Za-z0-9-])`).test(content), `${key} holds "${v}"`).toBe(false);
      }
    }
    // Nor do the logs (debug level, the whole run so far).
    expect(stderr.length).toBeGreaterThan(0);
    for (const v of values) expect(stderr.includes(v), `the logs hold "${v}"`).toBe(false);
    expect(stderr).not.toContain('sample-west-midlands-rocu-token');
    const record = await redis.hgetall(`${prefix}:dossier:${dossierId}`);
    expect(record.state).toBe('processed');
    expect(record.sealed).toBeUndefined();
  });
});
