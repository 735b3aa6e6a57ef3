/**
 * Cross-border exchange between forces' gateways (peers).
 *
 * Outbound: a dossier whose source asks for `requests.peers` is decided and redacted for each peer
 * under `policies/peers/<id>.yaml` (like any recipient, gateway.yaml included), its subject ids
 * replaced by envelope refs, and kept sealed; a BullMQ job encrypts it to the peer gateway's pinned
 * key, signs it with this gateway's key and POSTs it to `<peer url>/v1/exchange/inbound`, with
 * retries and backoff, and `failed` (dead letter) once they are spent. The envelope id is derived from
 * (dossier, peer), so every retry carries the same id and the peer never makes a second dossier.
 *
 * Inbound: only the pinned key of the peer the bearer credential speaks for verifies the signature;
 * the envelope must be addressed to this force, fresh and not seen before (a replay answers with the
 * dossier it made the first time). The dossier is validated, stored sealed with the source
 * `peer:<id>` and fanned out to this gateway's own partners under its own policies. A dossier that
 * came from a peer is never sent on to another peer.
 *
 * Hits: hits this gateway's partners report on a peer's dossier are relayed back to the originating
 * gateway the same way (an envelope of type `hits` quoting the original envelope id); there they are
 * mapped from the envelope refs back to the dossier's own subject ids and merged into its hits bundle,
 * marked `via` the force they came through. Hits relayed onto a dossier its source has recalled are
 * refused (`dossier_recalled`), like a partner's. Every step is audited on both sides.
 *
 * Recall: when the source recalls a dossier (gateway/recall), every peer whose delivery may have left
 * gets a `recall` envelope quoting the dossier envelope's id, with the reason code and when it was
 * issued (never the note); its id is derived from (dossier, peer), so a repeated recall sends nothing
 * twice. A delivery that has not left yet is cancelled instead. The peer finds the dossier it made from
 * that envelope (only the peer that sent it may recall it) and recalls it there, as `peer:<id>`: its
 * partners get recall notices, their unretrieved packets are erased. See recallPeers and receiveRecall.
 *
 * The exchange records of a dossier (peer deliveries, envelopes, origin, the inbound envelope → dossier
 * map) live exactly as long as its status record; the inbound replay records, REPLAY_RECORD_TTL_SECONDS.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ChainableCommander, Redis } from 'ioredis';
import type { AuditLog } from '../audit/log.js';
import { decryptAndVerify, encryptAndSign, type GatewayKey, type RecipientKey } from '../crypto/openpgp.js';
import type { Keyring } from '../crypto/keyring.js';
import { hmacId, seal, unseal } from '../crypto/seal.js';
import { GatewayError, type ErrorDetail } from '../errors/index.js';
import type { HitStore, StoredHit } from '../hits/store.js';
import { newDossierId } from '../intake/intake.js';
import type { Dossier } from '../dossier/types.js';
import { validateDossier, validateHits } from '../dossier/validate.js';
import type { LiveSet } from '../policy/live.js';
import type { PeerPolicy } from '../policy/types.js';
import { RECALL_REASONS, type RecallReason } from '../recall/recall.js';
import { redact } from '../redact/redact.js';
import { dossierDueMember, STATUS_RETENTION_MS } from '../retention/schedule.js';
import { IDEMPOTENCY_TTL_SECONDS, isRecalled, RECORD_TTL_SECONDS, type DossierRecord, type DossierStore } from '../store/dossiers.js';
import type { Keys } from '../store/redis.js';
import type { PeerDirectory } from './peers.js';
import { PermanentExchangeError, type ExchangeJob, type ExchangeQueue } from './queue.js';
import { postToPeer } from './tls.js';

export const PEER_SOURCE_PREFIX = 'peer:';
/** An envelope older than this (or issued further than CLOCK_SKEW_MS in the future) is refused. */
export const FRESHNESS_MS = 10 * 60_000;
export const CLOCK_SKEW_MS = 2 * 60_000;
const ENVELOPE_ID = /^env_[a-z2-7]{16,64}$/;
const MAX_PLAINTEXT_BYTES = 4 * 1024 * 1024;

/**
 * How long the inbound replay record (`exchange:seen:<peer>:<envelope id>` → the dossier it made) is
 * kept. Freshness is checked before the record is read (checkHeader: issued within FRESHNESS_MS, at
 * most CLOCK_SKEW_MS ahead, not expired), so an envelope captured and replayed as it is gets refused
 * as stale after FRESHNESS_MS + CLOCK_SKEW_MS whatever this record says: for that alone, the window
 * and a margin would do. But the sending gateway seals every retry of an envelope anew, with a fresh
 * `issuedAt` and the same id (derived from dossier and peer, so that a retry never makes a second
 * dossier): a retry whose first attempt was stored here but whose answer was lost passes the freshness
 * check, and only this record makes it answer with the first dossier. So it must also outlast the
 * sender's retries: the default schedule (CORDON_EXCHANGE_ATTEMPTS 8 from CORDON_EXCHANGE_BACKOFF_MS
 * 2000, doubling) spends them in about 4 minutes. 7 days, like a source's Idempotency-Key record, covers
 * any sensible schedule and the freshness window by far; the record holds two opaque ids only.
 */
export const REPLAY_RECORD_TTL_SECONDS = IDEMPOTENCY_TTL_SECONDS;

/**
 * KEYS[1] a dossier's status record, KEYS[2] its companions set, KEYS[3..] exchange records of that
 * dossier (its peer deliveries, envelopes, origin). ARGV[1] the expiry (ms) to use should the status
 * record have none. Gives every record the status record's expiry (never shortening one) and files it
 * among the record's companions, which packets extend with it (mailbox.ts) and its erasure erases
 * (retention/erase.ts): so they live exactly as long as the status record. For a status record that
 * is gone, the records go too. Returns the expiry given (ms), or 0.
 */
const KEEP_WITH_STATUS = `
local t = redis.call('PEXPIRETIME', KEYS[1])
if t == -2 then
  for k = 3, #KEYS do redis.call('DEL', KEYS[k]) end
  return 0
end
if t == -1 then t = tonumber(ARGV[1]) end
for k = 3, #KEYS do redis.call('SADD', KEYS[2], KEYS[k]) end
for k = 2, #KEYS do
  if redis.call('PEXPIRETIME', KEYS[k]) < t then redis.call('PEXPIREAT', KEYS[k], t) end
end
return t
`;

/**
 * KEYS[1] a dossier's peer deliveries. ARGV[1] the peer, ARGV[2] its new delivery (JSON), ARGV[3..] the
 * states it may replace. Writes only over a delivery in one of those states (the dossier job, the recall
 * and the dead letter move a delivery on concurrently); returns 1 when written.
 */
const REPLACE_DELIVERY = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
local state = cjson.decode(cur).state
for i = 3, #ARGV do
  if state == ARGV[i] then
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
    return 1
  end
end
return 0
`;

/**
 * `recalled`: the source recalled the dossier before it reached the peer (cancelled before sending, or
 * the peer answered it never got it): nothing there to recall. `recall_queued` | `recall_sent` |
 * `recall_failed`: the dossier had left (or may have: an attempt whose answer was lost) and its recall
 * envelope is on its way, was taken by the peer, or was dead-lettered.
 */
export type PeerDeliveryState = 'queued' | 'sent' | 'failed' | 'blocked' | 'recalled' | 'recall_queued' | 'recall_sent' | 'recall_failed';

/** The recall of a dossier as it concerns one peer: codes, times and ids only (never the note). */
export interface PeerRecall {
  reason: string;
  /** When the source issued the recall. */
  issuedAt: string;
  /** The recall envelope (absent when the dossier was cancelled before sending). */
  envelopeId?: string;
  /** The state of the dossier's delivery when the recall reached it. */
  after: 'queued' | 'sent' | 'failed';
  attempts?: number;
  /** When the peer took the recall. */
  sentAt?: string;
}

export interface PeerDelivery {
  state: PeerDeliveryState;
  envelopeId?: string;
  reason?: string;
  message?: string;
  /** The dossier id the peer gateway gave it (opaque). */
  remoteDossier?: string;
  attempts?: number;
  /** Once the source has recalled the dossier. */
  recall?: PeerRecall;
  updatedAt: string;
}

/** What `exchange:env:<dossier envelope>` holds under `recall` once the source has recalled the dossier. */
interface RecallMarkOnEnvelope {
  reason: string;
  issuedAt: string;
}

/** Deliveries whose dossier has left for good: a dossier job finding one of these has nothing to do. */
const LEFT_OR_RECALLED = new Set<PeerDeliveryState>(['sent', 'recalled', 'recall_queued', 'recall_sent', 'recall_failed']);

export interface ExchangeDeps {
  redis: Redis;
  keys: Keys;
  store: DossierStore;
  audit: AuditLog;
  live: () => LiveSet<RecipientKey>;
  peers: PeerDirectory;
  gatewayKey: GatewayKey;
  keyring: Keyring;
  hitStore: HitStore;
  /** Where `peers/<id>.token` (the bearer token this gateway presents to that peer) lives. */
  stateDir: string;
  /** This gateway's force id (`CORDON_FORCE_ID`); default: the single source in the policy set. */
  forceId?: string;
  queue: () => ExchangeQueue;
  /** For inbound dossiers (api role): queue the local fan-out. */
  enqueueDossier?: (id: string) => Promise<void>;
  /** For inbound recalls (api role): recall, here, a dossier received from a peer, as `actor` (`peer:<id>`). */
  recall?: (dossierId: string, actor: string, reason: RecallReason) => Promise<{ state: string }>;
  retention?: { schedule(member: string, due: Date): Promise<void> };
  fetchTimeoutMs?: number;
}

interface EnvelopeHeader {
  type: 'dossier' | 'hits' | 'recall';
  id: string;
  from: string;
  to: string;
  issuedAt: string;
  expiresAt: string;
  inReplyTo?: string;
}

export function isPeerSource(source: string): boolean {
  return source.startsWith(PEER_SOURCE_PREFIX);
}

export class Exchange {
  private readonly sealKey: Buffer;
  private readonly idKey: Buffer;
  private readonly hitIdKey: Buffer;

  constructor(private readonly deps: ExchangeDeps) {
    this.sealKey = deps.keyring.seal;
    this.idKey = deps.keyring.envelopeId;
    this.hitIdKey = deps.keyring.hitId;
  }

  // ---- keys ------------------------------------------------------------------------------------

  private outKey(dossierId: string) {
    return `${this.deps.keys.prefix}:exchange:out:${dossierId}`;
  }
  private envKey(envelopeId: string) {
    return `${this.deps.keys.prefix}:exchange:env:${envelopeId}`;
  }
  private seenKey(peer: string, envelopeId: string) {
    return `${this.deps.keys.prefix}:exchange:seen:${peer}:${envelopeId}`;
  }
  private originKey(dossierId: string) {
    return `${this.deps.keys.prefix}:exchange:origin:${dossierId}`;
  }
  /** Inbound: the dossier this gateway made from a peer's dossier envelope (kept with its status record). */
  private inboundKey(peer: string, envelopeId: string) {
    return `${this.deps.keys.prefix}:exchange:in:${peer}:${envelopeId}`;
  }

  envelopeId(dossierId: string, peer: string): string {
    return 'env_' + hmacId(this.idKey, 'dossier', dossierId, peer);
  }

  /** The recall envelope of a dossier to a peer: one per (dossier, peer), whatever the retries or repeats. */
  recallEnvelopeId(dossierId: string, peer: string): string {
    return 'env_' + hmacId(this.idKey, 'recall', dossierId, peer);
  }

  /** This gateway's force: `CORDON_FORCE_ID`, or the only source configured. */
  forceId(): string {
    if (this.deps.forceId) return this.deps.forceId;
    const sources = [...this.deps.live().set.sources.keys()];
    if (sources.length === 1) return sources[0]!;
    throw new GatewayError('config_invalid', 'Set CORDON_FORCE_ID: the policy set has more than one source, so this gateway\u2019s force is ambiguous');
  }

  // ---- status ----------------------------------------------------------------------------------

  async deliveries(dossierId: string): Promise<Array<{ peer: string } & PeerDelivery>> {
    const h = await this.deps.redis.hgetall(this.outKey(dossierId));
    return Object.entries(h)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([peer, v]) => ({ peer, ...(JSON.parse(v) as PeerDelivery) }));
  }

  private async setDelivery(dossierId: string, peer: string, d: PeerDelivery): Promise<void> {
    const multi = this.deps.redis.multi().hset(this.outKey(dossierId), peer, JSON.stringify(d));
    await this.keepWithStatus(multi, dossierId, this.outKey(dossierId)).exec();
  }

  private async delivery(dossierId: string, peer: string): Promise<PeerDelivery | undefined> {
    const v = await this.deps.redis.hget(this.outKey(dossierId), peer);
    return v ? (JSON.parse(v) as PeerDelivery) : undefined;
  }

  /** Writes the delivery only over one in a state of `from` (see REPLACE_DELIVERY); true when written. */
  private async replaceDelivery(dossierId: string, peer: string, d: PeerDelivery, from: PeerDeliveryState[]): Promise<boolean> {
    const multi = this.deps.redis.multi().eval(REPLACE_DELIVERY, 1, this.outKey(dossierId), peer, JSON.stringify(d), ...from);
    const results = (await this.keepWithStatus(multi, dossierId, this.outKey(dossierId)).exec()) ?? [];
    const failed = results.find(([err]) => err);
    if (failed) throw failed[0]!;
    return results[0]?.[1] === 1;
  }

  /**
   * Queues, in `multi` after the writes, what makes these exchange records of a dossier live exactly as
   * long as its status record (see KEEP_WITH_STATUS); atomic with the writes, so no record is ever left
   * without an expiry.
   */
  private keepWithStatus<M extends ChainableCommander>(multi: M, dossierId: string, ...records: string[]): M {
    multi.eval(KEEP_WITH_STATUS, 2 + records.length, this.deps.keys.dossier(dossierId), this.deps.keys.dossierCompanions(dossierId), ...records, String(Date.now() + RECORD_TTL_SECONDS * 1000));
    return multi;
  }

  // ---- outbound --------------------------------------------------------------------------------

  /**
   * Runs in the fan-out job once the dossier is open (before it is erased): prepares one sealed
   * envelope per requested peer and queues its delivery. Idempotent: a retried job re-queues only.
   */
  async prepare(dossierId: string, source: string, dossier: Dossier): Promise<void> {
    const wanted = dossier.requests?.peers ?? [];
    if (wanted.length === 0) return;
    if (isPeerSource(source)) {
      // Loop prevention: a dossier that came from a peer never goes on to another peer.
      await this.deps.audit.append({ kind: 'decision', action: 'exchange.not_forwarded', dossier: dossierId, source, reason: 'received_from_peer', peers: wanted });
      return;
    }
    const existing = await this.deps.redis.hgetall(this.outKey(dossierId));
    for (const peer of wanted) {
      const prior = existing[peer] ? (JSON.parse(existing[peer]) as PeerDelivery) : undefined;
      if (prior) {
        if (prior.state === 'queued' && prior.envelopeId) await this.deps.queue().enqueue({ type: 'dossier', envelopeId: prior.envelopeId });
        continue;
      }
      await this.prepareOne(dossierId, source, dossier, peer);
    }
  }

  private async block(dossierId: string, peer: string, reason: string, message: string, revision: string): Promise<void> {
    await this.deps.audit.append({ kind: 'decision', action: 'exchange.blocked', dossier: dossierId, recipient: `peer:${peer}`, policyRevision: revision, reason });
    await this.setDelivery(dossierId, peer, { state: 'blocked', reason, message, updatedAt: new Date().toISOString() });
  }

  private async prepareOne(dossierId: string, source: string, dossier: Dossier, peer: string): Promise<void> {
    const now = new Date();
    const view = this.deps.peers.view();
    const revision = this.deps.live().set.revision;
    const policy = view.policies.get(peer);
    if (!policy) return this.block(dossierId, peer, 'no_agreement', `No peer file policies/peers/${peer}.yaml is configured`, revision);
    try {
      this.forceId();
    } catch (err) {
      return this.block(dossierId, peer, 'config_invalid', (err as Error).message, revision);
    }
    const decision = await view.decider.decide(peer, dossier, now);
    if (decision.block) return this.block(dossierId, peer, decision.block.reason, decision.block.message, decision.revision);
    const key = await view.keys.get(peer);
    if (!key || 'invalid' in key) return this.block(dossierId, peer, 'recipient_key_invalid', key?.invalid ?? 'no key', decision.revision);

    const envelopeId = this.envelopeId(dossierId, peer);
    const random = randomBytes(8 * dossier.subjects.length).toString('hex');
    const refs = new Map(dossier.subjects.map((s, i) => [s.id, 'ref_' + random.slice(16 * i, 16 * i + 16)]));
    const { dossier: redacted, disclosed } = redact(dossier, decision.plan, { refs, pseudonymKey: this.deps.keyring.peerPseudonym(peer) });
    const body = {
      policy: { id: `peer:${peer}`, revision: decision.revision },
      agreement: agreementOf(policy),
      dossier: redacted,
    };
    const byRef = Object.fromEntries([...refs].map(([id, ref]) => [ref, id]));
    await this.deps.audit.append({
      kind: 'disclosure',
      action: 'exchange.envelope_prepared',
      dossier: dossierId,
      packet: envelopeId,
      recipient: `peer:${peer}`,
      source,
      policyRevision: decision.revision,
      agreement: agreementOf(policy),
      fields: disclosed,
      keyFingerprint: key.fingerprint,
      justification: { agreement: policy.agreement.reference, agreementPurpose: policy.agreement.purpose, dossierPurpose: `sealed with dossier ${dossierId}` },
    });
    const envKey = this.envKey(envelopeId);
    const multi = this.deps.redis
      .multi()
      .hsetnx(envKey, 'sealed', seal(this.sealKey, JSON.stringify(body), envelopeId))
      .hsetnx(envKey, 'refs', seal(this.sealKey, JSON.stringify(byRef), `${envelopeId}:refs`))
      .hset(envKey, { dossier: dossierId, peer, source });
    // The refs map the peer's hits back for as long as the dossier (and its hits) are kept.
    await this.keepWithStatus(multi, dossierId, envKey).exec();
    await this.setDelivery(dossierId, peer, { state: 'queued', envelopeId, updatedAt: now.toISOString() });
    await this.deps.queue().enqueue({ type: 'dossier', envelopeId });
  }

  /** The exchange job: encrypt, sign and POST one envelope. Throws to be retried. */
  async run(job: ExchangeJob): Promise<void> {
    if (job.type === 'dossier') return this.sendDossier(job.envelopeId);
    if (job.type === 'recall') return this.sendRecall(job.dossierId, job.peer, job.envelopeId);
    return this.sendHits(job.dossierId, job.envelopeId);
  }

  /** Retries spent, or the peer refused: the delivery is dead-lettered with the reason. */
  async failed(job: ExchangeJob, err: Error): Promise<void> {
    if (job.type === 'recall') return this.recallFailed(job.dossierId, job.peer, job.envelopeId, err);
    const env = await this.deps.redis.hgetall(this.envKey(job.envelopeId));
    const dossierId = job.type === 'dossier' ? env.dossier : job.dossierId;
    const peer = job.type === 'dossier' ? env.peer : (await this.deps.redis.hget(this.originKey(job.dossierId), 'peer')) ?? undefined;
    await this.deps.audit.append({ kind: 'decision', action: `exchange.${job.type}_failed`, dossier: dossierId, packet: job.envelopeId, recipient: `peer:${peer}`, reason: err.message.slice(0, 200) });
    if (job.type === 'dossier' && dossierId && peer) {
      await this.deps.redis.hdel(this.envKey(job.envelopeId), 'sealed');
      const prior = await this.delivery(dossierId, peer);
      await this.replaceDelivery(
        dossierId,
        peer,
        { state: 'failed', envelopeId: job.envelopeId, reason: 'dead_letter', message: err.message.slice(0, 500), ...(prior?.attempts ? { attempts: prior.attempts } : {}), updatedAt: new Date().toISOString() },
        ['queued'],
      );
      // Recalled while it was being tried: an attempt may have reached the peer, so it gets the recall.
      if (await this.recallMark(job.envelopeId)) await this.settleRecalled(dossierId, peer, false);
    }
  }

  private async sendDossier(envelopeId: string): Promise<void> {
    const env = await this.deps.redis.hgetall(this.envKey(envelopeId));
    const current = env.peer && env.dossier ? await this.delivery(env.dossier, env.peer) : undefined;
    if (current && LEFT_OR_RECALLED.has(current.state)) return; // a duplicate job
    // Recalled before this job ran: the dossier is not sent (cancelled, or recalled if an attempt may have arrived).
    if (env.recall && env.peer && env.dossier && current?.state === 'queued') {
      await this.settleRecalled(env.dossier, env.peer, false);
      return;
    }
    if (!env.sealed || !env.peer || !env.dossier) throw new PermanentExchangeError(`envelope ${envelopeId} is no longer held`);
    const body = JSON.parse(unseal(this.sealKey, env.sealed, envelopeId).toString('utf8')) as Record<string, unknown>;
    const { policy, key } = await this.peerAndKey(env.peer);
    const { header, message } = await this.seal('dossier', envelopeId, policy, key, body);
    const prior = (await this.deliveries(env.dossier)).find((d) => d.peer === env.peer);
    let answer: { id?: string };
    try {
      answer = await this.post(policy, message);
    } catch (err) {
      await this.replaceDelivery(
        env.dossier,
        env.peer,
        { state: 'queued', envelopeId, reason: 'retrying', message: (err as Error).message.slice(0, 500), attempts: (prior?.attempts ?? 0) + 1, updatedAt: new Date().toISOString() },
        ['queued'],
      );
      // Recalled during the attempt: no more attempts; the attempt may have arrived, so the peer gets the recall.
      if (await this.recallMark(envelopeId)) {
        await this.settleRecalled(env.dossier, env.peer, false);
        return;
      }
      throw err;
    }
    await this.deps.audit.append({
      kind: 'disclosure',
      action: 'exchange.dossier_sent',
      dossier: env.dossier,
      packet: envelopeId,
      recipient: `peer:${env.peer}`,
      source: env.source,
      agreement: agreementOf(policy),
      keyFingerprint: key.fingerprint,
      issuedAt: header.issuedAt,
    });
    // Sent: the sealed body goes (the refs stay, to map the peer's hits back).
    await this.deps.redis.hdel(this.envKey(envelopeId), 'sealed');
    await this.replaceDelivery(
      env.dossier,
      env.peer,
      {
        state: 'sent',
        envelopeId,
        ...(typeof answer.id === 'string' ? { remoteDossier: answer.id } : {}),
        attempts: (prior?.attempts ?? 0) + 1,
        updatedAt: new Date().toISOString(),
      },
      ['queued'],
    );
    // Recalled while it was on its way (the mark is set before the recall reads the delivery): recall it there.
    if (await this.recallMark(envelopeId)) await this.settleRecalled(env.dossier, env.peer, false);
  }

  private async peerAndKey(peer: string): Promise<{ policy: PeerPolicy; key: RecipientKey }> {
    const view = this.deps.peers.view();
    const policy = view.policies.get(peer);
    if (!policy) throw new PermanentExchangeError(`peer ${peer} is no longer configured`);
    const key = await view.keys.get(peer);
    if (!key || 'invalid' in key) throw new PermanentExchangeError(`the pinned key of peer ${peer} cannot be used: ${key?.invalid ?? 'no key'}`);
    return { policy, key };
  }

  private async seal(type: EnvelopeHeader['type'], id: string, policy: PeerPolicy, key: RecipientKey, body: Record<string, unknown>, extra: Partial<EnvelopeHeader> = {}) {
    const now = new Date();
    const header: EnvelopeHeader = {
      type,
      id,
      from: this.forceId(),
      to: policy.peer.force,
      issuedAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + FRESHNESS_MS).toISOString(),
      ...extra,
    };
    const message = await encryptAndSign(JSON.stringify({ envelope: { ...header, ...pick(body, ['policy', 'agreement']) }, ...omit(body, ['policy', 'agreement']) }), key, this.deps.gatewayKey, now);
    return { header, message };
  }

  /**
   * POSTs to the peer; 2xx → its JSON answer; a 4xx refusal (but 408/429, and `dossier_not_settled`: a
   * recall that arrived while the peer's fan-out of the dossier is still running) is permanent
   * (PeerRefusal, with the peer's error code); else retried.
   */
  private async post(policy: PeerPolicy, message: string): Promise<{ id?: string }> {
    let token: string;
    try {
      token = (await readFile(path.join(this.deps.stateDir, 'peers', `${policy.peer.id}.token`), 'utf8')).trim();
    } catch {
      throw new Error(`no bearer token for peer ${policy.peer.id}: put it in ${path.join(this.deps.stateDir, 'peers', `${policy.peer.id}.token`)}`);
    }
    const res = await postToPeer(
      policy.peer,
      'v1/exchange/inbound',
      { authorization: `Bearer ${token}`, 'content-type': 'application/pgp-encrypted' },
      message,
      this.deps.stateDir,
      this.deps.fetchTimeoutMs ?? 15_000,
    );
    const ok = res.status >= 200 && res.status < 300;
    const text = res.text;
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      /* not JSON */
    }
    if (ok) return json as { id?: string };
    const code = (json.error as { code?: string } | undefined)?.code ?? String(res.status);
    const msg = `peer ${policy.peer.id} answered ${res.status} ${code}`;
    if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429 && code !== 'dossier_not_settled') throw new PeerRefusal(msg, code);
    throw new Error(msg);
  }

  // ---- recall ----------------------------------------------------------------------------------

  /**
   * After the source's recall of a dossier (gateway/recall, once it is done and audited here): every
   * peer delivery whose dossier has left, or may have (sent; queued or failed after an attempt whose
   * answer may have been lost), gets a recall envelope on the exchange queue; one that has not left is
   * cancelled (`recalled`, audited `exchange.dossier_cancelled`). Idempotent: the mark on the dossier
   * envelope is written once, the recall envelope id is derived from (dossier, peer), and a delivery
   * already moved on is left as it is. Returns each peer delivery's state after. A dossier that came
   * from a peer was never sent to one.
   */
  async recallPeers(dossierId: string, source: string, recall: { reason: string; issuedAt: string }): Promise<Array<{ peer: string; state: PeerDeliveryState }>> {
    if (isPeerSource(source)) return [];
    const out: Array<{ peer: string; state: PeerDeliveryState }> = [];
    for (const d of await this.deliveries(dossierId)) {
      if (!d.envelopeId) {
        out.push({ peer: d.peer, state: d.state }); // blocked: nothing was prepared, nothing left
        continue;
      }
      // The mark first, then the delivery read anew: a dossier job that settles after that read finds the mark.
      const envKey = this.envKey(d.envelopeId);
      const mark: RecallMarkOnEnvelope = { reason: recall.reason, issuedAt: recall.issuedAt };
      await this.keepWithStatus(this.deps.redis.multi().hsetnx(envKey, 'recall', JSON.stringify(mark)), dossierId, envKey).exec();
      out.push({ peer: d.peer, state: await this.settleRecalled(dossierId, d.peer, true) });
    }
    return out;
  }

  private async recallMark(envelopeId: string): Promise<RecallMarkOnEnvelope | undefined> {
    const v = await this.deps.redis.hget(this.envKey(envelopeId), 'recall');
    return v ? (JSON.parse(v) as RecallMarkOnEnvelope) : undefined;
  }

  /**
   * Moves a peer delivery of a recalled dossier on; returns its state after. `withdraw`: the caller is
   * not the dossier job, so a dossier job not started yet is taken off the queue first, and one a
   * worker holds is left to settle it itself (it reads the mark once its attempt is over).
   */
  private async settleRecalled(dossierId: string, peer: string, withdraw: boolean): Promise<PeerDeliveryState> {
    for (let round = 0; ; round++) {
      const d = await this.delivery(dossierId, peer);
      if (!d?.envelopeId) return d?.state ?? 'blocked';
      const mark = await this.recallMark(d.envelopeId);
      if (!mark) return d.state;
      if (round >= 5) return d.state; // moved on under us again and again: what it is now
      const now = new Date().toISOString();
      if (d.state === 'recall_queued') {
        // Queued before (perhaps cut short): queue it again; the job id makes that a no-op if it is there.
        await this.enqueueRecall(dossierId, peer, d);
        return d.state;
      }
      if (d.state === 'queued' && withdraw && (await this.deps.queue().withdraw(d.envelopeId)) === 'active') return d.state;
      if (d.state === 'queued' && !d.attempts && d.reason !== 'retrying') {
        // Never tried: it has not left. Cancelled, and its sealed body goes.
        await this.deps.audit.append({ kind: 'decision', action: 'exchange.dossier_cancelled', dossier: dossierId, packet: d.envelopeId, recipient: `peer:${peer}`, reason: 'recalled' });
        const cancelled: PeerDelivery = { state: 'recalled', envelopeId: d.envelopeId, reason: 'cancelled_before_sending', recall: { reason: mark.reason, issuedAt: mark.issuedAt, after: 'queued' }, updatedAt: now };
        if (await this.replaceDelivery(dossierId, peer, cancelled, ['queued'])) {
          await this.deps.redis.hdel(this.envKey(d.envelopeId), 'sealed');
          return cancelled.state;
        }
        continue;
      }
      if (d.state === 'sent' || d.state === 'failed' || d.state === 'queued') {
        const next: PeerDelivery = {
          state: 'recall_queued',
          envelopeId: d.envelopeId,
          ...(d.remoteDossier ? { remoteDossier: d.remoteDossier } : {}),
          ...(d.attempts ? { attempts: d.attempts } : {}),
          recall: { reason: mark.reason, issuedAt: mark.issuedAt, envelopeId: this.recallEnvelopeId(dossierId, peer), after: d.state },
          updatedAt: now,
        };
        if (await this.replaceDelivery(dossierId, peer, next, [d.state])) {
          if (d.state === 'queued') await this.deps.redis.hdel(this.envKey(d.envelopeId), 'sealed');
          await this.enqueueRecall(dossierId, peer, next);
          return next.state;
        }
        continue;
      }
      return d.state; // blocked, recalled, recall_sent, recall_failed: nothing more to do
    }
  }

  private async enqueueRecall(dossierId: string, peer: string, d: PeerDelivery): Promise<void> {
    if (!d.recall?.envelopeId) return;
    await this.deps.queue().enqueue({ type: 'recall', dossierId, peer, envelopeId: d.recall.envelopeId });
  }

  /** The recall job: `{"envelope": {type: "recall", inReplyTo: <dossier envelope>, …}, "recall": {reason, issuedAt}}`. */
  private async sendRecall(dossierId: string, peer: string, envelopeId: string): Promise<void> {
    const d = await this.delivery(dossierId, peer);
    // Taken by the peer already, or not this envelope's: a duplicate job.
    if (!d?.envelopeId || d.state !== 'recall_queued' || d.recall?.envelopeId !== envelopeId) return;
    const recall = d.recall;
    const { policy, key } = await this.peerAndKey(peer);
    const { header, message } = await this.seal('recall', envelopeId, policy, key, { recall: { reason: recall.reason, issuedAt: recall.issuedAt } }, { inReplyTo: d.envelopeId });
    const attempts = (recall.attempts ?? 0) + 1;
    try {
      await this.post(policy, message);
    } catch (err) {
      if (err instanceof PeerRefusal && err.code === 'envelope_unknown' && recall.after !== 'sent') {
        // The dossier was never confirmed sent and the peer does not know it: it never arrived, nothing to recall there.
        await this.deps.audit.append({ kind: 'decision', action: 'exchange.recall_not_received', dossier: dossierId, packet: envelopeId, inReplyTo: d.envelopeId, recipient: `peer:${peer}`, reason: 'envelope_unknown' });
        await this.replaceDelivery(dossierId, peer, { ...omitDelivery(d), state: 'recalled', reason: 'not_received', recall: { ...recall, attempts }, updatedAt: new Date().toISOString() }, ['recall_queued']);
        return;
      }
      await this.replaceDelivery(
        dossierId,
        peer,
        { ...omitDelivery(d), state: 'recall_queued', reason: 'retrying', message: (err as Error).message.slice(0, 500), recall: { ...recall, attempts }, updatedAt: new Date().toISOString() },
        ['recall_queued'],
      );
      throw err;
    }
    await this.deps.audit.append({
      kind: 'disclosure',
      action: 'exchange.recall_sent',
      dossier: dossierId,
      packet: envelopeId,
      inReplyTo: d.envelopeId,
      recipient: `peer:${peer}`,
      reason: recall.reason,
      agreement: agreementOf(policy),
      keyFingerprint: key.fingerprint,
      issuedAt: header.issuedAt,
    });
    const now = new Date().toISOString();
    await this.replaceDelivery(dossierId, peer, { ...omitDelivery(d), state: 'recall_sent', recall: { ...recall, attempts, sentAt: now }, updatedAt: now }, ['recall_queued']);
  }

  private async recallFailed(dossierId: string, peer: string, envelopeId: string, err: Error): Promise<void> {
    await this.deps.audit.append({ kind: 'decision', action: 'exchange.recall_failed', dossier: dossierId, packet: envelopeId, recipient: `peer:${peer}`, reason: err.message.slice(0, 200) });
    const d = await this.delivery(dossierId, peer);
    if (d?.state !== 'recall_queued') return;
    await this.replaceDelivery(dossierId, peer, { ...omitDelivery(d), state: 'recall_failed', reason: 'dead_letter', message: err.message.slice(0, 500), updatedAt: new Date().toISOString() }, ['recall_queued']);
  }

  // ---- hits relay ------------------------------------------------------------------------------

  /** After new hits on a dossier: if it came from a peer, queue the relay of all its hits so far. */
  async onNewHits(dossierId: string, source: string, total: number): Promise<void> {
    if (!isPeerSource(source)) return;
    if (!(await this.deps.redis.exists(this.originKey(dossierId)))) return;
    await this.deps.queue().enqueue({ type: 'hits', dossierId, envelopeId: 'env_' + hmacId(this.idKey, 'hits', dossierId, String(total)) });
  }

  private async sendHits(dossierId: string, envelopeId: string): Promise<void> {
    const origin = await this.deps.redis.hgetall(this.originKey(dossierId));
    if (!origin.peer || !origin.envelopeId) throw new PermanentExchangeError(`dossier ${dossierId} has no peer origin`);
    const { policy, key } = await this.peerAndKey(origin.peer);
    const hits = (await this.deps.hitStore.hits(dossierId)).map((h) => ({
      id: h.id,
      subject: h.subject,
      partner: h.partner,
      kind: h.kind,
      detail: h.detail,
      matchedOn: h.matchedOn,
      confidence: h.confidence,
      ...(h.partnerRecordRef !== undefined ? { partnerRecordRef: h.partnerRecordRef } : {}),
      receivedAt: h.receivedAt,
      agreement: h.agreement,
    }));
    if (hits.length === 0) return;
    const { message } = await this.seal('hits', envelopeId, policy, key, { hits }, { inReplyTo: origin.envelopeId });
    // Audit first: a transfer that cannot be logged does not happen (a retried relay is logged again).
    await this.deps.audit.append({
      kind: 'disclosure',
      action: 'exchange.hits_relayed',
      dossier: dossierId,
      packet: envelopeId,
      recipient: `peer:${origin.peer}`,
      agreement: agreementOf(policy),
      count: hits.length,
      partners: [...new Set(hits.map((h) => h.partner))].sort(),
      keyFingerprint: key.fingerprint,
    });
    await this.post(policy, message);
  }

  // ---- inbound ---------------------------------------------------------------------------------

  /** `POST /v1/exchange/inbound` from the peer `peerId` (the credential's). Nothing is stored unless it all holds. */
  async receive(
    clientId: string,
    peerId: string,
    armored: unknown,
    clientCert?: string,
  ): Promise<{ type: string; envelope: string; id?: string; state?: string; accepted?: number; duplicates?: number; replayed: boolean }> {
    try {
      return await this.receiveChecked(clientId, peerId, armored, clientCert);
    } catch (err) {
      if (err instanceof GatewayError) {
        await this.deps.audit
          .append({ kind: 'rejection', action: 'exchange.rejected', actor: clientId, source: `peer:${peerId}`, reason: err.code, paths: err.details?.map((d) => d.path ?? '').slice(0, 50) })
          .catch(() => undefined);
      }
      throw err;
    }
  }

  private async receiveChecked(clientId: string, peerId: string, armored: unknown, clientCert?: string) {
    const view = this.deps.peers.view();
    const policy = view.policies.get(peerId);
    if (!policy) throw new GatewayError('forbidden', `No peer file for "${peerId}": this gateway does not exchange with it`);
    const pinned = policy.peer.tls?.clientCertFingerprint;
    if (pinned !== undefined && clientCert?.toUpperCase() !== pinned) {
      throw new GatewayError('forbidden', `Peer ${peerId} must present its pinned TLS client certificate (mutual TLS)`);
    }
    if (typeof armored !== 'string' || armored.length === 0) throw new GatewayError('signature_invalid', 'The body must be an armored OpenPGP message');
    const key = await view.keys.get(peerId);
    if (!key || 'invalid' in key) throw new GatewayError('recipient_key_invalid', `The pinned key of peer ${peerId} cannot be used (${key?.invalid ?? 'no key'}); nothing was stored`);
    let data: string;
    try {
      ({ data } = await decryptAndVerify(armored, this.deps.gatewayKey.privateKey, [key.key]));
    } catch (err) {
      if (err instanceof GatewayError && err.code === 'crypto_failed') {
        throw new GatewayError('signature_invalid', `The envelope could not be decrypted with this gateway's key or is not signed by the pinned key of peer ${peerId}; nothing was stored`, undefined, { cause: err });
      }
      throw err;
    }
    if (Buffer.byteLength(data, 'utf8') > MAX_PLAINTEXT_BYTES) throw new GatewayError('payload_too_large', 'The decrypted envelope is larger than the gateway accepts');
    let doc: { envelope?: Record<string, unknown>; dossier?: unknown; hits?: unknown; recall?: unknown };
    try {
      doc = JSON.parse(data) as typeof doc;
    } catch {
      throw new GatewayError('invalid_json', 'The decrypted envelope is not valid JSON');
    }
    const header = this.checkHeader(doc?.envelope, policy);
    if (header.type === 'dossier') return this.receiveDossier(clientId, peerId, policy, header, doc.dossier);
    if (header.type === 'recall') return this.receiveRecall(clientId, peerId, policy, header, doc as Record<string, unknown>);
    return this.receiveHits(clientId, peerId, policy, header, doc.hits);
  }

  private checkHeader(raw: unknown, policy: PeerPolicy): EnvelopeHeader {
    const problems: ErrorDetail[] = [];
    const e = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
    const now = Date.now();
    if (e.type !== 'dossier' && e.type !== 'hits' && e.type !== 'recall') problems.push({ path: '/envelope/type', message: 'must be "dossier", "hits" or "recall"' });
    if (typeof e.id !== 'string' || !ENVELOPE_ID.test(e.id)) problems.push({ path: '/envelope/id', message: 'must be an envelope id' });
    if (e.from !== policy.peer.force) problems.push({ path: '/envelope/from', message: `must be "${policy.peer.force}", the force of the peer whose credential sent it` });
    let me: string | undefined;
    try {
      me = this.forceId();
    } catch {
      /* reported below */
    }
    if (me === undefined || e.to !== me) problems.push({ path: '/envelope/to', message: `is addressed to another gateway (this is "${me ?? 'unconfigured'}")` });
    const issued = typeof e.issuedAt === 'string' ? Date.parse(e.issuedAt) : NaN;
    const expires = typeof e.expiresAt === 'string' ? Date.parse(e.expiresAt) : NaN;
    if (!Number.isFinite(issued) || issued > now + CLOCK_SKEW_MS || issued < now - FRESHNESS_MS) problems.push({ path: '/envelope/issuedAt', message: 'is not fresh (stale, in the future, or missing)' });
    if (!Number.isFinite(expires) || expires <= now) problems.push({ path: '/envelope/expiresAt', message: 'has passed' });
    if (e.type === 'hits' && (typeof e.inReplyTo !== 'string' || !ENVELOPE_ID.test(e.inReplyTo))) problems.push({ path: '/envelope/inReplyTo', message: 'must name the dossier envelope the hits answer' });
    if (e.type === 'recall' && (typeof e.inReplyTo !== 'string' || !ENVELOPE_ID.test(e.inReplyTo))) problems.push({ path: '/envelope/inReplyTo', message: 'must name the dossier envelope recalled' });
    if (problems.length) throw new GatewayError('envelope_invalid', 'The envelope is not addressed to this gateway, not fresh, or malformed; nothing was stored', problems);
    return e as unknown as EnvelopeHeader;
  }

  private async receiveDossier(clientId: string, peerId: string, policy: PeerPolicy, header: EnvelopeHeader, body: unknown) {
    const seen = this.seenKey(peerId, header.id);
    const prior = await this.deps.redis.get(seen);
    if (prior) return { type: 'dossier', envelope: header.id, id: prior, replayed: true };
    const dossier = validateDossier(body);
    if (dossier.originator.force !== header.from) {
      throw new GatewayError('envelope_invalid', 'The dossier was not originated by the force that sent it; nothing was stored', [
        { path: '/dossier/originator/force', message: `must be "${header.from}"` },
      ]);
    }
    if (!this.deps.enqueueDossier) throw new GatewayError('internal', 'inbound exchange needs the api role');
    const set = this.deps.live().set;
    const id = newDossierId();
    // First writer wins: a concurrent or later copy of this envelope gets this dossier's id.
    if ((await this.deps.redis.set(seen, id, 'EX', REPLAY_RECORD_TTL_SECONDS, 'NX')) === null) {
      return { type: 'dossier', envelope: header.id, id: (await this.deps.redis.get(seen)) ?? '', replayed: true };
    }
    const record: DossierRecord = {
      id,
      source: `${PEER_SOURCE_PREFIX}${peerId}`,
      client: clientId,
      receivedAt: new Date().toISOString(),
      state: 'accepted',
      revision: set.revision,
      partners: [...set.partners.keys()].sort(),
    };
    try {
      await this.deps.store.create(record, seal(this.sealKey, JSON.stringify(dossier), id));
      // Hits on this dossier are relayed back, and a recall of its envelope finds it, for as long as it is kept (its packets extend it).
      const inbound = this.inboundKey(peerId, header.id);
      await this.keepWithStatus(this.deps.redis.multi().hset(this.originKey(id), { peer: peerId, envelopeId: header.id }).set(inbound, id), id, this.originKey(id), inbound).exec();
      await this.deps.audit.append({
        kind: 'collection',
        action: 'exchange.dossier_received',
        actor: clientId,
        dossier: id,
        packet: header.id,
        source: record.source,
        policyRevision: record.revision,
        agreement: agreementOf(policy),
        classification: dossier.classification,
        subjects: dossier.subjects.length,
        justification: { agreement: policy.agreement.reference, agreementPurpose: policy.agreement.purpose, dossierPurpose: `sealed with dossier ${id}` },
        index: this.deps.audit.terms(record.source, dossier.reference, dossier.subjects.map((s) => s.id)),
      });
      await this.deps.retention?.schedule(dossierDueMember(id), new Date(Date.parse(record.receivedAt) + STATUS_RETENTION_MS));
      await this.deps.enqueueDossier(id);
    } catch (err) {
      await this.deps.store.discard(id).catch(() => undefined);
      await this.deps.redis.del(seen, this.originKey(id), this.inboundKey(peerId, header.id), this.deps.keys.dossierCompanions(id)).catch(() => undefined);
      if (err instanceof GatewayError) throw err;
      throw new GatewayError('store_unavailable', 'The envelope could not be stored; nothing was kept, try again', undefined, { cause: err });
    }
    return { type: 'dossier', envelope: header.id, id, replayed: false };
  }

  /**
   * A peer recalls a dossier it sent here: the dossier made from its envelope `inReplyTo` is recalled
   * here as `peer:<id>` (its partners get recall notices, unretrieved packets are erased: gateway/recall).
   * Only the peer that sent that envelope may (another: `403 envelope_wrong_peer`); an envelope this
   * gateway made no dossier from (or one erased since) is `404 envelope_unknown`; either way nothing
   * changes. A replay answers `200` with the same dossier and does nothing again; a recall arriving
   * while the dossier is still being fanned out is `409 dossier_not_settled` (the sender retries).
   */
  private async receiveRecall(clientId: string, peerId: string, policy: PeerPolicy, header: EnvelopeHeader, doc: Record<string, unknown>) {
    const request = parseRecallEnvelope(doc);
    const inReplyTo = header.inReplyTo!;
    const dossierId = await this.inboundDossier(peerId, inReplyTo);
    const record = dossierId ? await this.deps.store.get(dossierId) : undefined;
    if (!dossierId || !record || record.source !== `${PEER_SOURCE_PREFIX}${peerId}`) {
      const others = [...this.deps.peers.view().policies.keys()].filter((p) => p !== peerId);
      for (const other of others) {
        if (await this.inboundDossier(other, inReplyTo)) {
          throw new GatewayError('envelope_wrong_peer', `Envelope ${inReplyTo} was not received from peer ${peerId}: only the peer that sent a dossier can recall it; nothing was changed`, [
            { path: '/envelope/inReplyTo', message: 'names a dossier another peer sent' },
          ]);
        }
      }
      throw new GatewayError('envelope_unknown', `No dossier received from peer ${peerId} was made from envelope ${inReplyTo} (never received, or erased since); nothing was changed`, [
        { path: '/envelope/inReplyTo', message: 'is not a dossier envelope received from this peer' },
      ]);
    }
    if (!this.deps.recall) throw new GatewayError('internal', 'inbound exchange needs the api role');
    if (record.state === 'accepted') {
      throw new GatewayError('dossier_not_settled', 'The dossier is still being delivered here; the recall is taken once every delivery has settled (retry in a few seconds); nothing was changed');
    }
    if (isRecalled(record.state) && record.state !== request.reason) {
      throw new GatewayError('dossier_recalled', `The dossier was already recalled here as "${record.state}"; nothing was changed`, [{ path: '/recall/reason', message: `already recalled as "${record.state}"` }]);
    }
    const seen = this.seenKey(peerId, header.id);
    const claimed = (await this.deps.redis.set(seen, dossierId, 'EX', REPLAY_RECORD_TTL_SECONDS, 'NX')) !== null;
    if (!claimed && (await this.deps.redis.get(seen)) !== dossierId) {
      throw new GatewayError('envelope_invalid', 'This envelope id was already used for another envelope; nothing was changed', [{ path: '/envelope/id', message: 'was already used' }]);
    }
    // Recalled already and every partner reached: the same answer, nothing done again. A recall cut
    // short (a partner without its notice) is completed below: every step of it is idempotent.
    if (record.state === request.reason && (await this.recallComplete(dossierId, record))) {
      return { type: 'recall', envelope: header.id, id: dossierId, state: record.state, replayed: true };
    }
    try {
      await this.deps.audit.append({
        kind: 'alteration',
        action: 'exchange.recall_received',
        actor: clientId,
        dossier: dossierId,
        packet: header.id,
        inReplyTo,
        source: record.source,
        via: policy.peer.force,
        agreement: agreementOf(policy),
        reason: request.reason,
        issuedAt: request.issuedAt,
      });
      const result = await this.deps.recall(dossierId, record.source, request.reason);
      return { type: 'recall', envelope: header.id, id: dossierId, state: result.state, replayed: false };
    } catch (err) {
      if (claimed) await this.deps.redis.del(seen).catch(() => undefined);
      throw err;
    }
  }

  /** The dossier this gateway made from `peer`'s dossier envelope `envelopeId`, checked against its origin record. */
  private async inboundDossier(peer: string, envelopeId: string): Promise<string | undefined> {
    // Dossiers received before the inbound map existed are found by their replay record while it lasts.
    const id = (await this.deps.redis.get(this.inboundKey(peer, envelopeId))) ?? (await this.deps.redis.get(this.seenKey(peer, envelopeId)));
    if (!id || !/^dos_[0-9a-f]{32}$/.test(id)) return undefined;
    const origin = await this.deps.redis.hgetall(this.originKey(id));
    return origin.peer === peer && origin.envelopeId === envelopeId ? id : undefined;
  }

  /** Whether a recall here reached every partner sent a packet (a notice, or why none could be sent). */
  private async recallComplete(dossierId: string, record: DossierRecord): Promise<boolean> {
    const deliveries = await this.deps.store.deliveries(dossierId);
    return record.partners.every((p) => !deliveries[p]?.packetId || record.recall?.notices[p] !== undefined);
  }

  private async receiveHits(clientId: string, peerId: string, policy: PeerPolicy, header: EnvelopeHeader, raw: unknown) {
    const env = await this.deps.redis.hgetall(this.envKey(header.inReplyTo!));
    if (!env.dossier || env.peer !== peerId || !env.refs) throw new GatewayError('not_found', 'No dossier envelope of this gateway to that peer has this id');
    await this.refuseRecalled(clientId, peerId, policy, header, env);
    const list = Array.isArray(raw) ? (raw as Array<Record<string, unknown>>) : [];
    // The hits' content is checked against the hits schema, like a partner's.
    const checked = validateHits({
      schema: 'cordon.hits/v1',
      packet: header.inReplyTo,
      hits: list.map((h) => pick(h ?? {}, ['subject', 'kind', 'detail', 'matchedOn', 'confidence', 'partnerRecordRef'])),
    });
    const refs = JSON.parse(unseal(this.sealKey, env.refs, `${header.inReplyTo}:refs`).toString('utf8')) as Record<string, string>;
    const problems: ErrorDetail[] = [];
    const hits: StoredHit[] = checked.hits.map((h, i) => {
      const subject = Object.hasOwn(refs, h.subject) ? refs[h.subject]! : '';
      if (!subject) problems.push({ path: `/hits/${i}/subject`, message: 'is not a subject ref of that envelope' });
      const src = list[i]!;
      const partner = typeof src.partner === 'string' && /^[a-z0-9][a-z0-9-]{0,63}$/.test(src.partner) ? src.partner : 'unknown';
      const reference = typeof (src.agreement as { reference?: unknown })?.reference === 'string' ? String((src.agreement as { reference: string }).reference).slice(0, 100) : 'unknown';
      const receivedAt = typeof src.receivedAt === 'string' && Number.isFinite(Date.parse(src.receivedAt)) ? src.receivedAt : new Date().toISOString();
      return {
        id: hmacId(this.hitIdKey, 'peer', peerId, String(src.id ?? i)),
        subject,
        partner,
        packet: header.inReplyTo!,
        kind: h.kind,
        detail: h.detail,
        matchedOn: h.matchedOn,
        confidence: h.confidence,
        ...(h.partnerRecordRef !== undefined ? { partnerRecordRef: h.partnerRecordRef } : {}),
        receivedAt,
        agreement: { reference },
        via: policy.peer.force,
      };
    });
    if (problems.length) throw new GatewayError('unknown_subject_ref', 'Some hits name subjects that were not in the envelope; nothing was stored', problems.slice(0, 50));
    const seen = this.seenKey(peerId, header.id);
    if ((await this.deps.redis.set(seen, env.dossier, 'EX', REPLAY_RECORD_TTL_SECONDS, 'NX')) === null) {
      return { type: 'hits', envelope: header.id, accepted: 0, duplicates: hits.length, replayed: true };
    }
    const held = await this.deps.hitStore.existing(env.dossier, hits.map((h) => h.id));
    const fresh = hits.filter((h) => !held.has(h.id));
    try {
      await this.deps.audit.append({
        kind: 'combination',
        action: 'exchange.hits_received',
        actor: clientId,
        dossier: env.dossier,
        packet: header.id,
        recipient: env.source,
        source: `peer:${peerId}`,
        agreement: agreementOf(policy),
        count: fresh.length,
        duplicates: hits.length - fresh.length,
        kinds: [...new Set(fresh.map((h) => h.kind))].sort(),
        partners: [...new Set(fresh.map((h) => h.partner))].sort(),
      });
      const { added } = fresh.length
        ? await this.deps.hitStore.add(env.dossier, env.source ?? '', fresh, [], { refuseRecalled: true }).catch(async (err: unknown) => {
            // Recalled between the check above and now: the log says nothing was kept after all.
            if (err instanceof GatewayError && err.code === 'dossier_recalled') await this.auditRefusal(clientId, peerId, policy, header, env, 'recalled while the hits were being stored');
            throw err;
          })
        : { added: 0 };
      return { type: 'hits', envelope: header.id, accepted: added, duplicates: hits.length - added, replayed: false };
    } catch (err) {
      await this.deps.redis.del(seen).catch(() => undefined);
      throw err;
    }
  }

  /**
   * A dossier its source has recalled (withdrawn or corrected) takes no more hits, relayed or not:
   * like a partner's (hits/hits.ts), a peer's are refused with `dossier_recalled` before they are read,
   * nothing is stored (no replay record either, so a resend is refused the same way), and the refusal is
   * audited as `hits.refused` (and as `exchange.rejected`, like every envelope refused). The sending
   * gateway dead-letters the relay on the 409 and audits that (`exchange.hits_failed`).
   */
  private async refuseRecalled(clientId: string, peerId: string, policy: PeerPolicy, header: EnvelopeHeader, env: Record<string, string>): Promise<void> {
    const record = await this.deps.store.get(env.dossier!);
    if (!record || !isRecalled(record.state)) return;
    await this.auditRefusal(clientId, peerId, policy, header, env, 'refused before reading the hits');
    const when = record.recall?.at ? ` at ${record.recall.at}` : '';
    throw new GatewayError(
      'dossier_recalled',
      `The dossier that envelope ${header.inReplyTo} carried was recalled ("${record.state}") by its originator${when}: hits can no longer be relayed onto it; nothing was stored`,
      [{ path: '/envelope/inReplyTo', message: 'the dossier was recalled', reason: record.state, ...(record.recall?.at ? { recalledAt: record.recall.at } : {}) }],
    );
  }

  private async auditRefusal(clientId: string, peerId: string, policy: PeerPolicy, header: EnvelopeHeader, env: Record<string, string>, note: string): Promise<void> {
    await this.deps.audit
      .append({
        kind: 'rejection',
        action: 'hits.refused',
        actor: clientId,
        source: `peer:${peerId}`,
        via: policy.peer.force,
        packet: header.inReplyTo,
        envelope: header.id,
        dossier: env.dossier,
        recipient: env.source,
        reason: 'dossier_recalled',
        note,
      })
      .catch(() => undefined); // the refusal stands whether or not it could be logged
  }
}

/**
 * The body of a recall envelope: `{"recall": {"reason": "withdrawn"|"corrected", "issuedAt": <date-time>}}`
 * and nothing else (codes and times only: a note, or anything else, is refused).
 */
function parseRecallEnvelope(doc: Record<string, unknown>): { reason: RecallReason; issuedAt: string } {
  const problems: ErrorDetail[] = [];
  for (const k of Object.keys(doc)) if (k !== 'envelope' && k !== 'recall') problems.push({ path: `/${k}`, message: 'is not allowed in a recall envelope' });
  const r = doc.recall;
  if (!r || typeof r !== 'object' || Array.isArray(r)) {
    problems.push({ path: '/recall', message: 'must be an object {reason, issuedAt}' });
    throw new GatewayError('schema_violation', 'The recall envelope is not valid; nothing was changed', problems);
  }
  const o = r as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'reason' && k !== 'issuedAt') problems.push({ path: `/recall/${k}`, message: 'is not allowed (a recall envelope carries a reason code and a time only)' });
  if (!RECALL_REASONS.includes(o.reason as RecallReason)) problems.push({ path: '/recall/reason', message: `must be one of ${RECALL_REASONS.join(', ')}` });
  const issuedAt = typeof o.issuedAt === 'string' && o.issuedAt.length <= 40 ? Date.parse(o.issuedAt) : NaN;
  if (!Number.isFinite(issuedAt)) problems.push({ path: '/recall/issuedAt', message: 'must be a date-time' });
  if (problems.length) throw new GatewayError('schema_violation', 'The recall envelope is not valid; nothing was changed', problems);
  return { reason: o.reason as RecallReason, issuedAt: o.issuedAt as string };
}

function agreementOf(policy: PeerPolicy) {
  return { reference: policy.agreement.reference, legalBasis: policy.agreement.legalBasis, purpose: policy.agreement.purpose };
}

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));
}

function omit(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([k]) => !keys.includes(k)));
}

/** A delivery without the last attempt's reason and message (a new state says its own). */
function omitDelivery(d: PeerDelivery): PeerDelivery {
  const { reason: _reason, message: _message, ...rest } = d;
  return rest;
}

/** A peer's 4xx refusal of an envelope, with its error code: not retried. */
export class PeerRefusal extends PermanentExchangeError {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}
