/**
 * Partners' mailboxes in Redis: one hash per packet or recall notice, and per partner a sorted set of
 * all its items and one of those not yet retrieved. A packet is stored at most once per id, filed in the
 * mailbox and the retention schedule and marked on the dossier's delivery in one atomic step
 * (store/scripts/mailbox-create-packet.lua), so a retried or duplicated job can never make a second one.
 * When to erase what is the caller's (mailbox/mailbox.ts, retention/schedule.ts): this module is told.
 */
import type { Redis } from 'ioredis';
import type { Keys } from './redis.js';
import type { Delivery } from './dossiers.js';
import { confirmWrites } from './replication.js';
import { evalScript, loadScript } from './scripts.js';

export interface PacketRecord {
  id: string;
  partner: string;
  dossier: string;
  source: string;
  createdAt: string;
  expiresAt: string;
  state: 'delivered' | 'retrieved' | 'acknowledged';
  /** Armored OpenPGP message (ciphertext). */
  message: string;
  /** Sealed map of packet ref → dossier subject id, for mapping hits back. */
  refs: string;
  /** Sealed list of the dossier subject ids the packet holds (answers are asked for those); older packets lack it. */
  subjects?: string;
  retrievedAt?: string;
  acknowledgedAt?: string;
  /** `recall` for a recall notice (gateway/recall), `match` for a match request, absent for a packet. */
  type?: 'recall' | 'match';
  /** For a recall notice: the packet it recalls. */
  recalls?: string;
}

const SUMMARY_FIELDS = ['id', 'partner', 'dossier', 'source', 'createdAt', 'expiresAt', 'state', 'type', 'recalls'] as const;

/** What a listing needs of a packet: everything but the message and the sealed refs. */
export type PacketSummaryRecord = Omit<PacketRecord, 'message' | 'refs' | 'subjects'>;

const CREATE_PACKET = loadScript('mailbox-create-packet');
const ADVANCE = loadScript('mailbox-advance');
const CREATE_NOTICE = loadScript('recall-create-notice');

/** Where a new packet goes in the retention schedule, and how long the store itself keeps it and its dossier's record. */
export interface PacketRetention {
  /** The packet's schedule member and when it is due (ms). */
  member: string;
  dueMs: number;
  /** Redis's own expiry on the packet (ms): a backstop after `dueMs`. */
  storeExpiryMs: number;
  /** The dossier's schedule member, moved (never earlier) to `statusDueMs`, and its records' store expiry. */
  dossierMember: string;
  statusDueMs: number;
  statusStoreExpiryMs: number;
}

/** A recall notice's place in the schedule and its store expiry. */
export interface NoticeRetention {
  member: string;
  dueMs: number;
  storeExpiryMs: number;
}

export interface MailboxStore {
  /** Stores the packet, files it and sets its delivery; false when it already existed (nothing written). */
  create(packet: PacketRecord, delivery: Delivery, retention: PacketRetention): Promise<boolean>;
  /** Stores a recall notice (no delivery of its own); false when it already existed. */
  createNotice(notice: PacketRecord & { type: 'recall' }, retention: NoticeRetention): Promise<boolean>;
  exists(id: string): Promise<boolean>;
  get(id: string): Promise<PacketRecord | undefined>;
  /** Newest first, or with `pending` the ones not yet retrieved, oldest first; erased ids pruned. */
  list(partner: string, limit?: number, pending?: boolean): Promise<PacketSummaryRecord[]>;
  /** Moves the packet to a later state (never backwards) and, for a packet, mirrors it on the delivery. */
  advance(packet: PacketRecord, state: 'retrieved' | 'acknowledged', at: string): Promise<void>;
}

export class RedisMailbox implements MailboxStore {
  constructor(private readonly redis: Redis, private readonly keys: Keys) {}

  async create(packet: PacketRecord, delivery: Delivery, retention: PacketRetention): Promise<boolean> {
    const fields = Object.entries(packet).flat().map(String);
    const created = (await evalScript(
      this.redis,
      CREATE_PACKET,
      9,
      this.keys.packet(packet.id),
      this.keys.mailbox(packet.partner),
      this.keys.deliveries(packet.dossier),
      this.keys.retentionDue(),
      this.keys.mailboxPending(packet.partner),
      this.keys.dossier(packet.dossier),
      this.keys.hits(packet.dossier),
      this.keys.dossierLinks(packet.dossier),
      this.keys.dossierCompanions(packet.dossier),
      String(fields.length),
      String(retention.storeExpiryMs),
      String(Date.parse(packet.createdAt)),
      packet.id,
      packet.partner,
      JSON.stringify(delivery),
      retention.member,
      String(retention.dueMs),
      retention.dossierMember,
      String(retention.statusDueMs),
      String(retention.statusStoreExpiryMs),
      ...fields,
    )) as number;
    // The delivery is marked delivered only once a replica holds the packet (store/replication.ts).
    await confirmWrites(this.redis);
    return created === 1;
  }

  async createNotice(notice: PacketRecord & { type: 'recall' }, retention: NoticeRetention): Promise<boolean> {
    const created = await evalScript(
      this.redis,
      CREATE_NOTICE,
      4,
      this.keys.packet(notice.id),
      this.keys.mailbox(notice.partner),
      this.keys.retentionDue(),
      this.keys.mailboxPending(notice.partner),
      JSON.stringify(Object.entries(notice).flat()),
      String(Date.parse(notice.createdAt)),
      notice.id,
      String(retention.storeExpiryMs),
      retention.member,
      String(retention.dueMs),
    );
    await confirmWrites(this.redis);
    return created === 1;
  }

  async exists(id: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.packet(id))) === 1;
  }

  async get(id: string): Promise<PacketRecord | undefined> {
    const h = await this.redis.hgetall(this.keys.packet(id));
    return h.id ? (h as unknown as PacketRecord) : undefined;
  }

  /**
   * The partner's packets without their messages: newest first, or with `pending` the ones not yet
   * retrieved, oldest first (so a partner drains a backlog of any size page by page). Ids whose packet
   * has been erased are pruned on the way.
   */
  async list(partner: string, limit = 100, pending = false): Promise<PacketSummaryRecord[]> {
    const index = pending ? this.keys.mailboxPending(partner) : this.keys.mailbox(partner);
    const ids = pending ? await this.redis.zrange(index, '0', String(limit - 1)) : await this.redis.zrevrange(index, 0, limit - 1);
    if (!ids.length) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hmget(this.keys.packet(id), ...SUMMARY_FIELDS);
    const rows = (await pipeline.exec()) ?? [];
    const out: PacketSummaryRecord[] = [];
    const gone: string[] = [];
    rows.forEach(([err, values], i) => {
      const v = values as Array<string | null> | null;
      if (err || !v || !v[0]) {
        gone.push(ids[i]!);
        return;
      }
      const rec = Object.fromEntries(SUMMARY_FIELDS.map((f, j) => [f, v[j]]).filter(([, x]) => x !== null && x !== undefined));
      out.push(rec as unknown as PacketSummaryRecord);
    });
    if (gone.length) await this.redis.multi().zrem(this.keys.mailbox(partner), ...gone).zrem(this.keys.mailboxPending(partner), ...gone).exec();
    return out;
  }

  async advance(packet: PacketRecord, state: 'retrieved' | 'acknowledged', at: string): Promise<void> {
    const delivery: Delivery = { state, packetId: packet.id, expiresAt: packet.expiresAt, updatedAt: at };
    await evalScript(
      this.redis,
      ADVANCE,
      3,
      this.keys.packet(packet.id),
      this.keys.deliveries(packet.dossier),
      this.keys.mailboxPending(packet.partner),
      state,
      state === 'retrieved' ? 'retrievedAt' : 'acknowledgedAt',
      at,
      packet.partner,
      JSON.stringify(delivery),
      packet.id,
    );
    // A packet is handed out only once a replica holds it and its new state: a fail-over cannot make
    // it be made, and retrieved, a second time.
    await confirmWrites(this.redis);
  }
}
