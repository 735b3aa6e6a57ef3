/**
 * Dossier records: who sent it, its state, one delivery per partner, and the sealed dossier until
 * every delivery is settled. The dossier itself is only ever stored sealed (AES-GCM, see crypto/seal).
 */
import type { Redis } from 'ioredis';
import { GatewayError } from '../errors/index.js';
import { AuthenticatedRecords, type RecordAuth, type VerifiedRecord } from './records.js';
import type { Keys } from './redis.js';
import { confirmWrites } from './replication.js';
import { evalScript, loadScript } from './scripts.js';

/** `withdrawn` and `corrected`: recalled by the source (gateway/recall). */
export type DossierState = 'accepted' | 'processed' | 'failed' | 'withdrawn' | 'corrected';
/** `not_requested` and `deferred`: the partner is sent nothing (policy/recipients.ts says why). */
export type DeliveryState = 'queued' | 'delivered' | 'retrieved' | 'acknowledged' | 'blocked' | 'expired' | 'not_requested' | 'deferred';

export interface Delivery {
  state: DeliveryState;
  reason?: string;
  message?: string;
  /** The packet the state is of: the latest made for this partner (a follow-up after a match request). */
  packetId?: string;
  expiresAt?: string;
  /** Deferred: when the force reviews the deferral. */
  reviewBy?: string;
  updatedAt: string;
  /** After-match agreements: the match request this partner was sent first (policy/match.ts). */
  matchPacketId?: string;
}

/** Why a recipient receives a dossier (policy/recipients.ts `Why`, restated: store/ imports no policy). */
export interface RecipientWhy {
  requested?: { checks: string[]; kinds: string[] };
  statutory?: { name: string; reason: string; subjects: number };
}

/** The states of a dossier its source has recalled (gateway/recall). */
const RECALLED_STATES: readonly DossierState[] = ['withdrawn', 'corrected'];

export function isRecalled(state: DossierState): boolean {
  return RECALLED_STATES.includes(state);
}

/** What a recall leaves on the dossier's record: codes, times and ids only (the note is never stored). */
export interface RecallMark {
  reason: string;
  /** When the recall was issued (ISO 8601). */
  at: string;
  /** The client that recalled it. */
  by: string;
  /** Per partner sent a packet: the recall notice put in its mailbox, or why none could be. */
  notices: Record<string, RecallNoticeOutcome>;
}

export interface RecallNoticeOutcome {
  notice?: string;
  problem?: string;
}

/** The state of a recall notice in a partner's mailbox; absent when it has been erased. */
export interface NoticeState {
  state: string;
  retrievedAt?: string;
  acknowledgedAt?: string;
  expiresAt?: string;
}

export interface DossierRecord {
  id: string;
  source: string;
  client: string;
  receivedAt: string;
  state: DossierState;
  revision: string;
  /** The recipients chosen for this dossier (policy/recipients.ts): the fan-out delivers to these only. */
  partners: string[];
  /** Partners sent nothing: their delivery is stored with this state and reason. */
  notSent?: Array<{ partner: string; state: 'not_requested' | 'deferred'; reason: string; reviewBy?: string }>;
  /** Per recipient, the hit kinds it may report for this dossier; absent on records made before the choice. */
  kinds?: Record<string, string[]>;
  /** Per recipient, why it receives the dossier (requested checks, statutory condition). */
  why?: Record<string, RecipientWhy>;
  failure?: string;
  /** Set once the source has recalled the dossier. */
  recall?: RecallMark;
}

const NOTICE_FIELD = 'notice:';

const CREATE = loadScript('dossier-create');
const SETTLE = loadScript('dossier-settle');

/** How long a dossier's status record and idempotency key outlive it (longer than any job retention). */
export const RECORD_TTL_SECONDS = 400 * 24 * 3600;
export const IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600;
/**
 * How long a dossier stored `pending` (accepted, not yet audited and scheduled) and its idempotency key
 * live unless settled: should a fail-over keep it but not the rest, both expire, and the sender's retry
 * with the same key (answered 503 "still being stored" until then) stores it afresh.
 */
export const PENDING_TTL_SECONDS = 20;

/**
 * The record's metadata (everything but the sealed dossier and `pending`) is authenticated with its id
 * and version (store/record-mac.ts): a record changed, or restored from an older copy, behind the
 * gateway's back is refused with `record_tampered`.
 */
export class DossierStore {
  private readonly records: AuthenticatedRecords;
  /** What each record get() returned was read from: a later change tries that version first. */
  private readonly readFrom = new WeakMap<DossierRecord, VerifiedRecord>();

  constructor(private readonly redis: Redis, private readonly keys: Keys, auth: RecordAuth) {
    this.records = new AuthenticatedRecords(redis, keys, auth);
  }

  /** The authenticated records (dossiers and packets) this store reads and writes through. */
  get authenticated(): AuthenticatedRecords {
    return this.records;
  }

  /**
   * Stores a new dossier and its idempotency record atomically (one script: see dossier-create.lua). Returns the id of an earlier dossier
   * when the idempotency key was already used (with the body hash it was used for), else undefined.
   */
  async create(
    record: DossierRecord,
    sealed: string | Buffer,
    idem?: { clientId: string; keyHash: string; bodyHash: string },
    options: { pending?: boolean } = {},
  ): Promise<{ existing?: { dossierId: string; bodyHash: string } }> {
    const now = record.receivedAt;
    const fields = Object.entries({ ...this.records.sealNew('dossier', record.id, toHash(record)), sealed, ...(options.pending ? { pending: '1' } : {}) }).flat();
    const deliveries = record.partners.flatMap((p) => [p, JSON.stringify({ state: 'queued', updatedAt: now } satisfies Delivery)]);
    for (const n of record.notSent ?? []) {
      const d: Delivery = { state: n.state, reason: n.reason, ...(n.reviewBy ? { reviewBy: n.reviewBy } : {}), updatedAt: now };
      deliveries.push(n.partner, JSON.stringify(d));
    }
    const keys = [this.keys.dossier(record.id), this.keys.deliveries(record.id), this.keys.recordVersion('dossier', record.id)];
    if (idem) keys.push(this.keys.idempotency(idem.clientId, idem.keyHash));
    const value = idem ? JSON.stringify({ dossierId: record.id, bodyHash: idem.bodyHash }) : '';
    const prior = (await evalScript(
      this.redis,
      CREATE,
      keys.length,
      ...keys,
      String(options.pending ? PENDING_TTL_SECONDS : RECORD_TTL_SECONDS),
      value,
      String(options.pending ? PENDING_TTL_SECONDS : IDEMPOTENCY_TTL_SECONDS),
      String(fields.length / 2),
      ...fields,
      ...deliveries,
    )) as string;
    return prior ? { existing: JSON.parse(prior) as { dossierId: string; bodyHash: string } } : {};
  }

  /**
   * Keeps a dossier stored `pending`: from now on it is visible, and it and its idempotency key live
   * their full lifetimes. Throws `store_unavailable` when the pending record has expired meanwhile.
   */
  async settle(id: string, idem?: { clientId: string; keyHash: string; bodyHash: string }): Promise<void> {
    const keys = [this.keys.dossier(id), this.keys.deliveries(id), this.keys.recordVersion('dossier', id)];
    if (idem) keys.push(this.keys.idempotency(idem.clientId, idem.keyHash));
    const value = idem ? JSON.stringify({ dossierId: id, bodyHash: idem.bodyHash }) : '';
    const kept = await evalScript(this.redis, SETTLE, keys.length, ...keys, String(RECORD_TTL_SECONDS), String(IDEMPOTENCY_TTL_SECONDS), value);
    if (kept !== 1) throw new GatewayError('store_unavailable', 'The dossier took too long to store; nothing was kept, try again');
  }

  /**
   * Makes everything written so far durable before the dossier is acknowledged: with replicas, waits
   * until one holds it (store/replication.ts), else `store_unavailable`; a no-op on a standalone Redis.
   */
  async confirm(): Promise<void> {
    await confirmWrites(this.redis);
  }

  /** Undo of create() when the job could not be queued: nothing accepted stays half-stored. */
  async discard(id: string, idem?: { clientId: string; keyHash: string }): Promise<void> {
    const multi = this.redis.multi().del(this.keys.dossier(id)).del(this.keys.deliveries(id)).del(this.keys.recordVersion('dossier', id));
    if (idem) multi.del(this.keys.idempotency(idem.clientId, idem.keyHash));
    await multi.exec();
  }

  /** The record, checked (`record_tampered` when it fails); undefined when gone or still pending. */
  async get(id: string): Promise<DossierRecord | undefined> {
    return this.toRecord(await this.records.read('dossier', id));
  }

  /**
   * What the fan-out starts from, in one read: the record (as get()), the sealed dossier and the
   * deliveries. Undefined when the record is gone or still pending.
   */
  async open(id: string): Promise<{ record: DossierRecord; sealed?: Buffer; deliveries: Record<string, Delivery> } | undefined> {
    const read = await this.records.read('dossier', id, true, this.keys.deliveries(id));
    const record = this.toRecord(read);
    if (!record) return undefined;
    const sealed = read?.bytes?.sealed;
    return { record, ...(sealed ? { sealed } : {}), deliveries: parseDeliveries(read?.alongside ?? {}) };
  }

  private toRecord(read: VerifiedRecord | undefined): DossierRecord | undefined {
    const h = read?.fields;
    if (!read || !h?.id || h.pending) return undefined; // pending: not accepted (yet)
    const record: DossierRecord = {
      id: h.id,
      source: h.source ?? '',
      client: h.client ?? '',
      receivedAt: h.receivedAt ?? '',
      state: (h.state ?? 'accepted') as DossierState,
      revision: h.revision ?? '',
      partners: JSON.parse(h.partners ?? '[]') as string[],
      ...(h.notSent ? { notSent: JSON.parse(h.notSent) as NonNullable<DossierRecord['notSent']> } : {}),
      ...(h.kinds ? { kinds: JSON.parse(h.kinds) as Record<string, string[]> } : {}),
      ...(h.why ? { why: JSON.parse(h.why) as Record<string, RecipientWhy> } : {}),
      ...(h.failure ? { failure: h.failure } : {}),
      ...(h.recall ? { recall: recallMark(h) } : {}),
    };
    this.readFrom.set(record, read);
    return record;
  }

  /**
   * Marks a stored dossier recalled (`withdrawn` or `corrected`); false when its record is gone. A mark
   * already there (the first recall's time and client) is kept.
   */
  async markRecalled(id: string, state: DossierState, mark: { reason: string; at: string; by: string }): Promise<boolean> {
    const recall = JSON.stringify({ reason: mark.reason, at: mark.at, by: mark.by });
    return this.records.update('dossier', id, (h): { set: Record<string, string> } | undefined => {
      if (h.recall === undefined) return { set: { state, recall } };
      return h.state === state ? undefined : { set: { state } };
    });
  }

  /** Records the recall notice a partner got (or why it got none) on a recalled dossier's record. */
  async recordRecallNotice(id: string, partner: string, outcome: RecallNoticeOutcome): Promise<void> {
    const value = JSON.stringify({ ...(outcome.notice ? { notice: outcome.notice } : {}), ...(outcome.problem ? { problem: outcome.problem } : {}) });
    await this.records.update('dossier', id, (h) => (h[NOTICE_FIELD + partner] === value ? undefined : { set: { [NOTICE_FIELD + partner]: value } }));
  }

  /** The current state of recall notices (they live in the partners' mailboxes), by id; erased ones are absent. */
  async noticeStates(ids: string[]): Promise<Map<string, NoticeState>> {
    const out = new Map<string, NoticeState>();
    const rows = await Promise.all(ids.map((id) => this.records.read('packet', id)));
    rows.forEach((row, i) => {
      const { state, retrievedAt, acknowledgedAt, type, expiresAt } = row?.fields ?? {};
      if (!state || type !== 'recall') return;
      out.set(ids[i]!, { state, ...(retrievedAt ? { retrievedAt } : {}), ...(acknowledgedAt ? { acknowledgedAt } : {}), ...(expiresAt ? { expiresAt } : {}) });
    });
    return out;
  }

  /** The sealed dossier as stored: bytes (crypto/seal `sealBytes`, or text from before it; unseal opens both). */
  async getSealed(id: string): Promise<Buffer | undefined> {
    return (await this.redis.hgetBuffer(this.keys.dossier(id), 'sealed')) ?? undefined;
  }

  async deliveries(id: string): Promise<Record<string, Delivery>> {
    return parseDeliveries(await this.redis.hgetall(this.keys.deliveries(id)));
  }

  async setDelivery(id: string, partner: string, delivery: Delivery): Promise<void> {
    await this.redis.hset(this.keys.deliveries(id), partner, JSON.stringify(delivery));
  }

  /**
   * Every delivery settled: the sealed dossier is erased, only the status record remains. `record`: as
   * get() returned it, when the caller has it (its version is tried first). With `keepSealed` (a match
   * request awaits its answers: the follow-up is made from it) the sealed dossier stays until `eraseSealed`.
   * False when the record is gone.
   */
  async markProcessed(id: string, record?: DossierRecord, options: { keepSealed?: boolean } = {}): Promise<boolean> {
    const del = options.keepSealed ? [] : ['sealed'];
    return this.records.update('dossier', id, () => ({ set: { state: 'processed' }, del }), record && this.readFrom.get(record));
  }

  /**
   * Erases the sealed dossier kept for follow-ups; true when there was one to erase. `sealed` is not
   * among the record's authenticated fields (store/record-mac.ts): deleting it leaves the MAC whole.
   */
  async eraseSealed(id: string): Promise<boolean> {
    return (await this.redis.hdel(this.keys.dossier(id), 'sealed')) === 1;
  }

  async markFailed(id: string, failure: string): Promise<void> {
    await this.records.update('dossier', id, () => ({ set: { state: 'failed', failure } }));
  }
}

function parseDeliveries(h: Record<string, string>): Record<string, Delivery> {
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [k, JSON.parse(v) as Delivery]));
}

/** The recall mark of a stored record: `recall` (JSON `{reason, at, by}`) and one `notice:<partner>` field per partner. */
function recallMark(h: Record<string, string>): RecallMark {
  const parsed = parseJson(h.recall) as Partial<RecallMark> | undefined;
  const notices: Record<string, RecallNoticeOutcome> = {};
  for (const [field, value] of Object.entries(h)) {
    if (!field.startsWith(NOTICE_FIELD)) continue;
    const o = parseJson(value) as RecallNoticeOutcome | undefined;
    if (o) notices[field.slice(NOTICE_FIELD.length)] = o;
  }
  return { reason: String(parsed?.reason ?? ''), at: String(parsed?.at ?? ''), by: String(parsed?.by ?? ''), notices };
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function toHash(r: DossierRecord): Record<string, string> {
  return {
    id: r.id,
    source: r.source,
    client: r.client,
    receivedAt: r.receivedAt,
    state: r.state,
    revision: r.revision,
    partners: JSON.stringify(r.partners),
    ...(r.notSent ? { notSent: JSON.stringify(r.notSent) } : {}),
    ...(r.kinds ? { kinds: JSON.stringify(r.kinds) } : {}),
    ...(r.why ? { why: JSON.stringify(r.why) } : {}),
  };
}
