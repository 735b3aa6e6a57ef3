/**
 * The exchange's records on one real gateway (real Redis, real OpenPGP keys, real HTTP), with a peer
 * gateway played by the test: a loopback server holding the peer's own key, which takes the dossier
 * envelopes this gateway sends and signs the envelopes it sends back.
 *   - Hits relayed by the peer onto a dossier the force has recalled are refused like a partner's
 *     (409 dossier_recalled): nothing stored (no replay record either), audited `hits.refused` and
 *     `exchange.rejected`.
 *   - The exchange records of a dossier (peer deliveries, envelope, origin) expire with its status record,
 *     which packets extend (children's services: 730 days), and are erased with it; the inbound replay
 *     record lives REPLAY_RECORD_TTL_SECONDS.
 *   - /readyz reports the peer keys (all usable here).
 */
import { randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateAuditKey } from '../../gateway/crypto/audit-key.js';
import { AuditLog, type AuditRecord } from '../../gateway/audit/log.js';
import { RedisAuditChain } from '../../gateway/store/audit.js';
import { RedisRetention } from '../../gateway/store/retention.js';
import { hashToken, newToken } from '../../gateway/config/clients.js';
import { decryptAndVerify, encryptAndSign, loadOrCreateGatewayKey, parseRecipientKey, type GatewayKey } from '../../gateway/crypto/openpgp.js';
import { CLOCK_SKEW_MS, FRESHNESS_MS } from '../../gateway/exchange/envelope.js';
import { REPLAY_RECORD_TTL_SECONDS } from '../../gateway/store/exchange.js';
import { Eraser } from '../../gateway/retention/erase.js';
import { DAY_MS, retentionKey, statusRecordDue, STATUS_STORE_BACKSTOP_MS } from '../../gateway/retention/schedule.js';
import { RetentionSweeper } from '../../gateway/retention/sweeper.js';
import { RECORD_TTL_SECONDS } from '../../gateway/store/dossiers.js';
import { freePort } from '../../gateway/store/private-redis.js';
import { Keys } from '../../gateway/store/redis.js';
import { api, dumpKeys, fixture, ROOT, startTestGateway, TOKENS, waitSettled, type TestGateway, until } from '../helpers/gateway.js';
import { gatewayRecordAuth } from '../helpers/records.js';

const FORCE = TOKENS['west-midlands-rocu']!;
const PEER = 'warwickshire';
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

let tmp: string;
let gw: TestGateway;
let keys: Keys;
let gatewayKey: GatewayKey;
let peerKey: GatewayKey;
let server: Server;
const peerToken = newToken();
/** What the peer received: the decrypted dossier envelopes, verified against the gateway's key. */
const received: any[] = [];

function envelopeId(): string {
  return 'env_' + Array.from(randomBytes(24), (b) => BASE32[b % 32]).join('');
}

/** An envelope as the peer gateway sends it: signed with its key, encrypted to this gateway's. */
async function fromPeer(envelope: Record<string, unknown>, body: Record<string, unknown>): Promise<string> {
  const now = Date.now();
  const header = { from: PEER, to: 'west-midlands', issuedAt: new Date(now).toISOString(), expiresAt: new Date(now + 600_000).toISOString(), ...envelope };
  const recipient = await parseRecipientKey(gatewayKey.publicArmored, gatewayKey.fingerprint);
  return encryptAndSign(JSON.stringify({ envelope: header, ...body }), recipient, peerKey);
}

function postInbound(message: string) {
  return api(gw.url, 'POST', '/v1/exchange/inbound', peerToken, message, { 'content-type': 'application/pgp-encrypted' });
}

function hitsEnvelope(inReplyTo: string, subject: string, ref: string) {
  return fromPeer(
    { type: 'hits', id: envelopeId(), inReplyTo },
    {
      hits: [
        {
          id: `peer-hit-${ref}`,
          subject,
          partner: 'council-housing',
          kind: 'tenancy',
          detail: { line1: '4 Mill Lane', town: 'Nuneaton', postcode: 'CV11 4AB' },
          matchedOn: ['name', 'dateOfBirth'],
          confidence: 'confirmed',
          partnerRecordRef: ref,
          receivedAt: new Date().toISOString(),
          agreement: { reference: 'ISA-WARKS-HSG-2025' },
        },
      ],
    },
  );
}

/** Pushes the full example dossier asking for the peer; resolves once the envelope has been sent. */
async function sendToPeer(): Promise<{ id: string; status: any; envelope: any }> {
  const dossier = fixture('dossier-full.json') as any;
  dossier.requests = { ...dossier.requests, peers: [PEER] };
  const res = await api(gw.url, 'POST', '/v1/dossiers', FORCE, dossier);
  expect(res.status, res.text).toBe(202);
  const id = res.json.id as string;
  await waitSettled(gw.url, id);
  const status = await until('the envelope to be sent', async () => {
    const s = await api(gw.url, 'GET', `/v1/dossiers/${id}`, FORCE);
    return s.json.peers?.[0]?.state === 'sent' ? s.json : undefined;
  });
  const envelope = received.find((e) => e.envelope.id === status.peers[0].envelopeId);
  expect(envelope).toBeDefined();
  return { id, status, envelope };
}

async function auditOf(): Promise<AuditRecord[]> {
  return (await gw.redis.lrange(`${gw.prefix}:audit:log`, 0, -1)).map((r) => JSON.parse(r) as AuditRecord);
}

/** Everything under the prefix but the audit trail, the rate limiter and BullMQ's stalled-job timer. */
async function snapshot(): Promise<Map<string, string>> {
  const all = await dumpKeys(gw.redis, gw.prefix);
  return new Map([...all].filter(([k]) => !k.includes(':audit:') && !k.includes(':rl:') && !k.endsWith(':stalled-check')));
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'cordon-relay-'));
  const stateDir = path.join(tmp, 'state');
  const policyDir = path.join(tmp, 'policies');
  await mkdir(path.join(stateDir, 'peers'), { recursive: true, mode: 0o700 });
  await writeFile(path.join(stateDir, 'peers', `${PEER}.token`), newToken(), { mode: 0o600 });
  gatewayKey = await loadOrCreateGatewayKey(stateDir);
  peerKey = await loadOrCreateGatewayKey(path.join(tmp, 'peer-state'));

  // The peer gateway: takes a dossier envelope, keeps what it decrypted, answers with its own dossier id.
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void decryptAndVerify(Buffer.concat(chunks).toString('utf8'), peerKey.privateKey, [gatewayKey.publicKey]).then(
        ({ data }) => {
          const doc = JSON.parse(data);
          received.push(doc);
          res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ type: 'dossier', envelope: doc.envelope.id, id: `dos_${randomBytes(16).toString('hex')}`, replayed: false }));
        },
        () => res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":{"code":"signature_invalid"}}'),
      );
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));

  // The sample policies, the peer pointing at the test's server and pinning the test's peer key.
  await cp(path.join(ROOT, 'policies'), policyDir, { recursive: true });
  await writeFile(path.join(policyDir, `keys/${PEER}-gateway.asc`), peerKey.publicArmored);
  const sample = await readFile(path.join(ROOT, `policies/peers/${PEER}.yaml`), 'utf8');
  const header = `peer:\n  id: ${PEER}\n  name: Warwickshire Police\n  force: ${PEER}\n  url: http://127.0.0.1:${port}\n  key:\n    file: keys/${PEER}-gateway.asc\n    fingerprint: "${peerKey.fingerprint}"\n`;
  await writeFile(path.join(policyDir, `peers/${PEER}.yaml`), header + sample.slice(sample.indexOf('\nagreement:')));
  const clients = path.join(tmp, 'clients.yaml');
  const sampleClients = await readFile(path.join(ROOT, 'policies/clients.sample.yaml'), 'utf8');
  await writeFile(clients, sampleClients.trimEnd() + `\n  - id: ${PEER}-gateway\n    role: peer\n    peer: ${PEER}\n    tokens: ["${hashToken(peerToken)}"]\n`);

  gw = await startTestGateway({ policyDir, stateDir, clientsFile: clients, exchangeAttempts: 2, exchangeBackoffMs: 50 });
  keys = new Keys(gw.prefix);
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  if (server) await new Promise((r) => server.close(r));
  await rm(tmp, { recursive: true, force: true });
});

describe('hits relayed onto a recalled dossier', () => {
  it('are refused like a partner’s: 409 dossier_recalled, nothing stored, audited; before the recall they are taken', async () => {
    const { id, envelope } = await sendToPeer();
    const dossierEnvelope = envelope.envelope.id as string;
    const ref = envelope.dossier.subjects.find((s: any) => s.name?.given === 'Daniel').id as string;

    // Before the recall: the relayed hit is taken, marked via the peer's force.
    const before = await postInbound(await hitsEnvelope(dossierEnvelope, ref, 'NBBC-1'));
    expect(before.status, before.text).toBe(202);
    expect(before.json).toMatchObject({ type: 'hits', accepted: 1, duplicates: 0, replayed: false });

    const recall = await api(gw.url, 'POST', `/v1/dossiers/${id}/recall`, FORCE, { reason: 'withdrawn' });
    expect(recall.status, recall.text).toBe(200);
    // The peer is sent the recall (reason and time only): settled before the store is compared below.
    await until('the recall to reach the peer', async () => {
      const s = await api(gw.url, 'GET', `/v1/dossiers/${id}`, FORCE);
      return s.json.peers?.[0]?.state === 'recall_sent' ? true : undefined;
    });
    const recallEnvelope = received.find((e) => e.envelope.type === 'recall' && e.envelope.inReplyTo === dossierEnvelope);
    expect(recallEnvelope.recall).toEqual({ reason: 'withdrawn', issuedAt: recall.json.recall.issuedAt });

    const auditBefore = (await auditOf()).length;
    const keysBefore = await snapshot();
    const message = await hitsEnvelope(dossierEnvelope, ref, 'NBBC-2');
    const res = await postInbound(message);
    expect(res.status).toBe(409);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.json.error).toMatchObject({
      code: 'dossier_recalled',
      message: expect.stringMatching(/recalled \("withdrawn"\).*nothing was stored/),
      details: [{ path: '/envelope/inReplyTo', message: 'the dossier was recalled', reason: 'withdrawn', recalledAt: recall.json.recall.issuedAt }],
      requestId: expect.any(String),
    });

    // Nothing stored: every key as it was (the one hit from before the recall), no replay record.
    expect(await snapshot()).toEqual(keysBefore);
    expect(await gw.redis.hlen(keys.hits(id))).toBe(1);

    const added = (await auditOf()).slice(auditBefore);
    expect(added.map((r) => r.action)).toEqual(['hits.refused', 'exchange.rejected']);
    expect(added[0]).toMatchObject({
      kind: 'rejection',
      actor: `${PEER}-gateway`,
      source: `peer:${PEER}`,
      via: PEER,
      packet: dossierEnvelope,
      dossier: id,
      recipient: 'west-midlands',
      reason: 'dossier_recalled',
    });
    expect(added[1]).toMatchObject({ kind: 'rejection', actor: `${PEER}-gateway`, source: `peer:${PEER}`, reason: 'dossier_recalled' });

    // The same envelope again is refused the same way, not answered as a replay.
    const again = await postInbound(message);
    expect(again.status).toBe(409);
    expect(again.json.error.code).toBe('dossier_recalled');
    expect(await gw.redis.hlen(keys.hits(id))).toBe(1);
  }, 60_000);
});

describe('the lifetime of the exchange records', () => {
  it('an outbound dossier’s peer deliveries and envelope expire with its status record, extended by its packets', async () => {
    const { id, status } = await sendToPeer();
    const envelopeKey = `${gw.prefix}:exchange:env:${status.peers[0].envelopeId}`;
    const outKey = `${gw.prefix}:exchange:out:${id}`;
    const packets = status.deliveries.filter((d: any) => d.expiresAt).map((d: any) => new Date(d.expiresAt));
    // Children's services keep their packet 730 days: the status record goes 30 days after it, not at 400 days.
    const due = statusRecordDue(new Date(status.receivedAt), packets).getTime();
    expect(due).toBeGreaterThan(Date.parse(status.receivedAt) + 750 * DAY_MS);
    expect(await gw.redis.pexpiretime(keys.dossier(id))).toBe(due + STATUS_STORE_BACKSTOP_MS);
    // The envelope was written before any packet (at 400 days) and is never written again: the packets extended it.
    for (const key of [outKey, envelopeKey, keys.dossierCompanions(id)]) {
      expect(await gw.redis.pexpiretime(key), key).toBe(due + STATUS_STORE_BACKSTOP_MS);
    }
    expect((await gw.redis.smembers(keys.dossierCompanions(id))).sort()).toEqual([envelopeKey, outKey].sort());

    // The sweeper erases them with the status record, and says so.
    const now = () => new Date(due + 1);
    const sweeper = new RetentionSweeper(new RedisRetention(gw.redis, keys, gatewayRecordAuth(gw.config.stateDir)), new Eraser(new RedisRetention(gw.redis, keys, gatewayRecordAuth(gw.config.stateDir)), new AuditLog(new RedisAuditChain(gw.redis, keys), { now, auditKey: await loadOrCreateAuditKey(path.join(tmp, 'state')) }), now), { now });
    const swept = await sweeper.sweepOnce();
    expect(swept.erased).toContain(`dossier|${id}`);
    expect(await gw.redis.exists(keys.dossier(id), outKey, envelopeKey, keys.dossierCompanions(id))).toBe(0);
    const erasure = (await auditOf()).find((r) => r.action === 'dossier.erased' && r.dossier === id);
    expect(erasure?.erased).toEqual(['status', 'deliveries', 'hits', 'links', 'exchange records']);
    expect(await gw.redis.zscore(retentionKey(keys), `dossier|${id}`)).toBeNull();
  }, 60_000);

  it('an inbound dossier goes through the same recipient choice: vehicles only reaches DVLA and the statutory recipient', async () => {
    const dossier = fixture('dossier-full.json') as any;
    dossier.originator.force = PEER;
    dossier.requests = { checks: ['vehicles'] };
    const res = await postInbound(await fromPeer({ type: 'dossier', id: envelopeId() }, { dossier }));
    expect(res.status, res.text).toBe(202);
    const id = res.json.id as string;
    const deliveries = await until('the fan-out of the peer’s vehicles-only dossier', async () => {
      const h = await gw.redis.hgetall(keys.dossier(id));
      if (h.state !== 'processed') return undefined;
      return gw.redis.hgetall(keys.deliveries(id));
    });
    const states = Object.fromEntries(Object.entries(deliveries).map(([p, d]) => [p, (JSON.parse(d) as { state: string }).state]));
    expect(states).toEqual({
      'childrens-services': 'delivered',
      dvla: 'delivered',
      'council-housing': 'not_requested',
      'dwp-benefits': 'not_requested',
      hmrc: 'not_requested',
      'immigration-enforcement': 'not_requested',
      'riverside-homes': 'not_requested',
    });
    const choice = (await auditOf()).filter((r) => r.dossier === id && (r.action === 'delivery.not_requested' || r.action === 'delivery.statutory'));
    expect(choice.map((r) => `${r.action}:${r.recipient}`).sort()).toEqual([
      'delivery.not_requested:council-housing',
      'delivery.not_requested:dwp-benefits',
      'delivery.not_requested:hmrc',
      'delivery.not_requested:immigration-enforcement',
      'delivery.not_requested:riverside-homes',
      'delivery.statutory:childrens-services',
    ]);
  }, 60_000);

  it('an inbound dossier’s origin expires with its status record; the replay record outlasts the freshness window', async () => {
    const dossier = fixture('dossier-full.json') as any;
    dossier.originator.force = PEER;
    const envelope = envelopeId();
    const res = await postInbound(await fromPeer({ type: 'dossier', id: envelope }, { dossier }));
    expect(res.status, res.text).toBe(202);
    const id = res.json.id as string;
    const status = await until('the fan-out of the peer’s dossier', async () => {
      const h = await gw.redis.hgetall(keys.dossier(id));
      if (h.state !== 'processed') return undefined;
      return gw.redis.hgetall(keys.deliveries(id));
    });
    const packets = Object.values(status)
      .map((d) => JSON.parse(d) as { expiresAt?: string })
      .filter((d) => d.expiresAt)
      .map((d) => new Date(d.expiresAt!));
    const receivedAt = new Date((await gw.redis.hget(keys.dossier(id), 'receivedAt'))!);
    const due = statusRecordDue(receivedAt, packets).getTime();
    expect(due).toBeGreaterThan(receivedAt.getTime() + 750 * DAY_MS);
    const originKey = `${gw.prefix}:exchange:origin:${id}`;
    expect(await gw.redis.hgetall(originKey)).toEqual({ peer: PEER, envelopeId: envelope });
    for (const key of [keys.dossier(id), originKey, keys.dossierCompanions(id)]) {
      expect(await gw.redis.pexpiretime(key), key).toBe(due + STATUS_STORE_BACKSTOP_MS);
    }

    // The replay record: ids only, 7 days — beyond the freshness window and the sender's retries.
    expect(REPLAY_RECORD_TTL_SECONDS * 1000).toBeGreaterThan(FRESHNESS_MS + CLOCK_SKEW_MS + DAY_MS);
    expect(REPLAY_RECORD_TTL_SECONDS).toBeLessThan(RECORD_TTL_SECONDS);
    const seen = `${gw.prefix}:exchange:seen:${PEER}:${envelope}`;
    expect(await gw.redis.get(seen)).toBe(id);
    const ttl = await gw.redis.pttl(seen);
    expect(ttl).toBeGreaterThan(REPLAY_RECORD_TTL_SECONDS * 1000 - 60_000);
    expect(ttl).toBeLessThanOrEqual(REPLAY_RECORD_TTL_SECONDS * 1000);
  }, 60_000);
});

describe('readiness', () => {
  it('reports the peer keys as usable', async () => {
    const ready = await api(gw.url, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json.checks.peerKeys).toEqual({ ready: true, detail: 'ok' });
  });
});
