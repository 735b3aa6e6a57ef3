/**
 * The exchange's records in Redis, behind one typed interface: a dossier's peer deliveries
 * (`exchange:out:<dossier>`), its envelopes (`exchange:env:<envelope>`: the sealed body until sent,
 * the sealed ref map, the recall mark), the origin of a dossier received from a peer
 * (`exchange:origin:<dossier>`), the inbound envelope → dossier map (`exchange:in:<peer>:<envelope>`)
 * and the inbound replay records (`exchange:seen:<peer>:<envelope>`).
 *
 * The records of a dossier live exactly as long as its status record (KEEP_WITH_STATUS); the replay
 * records, REPLAY_RECORD_TTL_SECONDS.
 */
import type { ChainableCommander, Redis } from 'ioredis';
import { IDEMPOTENCY_TTL_SECONDS, RECORD_TTL_SECONDS } from './dossiers.js';
import type { Keys } from './redis.js';

/**
 * How long the inbound replay record (`exchange:seen:<peer>:<envelope id>` → the dossier it made) is
 * kept. Freshness is checked before the record is read (the envelope header check: issued within
 * FRESHNESS_MS, at most CLOCK_SKEW_MS ahead, not expired), so an envelope captured and replayed as it is
 * gets refused as stale after FRESHNESS_MS + CLOCK_SKEW_MS whatever this record says: for that alone,
 * the window and a margin would do. But the sending gateway seals every retry of an envelope anew, with
 * a fresh `issuedAt` and the same id (derived from dossier and peer, so that a retry never makes a
 * second dossier): a retry whose first attempt was stored here but whose answer was lost passes the
 * freshness check, and only this record makes it answer with the first dossier. So it must also outlast
 * the sender's retries: the default schedule (CORDON_EXCHANGE_ATTEMPTS 8 from CORDON_EXCHANGE_BACKOFF_MS
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
  /** After-match agreements: the match envelope sent first (kept while follow-ups replace `envelopeId`). */
  matchEnvelopeId?: string;
  updatedAt: string;
}

/** What an envelope record holds under `recall` once the source has recalled the dossier. */
export interface RecallMarkOnEnvelope {
  reason: string;
  issuedAt: string;
}

/** An outbound envelope record: the sealed body (until sent) and ref map, and whose it is. */
export interface EnvelopeRecord {
  dossier?: string;
  peer?: string;
  source?: string;
  sealed?: string;
  refs?: string;
  /** JSON RecallMarkOnEnvelope, once recalled. */
  recall?: string;
  /** `match` (identifiers only, after-match agreements) or `followup` (the disclosure after a hit); absent: a dossier. */
  kind?: 'match' | 'followup';
  /** A match envelope: the sealed list of the dossier's own ids of the subjects it asked about. */
  asked?: string;
  /** A match envelope: the sealed dossier, kept for the follow-ups until every answer is in and followed up. */
  held?: string;
  /** A match envelope: when it was made (answers are overdue `respondWithinDays` after). */
  askedAt?: string;
}

/** A dossier received from a peer: the peer and the envelope it came in. */
export interface Origin {
  peer?: string;
  envelopeId?: string;
}

export class ExchangeStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  private outKey(dossierId: string) {
    return `${this.keys.prefix}:exchange:out:${dossierId}`;
  }
  private envKey(envelopeId: string) {
    return `${this.keys.prefix}:exchange:env:${envelopeId}`;
  }
  private seenKey(peer: string, envelopeId: string) {
    return `${this.keys.prefix}:exchange:seen:${peer}:${envelopeId}`;
  }
  private originKey(dossierId: string) {
    return `${this.keys.prefix}:exchange:origin:${dossierId}`;
  }
  /** Inbound: the dossier this gateway made from a peer's dossier envelope (kept with its status record). */
  private inboundKey(peer: string, envelopeId: string) {
    return `${this.keys.prefix}:exchange:in:${peer}:${envelopeId}`;
  }

  /**
   * Queues, in `multi` after the writes, what makes these exchange records of a dossier live exactly as
   * long as its status record (see KEEP_WITH_STATUS); atomic with the writes, so no record is ever left
   * without an expiry.
   */
  private keepWithStatus<M extends ChainableCommander>(multi: M, dossierId: string, ...records: string[]): M {
    multi.eval(KEEP_WITH_STATUS, 2 + records.length, this.keys.dossier(dossierId), this.keys.dossierCompanions(dossierId), ...records, String(Date.now() + RECORD_TTL_SECONDS * 1000));
    return multi;
  }

  // ---- peer deliveries -------------------------------------------------------------------------

  /** Every peer delivery of a dossier, by peer. */
  async deliveries(dossierId: string): Promise<Record<string, PeerDelivery>> {
    const h = await this.redis.hgetall(this.outKey(dossierId));
    return Object.fromEntries(Object.entries(h).map(([peer, v]) => [peer, JSON.parse(v) as PeerDelivery]));
  }

  async delivery(dossierId: string, peer: string): Promise<PeerDelivery | undefined> {
    const v = await this.redis.hget(this.outKey(dossierId), peer);
    return v ? (JSON.parse(v) as PeerDelivery) : undefined;
  }

  async setDelivery(dossierId: string, peer: string, d: PeerDelivery): Promise<void> {
    const multi = this.redis.multi().hset(this.outKey(dossierId), peer, JSON.stringify(d));
    await this.keepWithStatus(multi, dossierId, this.outKey(dossierId)).exec();
  }

  /** Writes the delivery only over one in a state of `from` (see REPLACE_DELIVERY); true when written. */
  async replaceDelivery(dossierId: string, peer: string, d: PeerDelivery, from: PeerDeliveryState[]): Promise<boolean> {
    const multi = this.redis.multi().eval(REPLACE_DELIVERY, 1, this.outKey(dossierId), peer, JSON.stringify(d), ...from);
    const results = (await this.keepWithStatus(multi, dossierId, this.outKey(dossierId)).exec()) ?? [];
    const failed = results.find(([err]) => err);
    if (failed) throw failed[0]!;
    return results[0]?.[1] === 1;
  }

  // ---- outbound envelopes ----------------------------------------------------------------------

  async envelope(envelopeId: string): Promise<EnvelopeRecord> {
    return (await this.redis.hgetall(this.envKey(envelopeId))) as EnvelopeRecord;
  }

  /**
   * Keeps a prepared envelope: its sealed body and ref map (never overwritten: a retried preparation
   * keeps the first), and whose it is. The refs map the peer's hits back for as long as the dossier
   * (and its hits) are kept.
   */
  async putEnvelope(
    envelopeId: string,
    e: { dossier: string; peer: string; source: string; sealed: string; refs: string; kind?: 'match' | 'followup'; asked?: string; held?: string; askedAt?: string },
  ): Promise<void> {
    const envKey = this.envKey(envelopeId);
    const multi = this.redis.multi().hsetnx(envKey, 'sealed', e.sealed).hsetnx(envKey, 'refs', e.refs);
    if (e.asked !== undefined) multi.hsetnx(envKey, 'asked', e.asked);
    if (e.held !== undefined) multi.hsetnx(envKey, 'held', e.held);
    if (e.askedAt !== undefined) multi.hsetnx(envKey, 'askedAt', e.askedAt);
    multi.hset(envKey, { dossier: e.dossier, peer: e.peer, source: e.source, ...(e.kind ? { kind: e.kind } : {}) });
    await this.keepWithStatus(multi, e.dossier, envKey).exec();
  }

  /** A match envelope's copy of the dossier goes once nothing more can follow from it; true when it was held. */
  async dropHeld(envelopeId: string): Promise<boolean> {
    return (await this.redis.hdel(this.envKey(envelopeId), 'held')) === 1;
  }

  /** The sealed body goes once sent, cancelled or dead-lettered (the refs stay). */
  async dropSealedBody(envelopeId: string): Promise<void> {
    await this.redis.hdel(this.envKey(envelopeId), 'sealed');
  }

  /** Marks a dossier envelope recalled (the first mark stays). */
  async markRecalled(dossierId: string, envelopeId: string, mark: RecallMarkOnEnvelope): Promise<void> {
    const envKey = this.envKey(envelopeId);
    await this.keepWithStatus(this.redis.multi().hsetnx(envKey, 'recall', JSON.stringify(mark)), dossierId, envKey).exec();
  }

  async recallMark(envelopeId: string): Promise<RecallMarkOnEnvelope | undefined> {
    const v = await this.redis.hget(this.envKey(envelopeId), 'recall');
    return v ? (JSON.parse(v) as RecallMarkOnEnvelope) : undefined;
  }

  // ---- dossiers received from peers ------------------------------------------------------------

  async origin(dossierId: string): Promise<Origin> {
    return (await this.redis.hgetall(this.originKey(dossierId))) as Origin;
  }

  async hasOrigin(dossierId: string): Promise<boolean> {
    return (await this.redis.exists(this.originKey(dossierId))) === 1;
  }

  /**
   * Records where a dossier received from a peer came from: hits on it are relayed back, and a recall
   * of its envelope finds it, for as long as it is kept (its packets extend it).
   */
  async recordOrigin(dossierId: string, peer: string, envelopeId: string): Promise<void> {
    const inbound = this.inboundKey(peer, envelopeId);
    await this.keepWithStatus(this.redis.multi().hset(this.originKey(dossierId), { peer, envelopeId }).set(inbound, dossierId), dossierId, this.originKey(dossierId), inbound).exec();
  }

  /** Undoes an inbound dossier that could not be accepted whole (its replay record, origin and map). */
  async discardInbound(dossierId: string, peer: string, envelopeId: string): Promise<void> {
    await this.redis.del(this.seenKey(peer, envelopeId), this.originKey(dossierId), this.inboundKey(peer, envelopeId), this.keys.dossierCompanions(dossierId));
  }

  /**
   * The dossier made from `peer`'s envelope `envelopeId`: the inbound map, or for dossiers received
   * before the map existed, the replay record while it lasts.
   */
  async inboundDossier(peer: string, envelopeId: string): Promise<string | undefined> {
    return (await this.redis.get(this.inboundKey(peer, envelopeId))) ?? (await this.redis.get(this.seenKey(peer, envelopeId))) ?? undefined;
  }

  // ---- replay records --------------------------------------------------------------------------

  /** What the envelope `envelopeId` from `peer` was taken as (a dossier id), if it was. */
  async seen(peer: string, envelopeId: string): Promise<string | undefined> {
    return (await this.redis.get(this.seenKey(peer, envelopeId))) ?? undefined;
  }

  /** Claims the envelope for `value` (first writer wins); false when it was claimed already. */
  async claimSeen(peer: string, envelopeId: string, value: string): Promise<boolean> {
    return (await this.redis.set(this.seenKey(peer, envelopeId), value, 'EX', REPLAY_RECORD_TTL_SECONDS, 'NX')) !== null;
  }

  async forgetSeen(peer: string, envelopeId: string): Promise<void> {
    await this.redis.del(this.seenKey(peer, envelopeId));
  }
}
