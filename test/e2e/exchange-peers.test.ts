/**
 * Cross-border exchange between two real gateways on loopback (real Redis, real keys, real HTTP):
 * West Midlands (A) sends a dossier to Warwickshire (B) with `requests.peers`; B's partners get packets
 * under B's own policies; a B partner reports hits; they come back to A's bundle marked `via`
 * warwickshire. Forged, tampered, replayed, misaddressed and stale envelopes are refused with clear
 * errors and nothing stored; a peer's dossier is never forwarded to another peer.
 */
import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newToken } from '../../gateway/config/clients.js';
import {
  encryptAndSign,
  loadOrCreateGatewayKey,
  parseRecipientKey,
  type GatewayKey,
} from '../../gateway/crypto/openpgp.js';
import { freePort } from '../../gateway/store/private-redis.js';
import { clientsFile, openAs, peerClient, pointPeer, prepareSide } from '../helpers/peers.js';
import { api, fixture, ROOT, startTestGateway, TOKENS, waitSettled, type TestGateway, until } from '../helpers/gateway.js';

const FPS = JSON.parse(await readFile(path.join(ROOT, 'test/fixtures/keys/fingerprints.json'), 'utf8')) as Record<string, string>;
const FORCE = TOKENS['west-midlands-rocu']!;
// Short retries, so a peer that is down is retried (and dead-lettered) within the test's time.
const RETRY = { exchangeAttempts: 6, exchangeBackoffMs: 100 };

interface Side {
  gw: TestGateway;
  key: GatewayKey;
  policyDir: string;
  stateDir: string;
  port: number;
}

let tmp: string;
let A: Side;
let B: Side;
const tokenAtoB = newToken();
const tokenBtoA = newToken();
/** A peer that is down until the test starts a relay to B on its port; and one that never answers. */
let downPort: number;
let deadPort: number;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'cordon-exchange-'));
  const a = await prepareSide(tmp, 'a');
  const b = await prepareSide(tmp, 'b');
  const aUrl = `http://127.0.0.1:${a.port}`;
  const bUrl = `http://127.0.0.1:${b.port}`;
  // A (West Midlands): the sample set, with the peer warwickshire pointing at B's real gateway.
  await pointPeer(a.policyDir, ['peers/warwickshire.yaml'], 'warwickshire', 'Warwickshire Police', bUrl, b.key);
  // Two more routes to B's gateway (force warwickshire): one down at first, one never up.
  downPort = await freePort();
  deadPort = await freePort();
  await pointPeer(a.policyDir, [], 'staffordshire', 'Down For Now', `http://127.0.0.1:${downPort}`, b.key, 'warwickshire');
  await pointPeer(a.policyDir, [], 'durham', 'Never Up', `http://127.0.0.1:${deadPort}`, b.key, 'warwickshire');
  // B (Warwickshire): its own source instead of West Midlands, and the peer west-midlands (A).
  await unlink(path.join(b.policyDir, 'sources/west-midlands.yaml'));
  await writeFile(
    path.join(b.policyDir, 'sources/warwickshire.yaml'),
    `source:\n  id: warwickshire\n  name: Warwickshire Police\n  key:\n    file: keys/warwickshire.asc\n    fingerprint: "${FPS.warwickshire}"\n`,
  );
  await pointPeer(b.policyDir, ['peers/warwickshire.yaml'], 'west-midlands', 'West Midlands Police', aUrl, a.key);
  // Each side's credential for the other, and the token it presents (CORDON_STATE_DIR/peers/<id>.token).
  const aClients = await clientsFile(a.stateDir, peerClient('warwickshire-gateway', 'warwickshire', tokenBtoA));
  const bClients = await clientsFile(b.stateDir, peerClient('west-midlands-gateway', 'west-midlands', tokenAtoB));
  for (const peer of ['warwickshire', 'staffordshire', 'durham']) await writeFile(path.join(a.stateDir, `peers/${peer}.token`), tokenAtoB, { mode: 0o600 });
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

/** An envelope as A's gateway would send it to B, signed by `signer` (A's key unless forged). */
async function envelopeToB(overrides: Record<string, unknown> = {}, dossier: unknown = fixture('dossier-minimal.json'), signer: GatewayKey = A.key) {
  const now = Date.now();
  const env = {
    envelope: {
      type: 'dossier',
      id: 'env_' + 'a'.repeat(20) + Math.random().toString(36).replace(/[^a-z]/g, '').slice(0, 6).padEnd(6, 'b'),
      from: 'west-midlands',
      to: 'warwickshire',
      issuedAt: new Date(now).toISOString(),
      expiresAt: new Date(now + 600_000).toISOString(),
      ...overrides,
    },
    dossier,
  };
  const bKey = await parseRecipientKey(B.key.publicArmored, B.key.fingerprint);
  return { env, message: await encryptAndSign(JSON.stringify(env), bKey, signer) };
}

function postToB(message: string, token = tokenAtoB) {
  return api(B.gw.url, 'POST', '/v1/exchange/inbound', token, message, { 'content-type': 'application/pgp-encrypted' });
}

async function dossierCount(side: Side): Promise<number> {
  const keys = await side.gw.redis.keys(`${side.gw.prefix}:dossier:dos_*`);
  return keys.filter((k) => /:dossier:dos_[0-9a-f]+$/.test(k)).length;
}

async function auditActions(side: Side): Promise<string[]> {
  const rows = await side.gw.redis.lrange(`${side.gw.prefix}:audit:log`, 0, -1);
  return rows.map((r) => (JSON.parse(r) as { action: string }).action);
}

describe('cross-border exchange between two gateways', () => {
  it('round trip: A sends with requests.peers, B fans out, a B partner reports hits, A bundle shows them via warwickshire', async () => {
    const dossier = fixture('dossier-full.json') as any;
    dossier.requests = { ...(dossier.requests ?? { checks: ['addresses'] }), peers: ['warwickshire'] };
    const sent = await api(A.gw.url, 'POST', '/v1/dossiers', FORCE, dossier);
    expect(sent.status).toBe(202);
    const id = sent.json.id as string;
    await waitSettled(A.gw.url, id);

    const status = await until('the envelope to be sent', async () => {
      const s = await api(A.gw.url, 'GET', `/v1/dossiers/${id}`, FORCE);
      return s.json.peers?.[0]?.state === 'sent' ? s.json : undefined;
    });
    expect(status.peers).toHaveLength(1);
    expect(status.peers[0]).toMatchObject({ peer: 'warwickshire', state: 'sent' });
    expect(status.deliveries.map((d: any) => d.partner)).not.toContain('warwickshire');
    const remote = status.peers[0].remoteDossier as string;
    expect(remote).toMatch(/^dos_/);

    // B's council housing gets a packet of the peer's dossier, under B's policy.
    expect(await B.gw.redis.exists(`${B.gw.prefix}:dossier:${remote}`)).toBe(1);
    const list = await until('a packet at B', async () => {
      const r = await api(B.gw.url, 'GET', '/v1/packets', TOKENS['council-housing']);
      // The peer's dossier is the only one B holds at this point.
      return (r.json.packets as any[])[0];
    });
    const armored = (await api(B.gw.url, 'GET', `/v1/packets/${list.id}`, TOKENS['council-housing'])).text;
    const packet = await openAs('council-housing', armored, B.key);
    // Never across the border: officers' names, PNC ids, CHIS intelligence.
    const text = JSON.stringify(packet);
    expect(text).not.toContain('Priya');
    expect(text).not.toContain('priya.raman');
    expect(text).not.toMatch(/"pnc"/);
    expect(text).not.toContain('CHIS');
    expect(packet.dossier.requests?.peers).toBeUndefined();
    const daniel = (packet.dossier.subjects as any[]).find((s) => s.name?.given === 'Daniel');
    expect(daniel).toBeDefined();

    const hits = await api(B.gw.url, 'POST', `/v1/packets/${list.id}/hits`, TOKENS['council-housing'], {
      schema: 'cordon.hits/v1',
      packet: list.id,
      hits: [
        {
          subject: daniel.id,
          kind: 'tenancy',
          detail: { line1: '4 Mill Lane', town: 'Nuneaton', postcode: 'CV11 4AB', tenure: 'council' },
          matchedOn: ['name', 'dateOfBirth'],
          confidence: 'confirmed',
          partnerRecordRef: 'NBBC-7731',
        },
      ],
    });
    expect(hits.status).toBe(202);

    // The relay arrives at A and shows in the bundle of the dossier's own subject S1, marked via warwickshire.
    const bundle = await until('the relayed hits in A bundle', async () => {
      const r = await api(A.gw.url, 'GET', `/v1/dossiers/${id}/hits`, FORCE);
      if (r.status !== 200) return undefined;
      const b = await openAs('west-midlands', r.text, A.key);
      return b.bundle.count > 0 ? b : undefined;
    });
    expect(bundle.subjects.S1).toHaveLength(1);
    // Under B's hits policy for A (the sample's): the record crosses as reported, its reference does not.
    expect(bundle.subjects.S1[0]).toMatchObject({ kind: 'tenancy', partner: 'council-housing', via: 'warwickshire', signed: false, detail: { line1: '4 Mill Lane', town: 'Nuneaton', postcode: 'CV11 4AB', tenure: 'council' } });
    expect(bundle.subjects.S1[0].partnerRecordRef).toBeUndefined();
    expect(bundle.subjects.S1[0].agreementExpired).toBeUndefined();

    const aAudit = await auditActions(A);
    expect(aAudit).toEqual(expect.arrayContaining(['exchange.envelope_prepared', 'exchange.dossier_sent', 'exchange.hits_received']));
    const bAudit = await auditActions(B);
    expect(bAudit).toEqual(expect.arrayContaining(['exchange.dossier_received', 'packet.created', 'exchange.hits_relayed']));
  }, 60_000);

  it('what protects crosses: vulnerability flags and roles reach the peer and its own rules fire on them; handling conditions bind its fan-out', async () => {
    const dossier = fixture('dossier-full.json') as any;
    dossier.requests = { ...dossier.requests, peers: ['warwickshire'] };
    // Tyler without a date of birth: only his childhood flag says he is a child, on either side of the border.
    const tyler = dossier.subjects[3];
    expect(tyler.name.given).toBe('Tyler');
    delete tyler.dateOfBirth;
    tyler.intelligence[0].conditions = ['safeguarding-only'];
    const item = (id: string, summary: string, conditions: string[]) => ({ id, recordedAt: '2026-10-22', summary, grading: { source: 1, intelligence: 'A', handling: 'C' }, sourceType: 'officer', handlingConditions: 'See codes', conditions });
    dossier.subjects[0].intelligence.push(
      item('INT-90777', 'Children seen leaving the Cedar Road houses late at night', ['safeguarding-only']),
      item('INT-90779', 'Named in a referral nobody may act on yet', ['court-order-only']),
    );
    const sent = await api(A.gw.url, 'POST', '/v1/dossiers', FORCE, dossier);
    expect(sent.status).toBe(202);
    const id = sent.json.id as string;
    await waitSettled(A.gw.url, id);
    const status = await until('the envelope to be sent', async () => {
      const s = await api(A.gw.url, 'GET', `/v1/dossiers/${id}`, FORCE);
      return s.json.peers?.[0]?.state === 'sent' ? s.json : undefined;
    });
    const remote = status.peers[0].remoteDossier as string;

    // A: the item whose code the peer does not enforce (nobody does) stayed home; the record says where, never what.
    const aRows = (await A.gw.redis.lrange(`${A.gw.prefix}:audit:log`, 0, -1)).map((r) => JSON.parse(r));
    const prepared = aRows.find((r) => r.action === 'exchange.envelope_prepared' && r.dossier === id);
    expect(prepared.withheld).toEqual({ handlingConditions: 1, paths: ['/subjects/0/intelligence/3'] });
    expect(JSON.stringify(prepared)).not.toContain('Named in a referral');

    // B: one packet per partner of the peer's dossier, under B's own policies.
    const packets = await until('packets for children\'s services and housing at B', async () => {
      const rows = (await B.gw.redis.lrange(`${B.gw.prefix}:audit:log`, 0, -1)).map((r) => JSON.parse(r));
      const mine = rows.filter((r) => r.action === 'packet.created' && r.dossier === remote);
      const by = Object.fromEntries(mine.map((r) => [r.recipient, r]));
      return by['childrens-services'] && by['council-housing'] ? by : undefined;
    });
    const open = async (partner: string) =>
      openAs(partner, (await api(B.gw.url, 'GET', `/v1/packets/${packets[partner].packet}`, TOKENS[partner])).text, B.key);

    // Children's services: Tyler arrives (his flag crossed, so B's "known children only" rule lets him in)
    // with his role, his flag and his safeguarding-only item, whose code travelled with it.
    const children = await open('childrens-services');
    expect(children.dossier.subjects).toHaveLength(1);
    const child = children.dossier.subjects[0];
    expect(child.name.given).toBe('Tyler');
    expect(child.vulnerabilities).toEqual(['child-criminal-exploitation']);
    expect(child.intelligence).toEqual([expect.objectContaining({ summary: 'Seen carrying packages between Cedar Road addresses', conditions: ['safeguarding-only'] })]);

    // Housing: no Tyler (a child by his flag), no safeguarding-only item, no handling-C item without codes
    // (housing is not a competent authority), nothing with a code nobody enforces: the second hop is no looser.
    const housing = JSON.stringify(await open('council-housing'));
    for (const never of ['Tyler', 'Seen carrying packages', 'Children seen leaving', 'Believed to control rentals', 'Named in a referral']) expect(housing).not.toContain(never);
    expect(packets['council-housing'].withheld).toEqual({ handlingConditions: 2, paths: ['/subjects/0/intelligence/0', '/subjects/0/intelligence/1'] });
  }, 60_000);

  it('refuses a tampered envelope, one signed by an unpinned key, a misaddressed and a stale one; nothing stored', async () => {
    const before = await dossierCount(B);
    const { message } = await envelopeToB();
    const lines = message.split('\n');
    const mid = Math.floor(lines.length / 2);
    lines[mid] = lines[mid]!.slice(0, 10) + (lines[mid]![10] === 'A' ? 'B' : 'A') + lines[mid]!.slice(11);
    const tampered = await postToB(lines.join('\n'));
    expect(tampered.status).toBe(400);
    expect(tampered.json.error.code).toBe('signature_invalid');

    const intruder = await loadOrCreateGatewayKey(path.join(tmp, 'intruder-state'));
    const forged = await postToB((await envelopeToB({}, undefined, intruder)).message);
    expect(forged.status).toBe(400);
    expect(forged.json.error.code).toBe('signature_invalid');

    const wrong = await postToB((await envelopeToB({ to: 'staffordshire' })).message);
    expect(wrong.status).toBe(400);
    expect(wrong.json.error.code).toBe('envelope_invalid');
    expect(wrong.json.error.details.map((d: any) => d.path)).toContain('/envelope/to');

    const stale = await postToB((await envelopeToB({ issuedAt: new Date(Date.now() - 3600_000).toISOString() })).message);
    expect(stale.status).toBe(400);
    expect(stale.json.error.code).toBe('envelope_invalid');

    const notPeer = await postToB((await envelopeToB()).message, TOKENS['council-housing']);
    expect(notPeer.status).toBe(403);

    const badDossier = await postToB((await envelopeToB({}, { schema: 'cordon.dossier/v1' })).message);
    expect(badDossier.status).toBe(400);
    expect(badDossier.json.error.code).toBe('schema_violation');

    const other = fixture('dossier-minimal.json') as any;
    other.originator.force = 'staffordshire';
    const notTheirs = await postToB((await envelopeToB({}, other)).message);
    expect(notTheirs.status).toBe(400);
    expect(notTheirs.json.error.code).toBe('envelope_invalid');

    expect(await dossierCount(B)).toBe(before);
    expect(await auditActions(B)).toContain('exchange.rejected');
  }, 30_000);

  it('a replayed envelope answers with the first dossier and never makes a second one', async () => {
    const { message } = await envelopeToB();
    const before = await dossierCount(B);
    const first = await postToB(message);
    expect(first.status).toBe(202);
    const again = await postToB(message);
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ id: first.json.id, replayed: true });
    expect(await dossierCount(B)).toBe(before + 1);
  }, 30_000);

  it('a dossier received from a peer is never forwarded to another peer', async () => {
    const dossier = fixture('dossier-minimal.json') as any;
    dossier.requests = { checks: ['addresses'], peers: ['west-midlands'] };
    const res = await postToB((await envelopeToB({}, dossier)).message);
    expect(res.status).toBe(202);
    const id = res.json.id as string;
    await until('the fan-out at B', async () => ((await B.gw.redis.hget(`${B.gw.prefix}:dossier:${id}`, 'state')) === 'processed' ? true : undefined));
    expect(await B.gw.redis.hlen(`${B.gw.prefix}:exchange:out:${id}`)).toBe(0);
    expect(await auditActions(B)).toContain('exchange.not_forwarded');
  }, 30_000);

  it("both gateways' audit records, exchange ones included, match schemas/audit-event.schema.json", async () => {
    const ajv = new Ajv2020({ strict: true, allErrors: true });
    addFormats.default(ajv);
    const valid = ajv.compile(JSON.parse(await readFile(path.join(ROOT, 'schemas/audit-event.schema.json'), 'utf8')) as object);
    for (const side of [A, B]) {
      const rows = await side.gw.redis.lrange(`${side.gw.prefix}:audit:log`, 0, -1);
      expect(rows.some((r) => r.includes('"packet":"env_'))).toBe(true);
      for (const row of rows) expect(valid(JSON.parse(row)), `${row.slice(0, 200)} ${JSON.stringify(valid.errors)}`).toBe(true);
    }
  });
});

describe('a peer that is down', () => {
  let relay: Server | undefined;
  afterAll(async () => {
    if (relay) await new Promise((r) => relay!.close(r));
  });

  async function send(peer: string): Promise<string> {
    const dossier = fixture('dossier-minimal.json') as any;
    dossier.reference = `WMP-OCG-2026-${peer.toUpperCase()}`;
    dossier.requests = { checks: ['vehicles'], peers: [peer] };
    const sent = await api(A.gw.url, 'POST', '/v1/dossiers', FORCE, dossier);
    expect(sent.status).toBe(202);
    return sent.json.id as string;
  }

  const peerState = async (id: string) => (await api(A.gw.url, 'GET', `/v1/dossiers/${id}`, FORCE)).json.peers?.[0];

  it('is retried with backoff and gets exactly one dossier when it comes back', async () => {
    const id = await send('staffordshire');
    const retrying = await until('a failed attempt', async () => {
      const p = await peerState(id);
      return p?.reason === 'retrying' ? p : undefined;
    });
    expect(retrying).toMatchObject({ peer: 'staffordshire', state: 'queued' });
    const before = await dossierCount(B);
    // The peer comes back: a relay to B's gateway on the port it was expected on.
    relay = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        void fetch(B.gw.url + req.url, { method: req.method, headers: { authorization: String(req.headers.authorization), 'content-type': String(req.headers['content-type']) }, body: Buffer.concat(chunks) })
          .then(async (r) => {
            res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' });
            res.end(await r.text());
          })
          .catch(() => res.writeHead(502).end());
      });
    });
    await new Promise<void>((r) => relay!.listen(downPort, '127.0.0.1', () => r()));
    const sent = await until('the envelope to be sent', async () => {
      const p = await peerState(id);
      return p?.state === 'sent' ? p : undefined;
    });
    expect(sent.attempts).toBeGreaterThanOrEqual(2);
    expect(await dossierCount(B)).toBe(before + 1);
  }, 30_000);

  it('is dead-lettered when the retries are spent, and says so in the status', async () => {
    const id = await send('durham');
    const failed = await until('the dead letter', async () => {
      const p = await peerState(id);
      return p?.state === 'failed' ? p : undefined;
    }, 20_000);
    expect(failed).toMatchObject({ peer: 'durham', state: 'failed', reason: 'dead_letter' });
    expect(await auditActions(A)).toContain('exchange.dossier_failed');
  }, 30_000);

  it('blocks a peer that is not configured, with a reason', async () => {
    const id = await send('cleveland');
    const blocked = await until('the block', async () => {
      const p = await peerState(id);
      return p?.state === 'blocked' ? p : undefined;
    });
    expect(blocked).toMatchObject({ peer: 'cleveland', state: 'blocked', reason: 'no_agreement' });
  }, 30_000);
});
