/**
 * Recall across the border, between two real gateways on loopback (real Redis, real keys, real HTTP):
 * West Midlands (A) recalls a dossier it sent to Warwickshire (B). B gets a `recall` envelope (reason
 * and time, never the note), recalls its own copy as `peer:west-midlands`: B's partners get recall
 * notices, unretrieved packets are erased, hits are refused from then on; A's status shows the recall
 * sent. A recall envelope for an unknown envelope, from a peer that did not send the dossier, or
 * carrying anything but a reason and a time is refused and changes nothing; a replay does nothing twice;
 * a delivery to a peer that has not left when the dossier is recalled is cancelled instead.
 */
import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../gateway/audit/log.js';
import { newToken } from '../../gateway/config/clients.js';
import { encryptAndSign, loadOrCreateGatewayKey, parseRecipientKey, type GatewayKey } from '../../gateway/crypto/openpgp.js';
import { freePort } from '../../gateway/store/private-redis.js';
import { connectRedisForQueue } from '../../gateway/store/redis.js';
import { clientsFile, openAs, peerClient, pointPeer, prepareSide } from '../helpers/peers.js';
import { api, dumpKeys, fixture, REDIS_URL, ROOT, startTestGateway, TOKENS, waitSettled, type TestGateway, until } from '../helpers/gateway.js';

const FPS = JSON.parse(await readFile(path.join(ROOT, 'test/fixtures/keys/fingerprints.json'), 'utf8')) as Record<string, string>;
const FORCE = TOKENS['west-midlands-rocu']!;
const NOTE = 'Recalled because the informant retracted the Mill Lane sighting';
const RETRY = { exchangeAttempts: 4, exchangeBackoffMs: 100 };

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
/** A third force's gateway, a peer of B only: the test holds its key and credential. */
let staffs: GatewayKey;
const tokenAtoB = newToken();
const tokenBtoA = newToken();
const tokenStaffsToB = newToken();

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'cordon-recall-exchange-'));
  const a = await prepareSide(tmp, 'a');
  const b = await prepareSide(tmp, 'b');
  staffs = await loadOrCreateGatewayKey(path.join(tmp, 'staffs-state'));
  await pointPeer(a.policyDir, ['peers/warwickshire.yaml'], 'warwickshire', 'Warwickshire Police', `http://127.0.0.1:${b.port}`, b.key);
  await unlink(path.join(b.policyDir, 'sources/west-midlands.yaml'));
  await writeFile(
    path.join(b.policyDir, 'sources/warwickshire.yaml'),
    `source:\n  id: warwickshire\n  name: Warwickshire Police\n  key:\n    file: keys/warwickshire.asc\n    fingerprint: "${FPS.warwickshire}"\n`,
  );
  await pointPeer(b.policyDir, ['peers/warwickshire.yaml'], 'west-midlands', 'West Midlands Police', `http://127.0.0.1:${a.port}`, a.key);
  await pointPeer(b.policyDir, [], 'staffordshire', 'Staffordshire Police', `http://127.0.0.1:${await freePort()}`, staffs);
  const aClients = await clientsFile(a.stateDir, peerClient('warwickshire-gateway', 'warwickshire', tokenBtoA));
  const bClients = await clientsFile(
    b.stateDir,
    peerClient('west-midlands-gateway', 'west-midlands', tokenAtoB) +
      peerClient('staffordshire-gateway', 'staffordshire', tokenStaffsToB),
  );
  await writeFile(path.join(a.stateDir, 'peers/warwickshire.token'), tokenAtoB, { mode: 0o600 });
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

/** An envelope to B as the gateway of `from` sends it (signed with `signer`), `body` beside the header. */
async function toB(envelope: Record<string, unknown>, body: Record<string, unknown>, signer: GatewayKey = A.key, from = 'west-midlands') {
  const now = Date.now();
  const header = { from, to: 'warwickshire', issuedAt: new Date(now).toISOString(), expiresAt: new Date(now + 600_000).toISOString(), ...envelope };
  const bKey = await parseRecipientKey(B.key.publicArmored, B.key.fingerprint);
  return encryptAndSign(JSON.stringify({ envelope: header, ...body }), bKey, signer);
}

function postToB(message: string, token = tokenAtoB) {
  return api(B.gw.url, 'POST', '/v1/exchange/inbound', token, message, { 'content-type': 'application/pgp-encrypted' });
}

function envelopeId(): string {
  return 'env_' + Array.from({ length: 24 }, () => 'abcdefghijklmnopqrstuvwxyz234567'[Math.floor(Math.random() * 32)]).join('');
}

async function auditOf(side: Side): Promise<AuditRecord[]> {
  return (await side.gw.redis.lrange(`${side.gw.prefix}:audit:log`, 0, -1)).map((r) => JSON.parse(r) as AuditRecord);
}

/** Everything under B's prefix but the audit trail, the rate limiter and BullMQ's stalled-job timer. */
async function snapshotB(): Promise<Map<string, string>> {
  const all = await dumpKeys(B.gw.redis, B.gw.prefix);
  return new Map([...all].filter(([k]) => !k.includes(':audit:') && !k.includes(':rl:') && !k.endsWith(':stalled-check')));
}

const peerOf = async (id: string) => (await api(A.gw.url, 'GET', `/v1/dossiers/${id}`, FORCE)).json.peers?.[0];

/** A sends the full example dossier to B; resolves once B has fanned out its copy. */
async function sendToB(): Promise<{ id: string; envelope: string; remote: string }> {
  const dossier = fixture('dossier-full.json') as any;
  dossier.requests = { ...dossier.requests, peers: ['warwickshire'] };
  const res = await api(A.gw.url, 'POST', '/v1/dossiers', FORCE, dossier);
  expect(res.status, res.text).toBe(202);
  const id = res.json.id as string;
  await waitSettled(A.gw.url, id);
  const sent = await until('the dossier envelope to be sent', async () => {
    const p = await peerOf(id);
    return p?.state === 'sent' ? p : undefined;
  });
  await until('the fan-out at B', async () => ((await B.gw.redis.hget(`${B.gw.prefix}:dossier:${sent.remoteDossier}`, 'state')) === 'processed' ? true : undefined));
  return { id, envelope: sent.envelopeId as string, remote: sent.remoteDossier as string };
}

describe('a recall at A reaches B', () => {
  let id: string;
  let envelope: string;
  let remote: string;
  let packet: string;

  it('B recalls its copy: notices to its partners, unretrieved packets erased, hits refused; A shows the recall sent', async () => {
    ({ id, envelope, remote } = await sendToB());
    // Council housing at B pulls its packet (it stays until its retention ends); the others do not.
    const bDeliveries = Object.fromEntries(
      Object.entries(await B.gw.redis.hgetall(`${B.gw.prefix}:dossier:${remote}:deliveries`)).map(([p, v]) => [p, JSON.parse(v) as { state: string; packetId?: string }]),
    );
    packet = bDeliveries['council-housing']!.packetId!;
    expect(packet).toMatch(/^pkt_/);
    const pulled = await api(B.gw.url, 'GET', `/v1/packets/${packet}`, TOKENS['council-housing']);
    expect(pulled.status).toBe(200);
    const subject = ((await openAs('council-housing', pulled.text, B.key)).dossier.subjects as any[]).find((s) => s.name?.given === 'Daniel').id as string;
    const unretrieved = Object.entries(bDeliveries).filter(([p, d]) => p !== 'council-housing' && d.packetId);
    expect(unretrieved.length).toBeGreaterThan(0);

    const recall = await api(A.gw.url, 'POST', `/v1/dossiers/${id}/recall`, FORCE, { reason: 'withdrawn', note: NOTE });
    expect(recall.status, recall.text).toBe(200);
    expect(recall.json.peers).toEqual([{ peer: 'warwickshire', state: 'recall_queued' }]);

    // A: the peer delivery moves on to recall_sent, with the recall's reason, time and envelope.
    const sent = await until('the recall to be sent', async () => {
      const p = await peerOf(id);
      return p?.state === 'recall_sent' ? p : undefined;
    });
    expect(sent).toMatchObject({
      peer: 'warwickshire',
      envelopeId: envelope,
      remoteDossier: remote,
      recall: { reason: 'withdrawn', issuedAt: recall.json.recall.issuedAt, envelopeId: expect.stringMatching(/^env_/), after: 'sent', attempts: 1, sentAt: expect.any(String) },
    });
    expect(sent.recall.envelopeId).not.toBe(envelope);

    // B: its copy is withdrawn, by the peer, its partners told, unretrieved packets erased.
    const record = await B.gw.redis.hgetall(`${B.gw.prefix}:dossier:${remote}`);
    expect(record.state).toBe('withdrawn');
    expect(JSON.parse(record.recall!)).toMatchObject({ reason: 'withdrawn', by: 'peer:west-midlands' });
    const list = await api(B.gw.url, 'GET', '/v1/packets', TOKENS['council-housing']);
    const notice = (list.json.packets as any[]).find((x) => x.type === 'recall' && x.recalls === packet);
    expect(notice).toBeDefined();
    const got = await api(B.gw.url, 'GET', `/v1/packets/${notice.id}`, TOKENS['council-housing']);
    expect(got.status).toBe(200);
    const body = await openAs('council-housing', got.text, B.key);
    expect(body).toEqual({ recall: { id: notice.id, packet, reason: 'withdrawn', issuedAt: expect.any(String), action: expect.stringMatching(/stop using it/) } });
    for (const [partner, d] of unretrieved) {
      expect(await B.gw.redis.exists(`${B.gw.prefix}:packet:${d.packetId}`), partner).toBe(0);
      expect((await api(B.gw.url, 'GET', `/v1/packets/${d.packetId}`, TOKENS[partner])).status, partner).toBe(404);
    }

    // Hits on B's copy are refused from now on.
    const hits = await api(B.gw.url, 'POST', `/v1/packets/${packet}/hits`, TOKENS['council-housing'], {
      schema: 'cordon.hits/v1',
      packet,
      hits: [{ subject, kind: 'tenancy', detail: { line1: '4 Mill Lane', town: 'Nuneaton', postcode: 'CV11 4AB' }, matchedOn: ['name'], confidence: 'confirmed' }],
    });
    expect(hits.status).toBe(409);
    expect(hits.json.error.code).toBe('dossier_recalled');

    // Audited on both sides; the note never left A's notices.
    const aAudit = (await auditOf(A)).filter((r) => r.dossier === id);
    expect(aAudit.filter((r) => r.action === 'exchange.recall_sent')).toEqual([
      expect.objectContaining({ kind: 'disclosure', packet: sent.recall.envelopeId, inReplyTo: envelope, recipient: 'peer:warwickshire', reason: 'withdrawn' }),
    ]);
    const bAudit = (await auditOf(B)).filter((r) => r.dossier === remote);
    expect(bAudit.filter((r) => r.action === 'exchange.recall_received')).toEqual([
      expect.objectContaining({ actor: 'west-midlands-gateway', packet: sent.recall.envelopeId, inReplyTo: envelope, source: 'peer:west-midlands', reason: 'withdrawn' }),
    ]);
    expect(bAudit.filter((r) => r.action === 'dossier.recalled')).toEqual([expect.objectContaining({ actor: 'peer:west-midlands', reason: 'withdrawn' })]);
    expect(bAudit.filter((r) => r.action === 'recall.notice_sent').length).toBe(Object.values(bDeliveries).filter((d) => d.packetId).length);
    const bDump = [...(await dumpKeys(B.gw.redis, B.gw.prefix)).values()].join('\n');
    expect(bDump).not.toContain('informant retracted');
    const aExchange = [...(await dumpKeys(A.gw.redis, `${A.gw.prefix}:exchange`)).values()].join('\n');
    expect(aExchange).not.toContain('informant retracted');
  }, 30_000);

  it('a repeated recall at A sends nothing twice; B does nothing twice', async () => {
    const again = await api(A.gw.url, 'POST', `/v1/dossiers/${id}/recall`, FORCE, { reason: 'withdrawn' });
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ replayed: true, peers: [{ peer: 'warwickshire', state: 'recall_sent' }] });
    await new Promise((r) => setTimeout(r, 300));
    expect((await auditOf(A)).filter((r) => r.dossier === id && r.action === 'exchange.recall_sent')).toHaveLength(1);
    expect((await auditOf(B)).filter((r) => r.dossier === remote && r.action === 'exchange.recall_received')).toHaveLength(1);
    expect(await peerOf(id)).toMatchObject({ state: 'recall_sent' });
  });
});

describe('recall envelopes B refuses or has already taken', () => {
  /** A dossier B received from A (an envelope the test signs as A's gateway), fanned out at B. */
  async function dossierAtB(): Promise<{ envelope: string; id: string }> {
    const envelope = envelopeId();
    const res = await postToB(await toB({ type: 'dossier', id: envelope }, { dossier: fixture('dossier-full.json') }));
    expect(res.status, res.text).toBe(202);
    const id = res.json.id as string;
    await until('the fan-out at B', async () => ((await B.gw.redis.hget(`${B.gw.prefix}:dossier:${id}`, 'state')) === 'processed' ? true : undefined));
    return { envelope, id };
  }

  const recallTo = (inReplyTo: string, recall: Record<string, unknown> = { reason: 'withdrawn', issuedAt: new Date().toISOString() }, signer = A.key, from = 'west-midlands') =>
    toB({ type: 'recall', id: envelopeId(), inReplyTo }, { recall }, signer, from);

  it('an unknown envelope, another peer’s dossier, or more than a reason and a time: refused, nothing changed', async () => {
    const { envelope, id } = await dossierAtB();
    const before = await snapshotB();
    const auditBefore = (await auditOf(B)).length;

    const unknown = await postToB(await recallTo(envelopeId()));
    expect(unknown.status).toBe(404);
    expect(unknown.json.error).toMatchObject({ code: 'envelope_unknown', details: [{ path: '/envelope/inReplyTo' }] });

    // Staffordshire, a peer of B too, did not send that dossier: it cannot recall it.
    const wrongPeer = await postToB(await recallTo(envelope, undefined, staffs, 'staffordshire'), tokenStaffsToB);
    expect(wrongPeer.status).toBe(403);
    expect(wrongPeer.json.error).toMatchObject({ code: 'envelope_wrong_peer', details: [{ path: '/envelope/inReplyTo' }] });

    const withNote = await postToB(await recallTo(envelope, { reason: 'withdrawn', issuedAt: new Date().toISOString(), note: NOTE }));
    expect(withNote.status).toBe(400);
    expect(withNote.json.error).toMatchObject({ code: 'schema_violation', details: [{ path: '/recall/note' }] });
    const badReason = await postToB(await recallTo(envelope, { reason: 'regretted', issuedAt: new Date().toISOString() }));
    expect(badReason.status).toBe(400);
    expect(badReason.json.error.code).toBe('schema_violation');
    const noInReplyTo = await postToB(await toB({ type: 'recall', id: envelopeId() }, { recall: { reason: 'withdrawn', issuedAt: new Date().toISOString() } }));
    expect(noInReplyTo.status).toBe(400);
    expect(noInReplyTo.json.error.details.map((d: any) => d.path)).toContain('/envelope/inReplyTo');
    const forged = await postToB(await recallTo(envelope, undefined, staffs));
    expect(forged.status).toBe(400);
    expect(forged.json.error.code).toBe('signature_invalid');

    expect(await snapshotB()).toEqual(before);
    expect(await B.gw.redis.hget(`${B.gw.prefix}:dossier:${id}`, 'state')).toBe('processed');
    const added = (await auditOf(B)).slice(auditBefore);
    expect(added.map((r) => r.action)).toEqual(Array(6).fill('exchange.rejected'));
  }, 30_000);

  it('a replayed recall envelope gets the same answer and nothing is done twice', async () => {
    const { envelope, id } = await dossierAtB();
    const message = await recallTo(envelope, { reason: 'corrected', issuedAt: new Date().toISOString() });
    const first = await postToB(message);
    expect(first.status, first.text).toBe(202);
    expect(first.json).toMatchObject({ type: 'recall', id, state: 'corrected', replayed: false });
    const notices = async () => (await B.gw.redis.keys(`${B.gw.prefix}:packet:*`)).length;
    const noticesAfter = await notices();
    const auditAfter = (await auditOf(B)).length;

    const again = await postToB(message);
    expect(again.status).toBe(200);
    expect(again.json).toEqual({ ...first.json, replayed: true });
    expect(await notices()).toBe(noticesAfter);
    expect((await auditOf(B)).slice(auditAfter).map((r) => r.action)).toEqual([]);
    const bAudit = (await auditOf(B)).filter((r) => r.dossier === id);
    expect(bAudit.filter((r) => r.action === 'dossier.recalled')).toHaveLength(1);
    expect(bAudit.filter((r) => r.action === 'exchange.recall_received')).toHaveLength(1);
  }, 30_000);
});

describe('a dossier recalled before it left for the peer', () => {
  it('is not sent: the delivery is cancelled, the job taken off the queue, and it says so', async () => {
    // Hold A's exchange queue so the dossier envelope has not left when the recall comes.
    const connection = connectRedisForQueue(REDIS_URL);
    const queue = new Queue('exchange', { connection, prefix: `${A.gw.prefix}:bull` });
    await queue.pause();
    try {
      const dossier = fixture('dossier-minimal.json') as any;
      dossier.requests = { checks: ['addresses'], peers: ['warwickshire'] };
      const res = await api(A.gw.url, 'POST', '/v1/dossiers', FORCE, dossier);
      expect(res.status).toBe(202);
      const id = res.json.id as string;
      await waitSettled(A.gw.url, id);
      const queued = await peerOf(id);
      expect(queued).toMatchObject({ state: 'queued' });
      expect(queued.attempts).toBeUndefined();

      const recall = await api(A.gw.url, 'POST', `/v1/dossiers/${id}/recall`, FORCE, { reason: 'withdrawn' });
      expect(recall.status, recall.text).toBe(200);
      expect(recall.json.peers).toEqual([{ peer: 'warwickshire', state: 'recalled' }]);
      expect(await peerOf(id)).toMatchObject({ state: 'recalled', reason: 'cancelled_before_sending', envelopeId: queued.envelopeId, recall: { reason: 'withdrawn', after: 'queued' } });
      expect(await queue.getJob(queued.envelopeId)).toBeUndefined();
      expect(await A.gw.redis.hexists(`${A.gw.prefix}:exchange:env:${queued.envelopeId}`, 'sealed')).toBe(0);
      expect((await auditOf(A)).filter((r) => r.dossier === id && r.action === 'exchange.dossier_cancelled')).toHaveLength(1);
    } finally {
      await queue.resume();
      await queue.close();
      await connection.quit();
    }
  }, 30_000);

  it('a delivery that failed gets the recall all the same (an attempt may have arrived); a peer that never got it says so', async () => {
    const tokenFile = path.join(A.stateDir, 'peers/warwickshire.token');
    await writeFile(tokenFile, newToken(), { mode: 0o600 }); // B refuses it: 401, dead-lettered at once
    let id: string;
    try {
      const dossier = fixture('dossier-minimal.json') as any;
      dossier.requests = { checks: ['addresses'], peers: ['warwickshire'] };
      const res = await api(A.gw.url, 'POST', '/v1/dossiers', FORCE, dossier);
      id = res.json.id as string;
      await waitSettled(A.gw.url, id);
      expect(await until('the dead letter', async () => ((await peerOf(id))?.state === 'failed' ? true : undefined))).toBe(true);
    } finally {
      await writeFile(tokenFile, tokenAtoB, { mode: 0o600 });
    }
    const recall = await api(A.gw.url, 'POST', `/v1/dossiers/${id}/recall`, FORCE, { reason: 'corrected' });
    expect(recall.json.peers).toEqual([{ peer: 'warwickshire', state: 'recall_queued' }]);
    const settled = await until('the answer to the recall', async () => {
      const p = await peerOf(id);
      return p?.state === 'recalled' ? p : undefined;
    });
    expect(settled).toMatchObject({ reason: 'not_received', recall: { reason: 'corrected', after: 'failed', envelopeId: expect.stringMatching(/^env_/) } });
    expect((await auditOf(A)).filter((r) => r.dossier === id).map((r) => r.action)).toEqual(expect.arrayContaining(['exchange.dossier_failed', 'exchange.recall_not_received']));
    expect((await auditOf(A)).filter((r) => r.dossier === id && r.action === 'exchange.recall_sent')).toHaveLength(0);
  }, 30_000);
});

describe('the audit', () => {
  it("both gateways' records, the recall ones included, match schemas/audit-event.schema.json", async () => {
    const ajv = new Ajv2020({ strict: true, allErrors: true });
    addFormats.default(ajv);
    const valid = ajv.compile(JSON.parse(await readFile(path.join(ROOT, 'schemas/audit-event.schema.json'), 'utf8')) as object);
    for (const side of [A, B]) {
      const rows = await side.gw.redis.lrange(`${side.gw.prefix}:audit:log`, 0, -1);
      expect(rows.some((r) => r.includes('"action":"exchange.recall_'))).toBe(true);
      for (const row of rows) expect(valid(JSON.parse(row)), `${row.slice(0, 200)} ${JSON.stringify(valid.errors)}`).toBe(true);
    }
  });
});
