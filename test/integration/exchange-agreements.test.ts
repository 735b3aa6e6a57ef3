/**
 * Peer agreements enforced, on one real gateway (real Redis, keys, HTTP) with the peer gateway played
 * by the test (a loopback server holding the peer's own key). While the agreement with the peer is in
 * force, envelopes cross both ways. Once its file says the agreement has lapsed (past its review date,
 * hot-reloaded), nothing crosses: the peer's envelopes are refused before they are opened (409
 * agreement_expired, audited exchange.rejected, nothing stored or fanned out), relayed hits and a recall
 * are not sent (dead-lettered, audited with the reason), a new dossier for the peer is blocked. An
 * agreement not yet in force is refused the same way (agreement_not_in_force).
 */
import { randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../gateway/audit/log.js';
import { hashToken, newToken } from '../../gateway/config/clients.js';
import { decryptAndVerify, encryptAndSign, loadOrCreateGatewayKey, parseArmoredPrivateKey, parseArmoredPublicKey, parseRecipientKey, type GatewayKey } from '../../gateway/crypto/openpgp.js';
import { freePort } from '../../gateway/store/private-redis.js';
import { Keys } from '../../gateway/store/redis.js';
import { api, dumpKeys, fixture, ROOT, startTestGateway, TOKENS, waitSettled, type TestGateway, until } from '../helpers/gateway.js';
import { editYaml } from '../helpers/policies.js';

const FORCE = TOKENS['west-midlands-rocu']!;
const PEER = 'warwickshire';
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

let tmp: string;
let policyDir: string;
let gw: TestGateway;
let keys: Keys;
let gatewayKey: GatewayKey;
let peerKey: GatewayKey;
let server: Server;
const peerToken = newToken();
/** Every envelope the peer received, decrypted and verified against the gateway's key. */
const received: any[] = [];

function envelopeId(): string {
  return 'env_' + Array.from(randomBytes(24), (b) => BASE32[b % 32]).join('');
}

async function fromPeer(envelope: Record<string, unknown>, body: Record<string, unknown>): Promise<string> {
  const now = Date.now();
  const header = { from: PEER, to: 'west-midlands', issuedAt: new Date(now).toISOString(), expiresAt: new Date(now + 600_000).toISOString(), ...envelope };
  const recipient = await parseRecipientKey(gatewayKey.publicArmored, gatewayKey.fingerprint);
  return encryptAndSign(JSON.stringify({ envelope: header, ...body }), recipient, peerKey);
}

function postInbound(message: string) {
  return api(gw.url, 'POST', '/v1/exchange/inbound', peerToken, message, { 'content-type': 'application/pgp-encrypted' });
}

function peerDossier(): Promise<string> {
  const dossier = fixture('dossier-full.json') as any;
  dossier.originator.force = PEER;
  return fromPeer({ type: 'dossier', id: envelopeId() }, { dossier });
}

async function auditOf(): Promise<AuditRecord[]> {
  return (await gw.redis.lrange(`${gw.prefix}:audit:log`, 0, -1)).map((r) => JSON.parse(r) as AuditRecord);
}

/** Everything under the prefix but the audit trail, the rate limiter and BullMQ's bookkeeping. */
async function snapshot(): Promise<Map<string, string>> {
  const all = await dumpKeys(gw.redis, gw.prefix);
  return new Map([...all].filter(([k]) => !k.includes(':audit:') && !k.includes(':rl:') && !k.includes(':bull:') && !k.endsWith(':stalled-check')));
}

/** Sets the peer agreement's dates and waits until the reloaded set is live. */
async function agreementDates(inForceFrom: string, reviewBy: string): Promise<void> {
  const loaded = (await auditOf()).filter((r) => r.action === 'policy.loaded').length;
  const file = path.join(policyDir, `peers/${PEER}.yaml`);
  await editYaml(file, ['agreement', 'inForceFrom'], inForceFrom);
  await editYaml(file, ['agreement', 'reviewBy'], reviewBy);
  await until('the edited peer file to go live', async () => ((await auditOf()).filter((r) => r.action === 'policy.loaded').length > loaded ? true : undefined));
}

/** Council housing's packet of a dossier: its id and the ref of Daniel. */
async function housingPacket(dossierId: string): Promise<{ id: string; daniel: string }> {
  const d = await until('a council housing packet', async () => {
    const raw = await gw.redis.hget(keys.deliveries(dossierId), 'council-housing');
    const parsed = raw ? (JSON.parse(raw) as { packetId?: string }) : undefined;
    return parsed?.packetId ? parsed : undefined;
  });
  const res = await api(gw.url, 'GET', `/v1/packets/${d.packetId}`, TOKENS['council-housing']);
  const secret = await parseArmoredPrivateKey(await readFile(path.join(ROOT, 'test/fixtures/keys/council-housing.sec.asc'), 'utf8'));
  const { data } = await decryptAndVerify(res.text, secret, [await parseArmoredPublicKey(gatewayKey.publicArmored)]);
  const daniel = (JSON.parse(data).dossier.subjects as any[]).find((s) => s.name?.given === 'Daniel').id as string;
  return { id: d.packetId!, daniel };
}

function housingHit(packet: string, subject: string, ref: string) {
  return api(gw.url, 'POST', `/v1/packets/${packet}/hits`, TOKENS['council-housing'], {
    schema: 'cordon.hits/v1',
    packet,
    hits: [{ subject, kind: 'tenancy', detail: { town: 'Coventry', tenure: 'council' }, matchedOn: ['name'], confidence: 'confirmed', partnerRecordRef: ref }],
  });
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'cordon-peer-agreements-'));
  const stateDir = path.join(tmp, 'state');
  policyDir = path.join(tmp, 'policies');
  await mkdir(path.join(stateDir, 'peers'), { recursive: true, mode: 0o700 });
  await writeFile(path.join(stateDir, 'peers', `${PEER}.token`), newToken(), { mode: 0o600 });
  gatewayKey = await loadOrCreateGatewayKey(stateDir);
  peerKey = await loadOrCreateGatewayKey(path.join(tmp, 'peer-state'));

  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void decryptAndVerify(Buffer.concat(chunks).toString('utf8'), peerKey.privateKey, [gatewayKey.publicKey]).then(
        ({ data }) => {
          const doc = JSON.parse(data);
          received.push(doc);
          res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ type: doc.envelope.type, envelope: doc.envelope.id, id: `dos_${randomBytes(16).toString('hex')}`, replayed: false }));
        },
        () => res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":{"code":"signature_invalid"}}'),
      );
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));

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

describe('the agreement with a peer, checked on every envelope in and before every relay out', () => {
  it('in force: envelopes cross both ways; lapsed: nothing crosses, every refusal audited with its reason', async () => {
    // In force: a dossier to the peer is sent, the peer's dossier is taken and fanned out, hits on it relayed.
    const ours = fixture('dossier-full.json') as any;
    ours.requests = { ...ours.requests, peers: [PEER] };
    const pushed = await api(gw.url, 'POST', '/v1/dossiers', FORCE, ours);
    expect(pushed.status, pushed.text).toBe(202);
    const sentId = pushed.json.id as string;
    await waitSettled(gw.url, sentId);
    await until('the dossier to reach the peer', async () => ((await api(gw.url, 'GET', `/v1/dossiers/${sentId}`, FORCE)).json.peers?.[0]?.state === 'sent' ? true : undefined));
    const inbound = await postInbound(await peerDossier());
    expect(inbound.status, inbound.text).toBe(202);
    const theirs = inbound.json.id as string;
    const packet = await housingPacket(theirs);
    expect((await housingHit(packet.id, packet.daniel, 'HSG-1')).status).toBe(202);
    await until('the hits relay to reach the peer', async () => (received.some((e) => e.envelope.type === 'hits') ? true : undefined));

    // The agreement lapses (its file says it was due for review in 2025).
    await agreementDates('2024-01-01', '2025-01-01');
    const sentBefore = received.length;

    // In: refused before it is opened; nothing stored, nothing fanned out; audited with the reason.
    const auditBefore = (await auditOf()).length;
    const keysBefore = await snapshot();
    const refused = await postInbound(await peerDossier());
    expect(refused.status, refused.text).toBe(409);
    expect(refused.json.error).toMatchObject({ code: 'agreement_expired', message: expect.stringMatching(/ISA-WMP-WARKS-2025-07 with peer warwickshire was due for review by 2025-01-01.*nothing was stored/) });
    expect(await snapshot()).toEqual(keysBefore);
    const rejected = (await auditOf()).slice(auditBefore);
    expect(rejected.map((r) => [r.action, r.reason, r.actor])).toEqual([['exchange.rejected', 'agreement_expired', `${PEER}-gateway`]]);

    // Out: new hits on the peer's dossier are not relayed; the job is dead-lettered with the reason.
    expect((await housingHit(packet.id, packet.daniel, 'HSG-2')).status).toBe(202);
    const hitsFailed = await until('the hits relay to be refused', async () => (await auditOf()).find((r) => r.action === 'exchange.hits_failed' && r.dossier === theirs));
    expect(hitsFailed).toMatchObject({ recipient: `peer:${PEER}`, reason: expect.stringMatching(/^agreement_expired: Agreement ISA-WMP-WARKS-2025-07 with peer warwickshire was due for review/) });
    expect((await auditOf()).filter((r) => r.action === 'exchange.hits_relayed' && r.dossier === theirs)).toHaveLength(1);

    // Out: the recall of the dossier the peer holds is not sent either.
    const recall = await api(gw.url, 'POST', `/v1/dossiers/${sentId}/recall`, FORCE, { reason: 'withdrawn' });
    expect(recall.status, recall.text).toBe(200);
    const failed = await until('the recall relay to be refused', async () => {
      const s = await api(gw.url, 'GET', `/v1/dossiers/${sentId}`, FORCE);
      return s.json.peers?.[0]?.state === 'recall_failed' ? s.json.peers[0] : undefined;
    });
    expect(failed.message).toMatch(/^agreement_expired: /);
    expect((await auditOf()).find((r) => r.action === 'exchange.recall_failed' && r.dossier === sentId)?.reason).toMatch(/^agreement_expired: /);

    // Out: a new dossier asking for the peer is blocked by the decision, audited.
    const another = await api(gw.url, 'POST', '/v1/dossiers', FORCE, ours);
    expect(another.status).toBe(202);
    await waitSettled(gw.url, another.json.id);
    const blocked = await until('the peer delivery to be blocked', async () => {
      const s = await api(gw.url, 'GET', `/v1/dossiers/${another.json.id}`, FORCE);
      return s.json.peers?.[0]?.state === 'blocked' ? s.json.peers[0] : undefined;
    });
    expect(blocked.reason).toBe('agreement_expired');

    // Nothing at all reached the peer after the agreement lapsed.
    await new Promise((r) => setTimeout(r, 300));
    expect(received.length).toBe(sentBefore);
  }, 60_000);

  it('an agreement not yet in force takes nothing either (agreement_not_in_force)', async () => {
    await agreementDates('2099-01-01', '2100-01-01');
    const keysBefore = await snapshot();
    const res = await postInbound(await peerDossier());
    expect(res.status, res.text).toBe(409);
    expect(res.json.error).toMatchObject({ code: 'agreement_not_in_force', message: expect.stringMatching(/is in force only from 2099-01-01/) });
    expect(await snapshot()).toEqual(keysBefore);
    expect((await auditOf()).at(-1)).toMatchObject({ action: 'exchange.rejected', reason: 'agreement_not_in_force' });
  }, 30_000);
});
