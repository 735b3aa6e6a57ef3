/**
 * Partners' mailboxes in Redis: one hash per packet or recall notice, and per partner a sorted set of
 * all its items and one of those not yet retrieved. A packet is stored at most once per id, filed in the
 * mailbox and the retention schedule and marked on the dossier's delivery in one atomic step, with the
 * other packets of its dossier made in the same fan-out (store/scripts/mailbox-create-packets.lua), so a
 * retried or duplicated job can never make a second one.
 * When to erase what is the caller's (mailbox/mailbox.ts, retention/schedule.ts): this module is told.
 * A packet's metadata (partner, dossier, type, expiry, state…) is authenticated with its id and version
 * (store/record-mac.ts): a packet changed or restored behind the gateway's back is refused to everyone.
 */
import type { Redis } from 'ioredis';
import type { Keys } from './redis.js';
import type { Delivery } from './dossiers.js';
import { AuthenticatedRecords, type RecordAuth } from './records.js';
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
  /**
   * The OpenPGP message (ciphertext): binary for packets (a quarter smaller; armored when a partner
   * retrieves it, crypto/openpgp.ts `armorMessage`), armored text for recall notices and packets
   * stored before packets were kept binary.
   */
  message: string | Uint8Array;
  /** Sealed map of packet ref → dossier subject id, for mapping hits back. */
  refs: string;
  /** Sealed list of the dossier subject ids the packet holds (answers are asked for those); older packets lack it. */
  subjects?: string;
  retrievedAt?: string;
  acknowledgedAt?: string;
  /** `recall` for a recall notice (gateway/recall), `match` for a match request, `blind-match` for a blind one, absent for a packet. */
  type?: 'recall' | 'match' | 'blind-match';
  /** Blind-match request: the gateway's sealed blinding state (gateway/blind/psi.ts BlindState), never sent. */
  blind?: string;
  /** For a recall notice: the packet it recalls. */
  recalls?: string;
}

const SUMMARY_FIELDS = ['id', 'partner', 'dossier', 'source', 'createdAt', 'expiresAt', 'state', 'type', 'recalls'] as const;
/** Each packet read's version (as checked): a change is made only from it (compare-and-set). */
const versions = new WeakMap<PacketRecord, number>();

/** What a listing needs of a packet: everything but the message and the sealed refs. */
export type PacketSummaryRecord = Omit<PacketRecord, 'message' | 'refs' | 'subjects' | 'blind'>;

const CREATE_PACKETS = loadScript('mailbox-create-packets');
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

/** A packet to store, the delivery it makes, and its retention. */
export interface PacketFiling {
  packet: PacketRecord;
  delivery: Delivery;
  retention: PacketRetention;
}

/** What filing a dossier's packets did. */
export interface FiledPackets {
  /** Per filing, in order: true when created, false when the packet already existed (nothing of it written). */
  created: boolean[];
  /** The dossier's deliveries, every partner's, as they were right after. */
  deliveries: Record<string, Delivery>;
}

export interface MailboxStore {
  /**
   * Stores packets of one dossier, files each and sets its delivery, all in one atomic step; a packet
   * that already existed is left as it was.
   */
  create(filings: PacketFiling[]): Promise<FiledPackets>;
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
  private readonly records: AuthenticatedRecords;

  constructor(private readonly redis: Redis, private readonly keys: Keys, auth: RecordAuth | AuthenticatedRecords) {
    this.records = auth instanceof AuthenticatedRecords ? auth : new AuthenticatedRecords(redis, keys, auth);
  }

  async create(filings: PacketFiling[]): Promise<FiledPackets> {
    const dossier = filings[0]?.packet.dossier;
    if (dossier === undefined || filings.some((f) => f.packet.dossier !== dossier)) throw new Error('packets are filed one dossier at a time, at least one');
    const k = this.keys;
    const keys = [k.retentionDue(), k.deliveries(dossier), k.dossier(dossier), k.hits(dossier), k.dossierLinks(dossier), k.dossierCompanions(dossier), k.recordVersion('dossier', dossier)];
    const args: Array<string | Buffer> = [filings[0]!.retention.dossierMember];
    for (const { packet, delivery, retention } of filings) {
      const { message, ...meta } = packet;
      // The message goes to Redis as it is, bytes or text (it is not among the MAC's fields).
      const fields: Array<string | Buffer> = [
        ...Object.entries(this.records.sealNew('packet', packet.id, stringFields(meta))).flat(),
        'message',
        typeof message === 'string' ? message : Buffer.from(message.buffer, message.byteOffset, message.byteLength),
      ];
      keys.push(k.packet(packet.id), k.mailbox(packet.partner), k.mailboxPending(packet.partner), k.recordVersion('packet', packet.id));
      args.push(
        String(fields.length),
        String(retention.storeExpiryMs),
        String(Date.parse(packet.createdAt)),
        packet.id,
        packet.partner,
        JSON.stringify(delivery),
        retention.member,
        String(retention.dueMs),
        String(retention.statusDueMs),
        String(retention.statusStoreExpiryMs),
        ...fields,
      );
    }
    const [created, flat] = (await evalScript(this.redis, CREATE_PACKETS, keys.length, ...keys, ...args)) as [number[], string[]];
    // The deliveries are marked delivered only once a replica holds the packets (store/replication.ts).
    await confirmWrites(this.redis);
    const deliveries: Record<string, Delivery> = {};
    for (let i = 0; i < flat.length; i += 2) deliveries[flat[i]!] = JSON.parse(flat[i + 1]!) as Delivery;
    return { created: created.map((c) => c === 1), deliveries };
  }

  async createNotice(notice: PacketRecord & { type: 'recall' }, retention: NoticeRetention): Promise<boolean> {
    const created = await evalScript(
      this.redis,
      CREATE_NOTICE,
      5,
      this.keys.packet(notice.id),
      this.keys.mailbox(notice.partner),
      this.keys.retentionDue(),
      this.keys.mailboxPending(notice.partner),
      this.keys.recordVersion('packet', notice.id),
      JSON.stringify(Object.entries(this.records.sealNew('packet', notice.id, stringFields(notice))).flat()),
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

  /** The packet, checked (`record_tampered` when it fails); undefined when it is gone. */
  async get(id: string): Promise<PacketRecord | undefined> {
    const read = await this.records.read('packet', id, true);
    if (!read?.fields.id) return undefined;
    const { v: _v, mac: _mac, ...fields } = read.fields;
    const stored = read.bytes?.message;
    // A binary OpenPGP message starts with a packet tag (high bit set); anything else is armored text.
    const message = stored === undefined ? undefined : stored.length > 0 && (stored[0]! & 0x80) !== 0 ? stored : stored.toString('utf8');
    const packet = (message === undefined ? fields : { ...fields, message }) as unknown as PacketRecord;
    versions.set(packet, read.version);
    return packet;
  }

  /**
   * The partner's packets without their messages: newest first, or with `pending` the ones not yet
   * retrieved, oldest first (so a partner drains a backlog of any size page by page). Ids whose packet
   * has been erased are pruned on the way; one that fails its integrity check is left out (and reported).
   */
  async list(partner: string, limit = 100, pending = false): Promise<PacketSummaryRecord[]> {
    const index = pending ? this.keys.mailboxPending(partner) : this.keys.mailbox(partner);
    const ids = pending ? await this.redis.zrange(index, '0', String(limit - 1)) : await this.redis.zrevrange(index, 0, limit - 1);
    if (!ids.length) return [];
    const rows = await Promise.all(ids.map((id) => this.records.readOrSkip('packet', id)));
    const out: PacketSummaryRecord[] = [];
    const gone: string[] = [];
    rows.forEach((row, i) => {
      if (row === undefined) gone.push(ids[i]!);
      // Another partner's packet filed here (a tampered index) is not this partner's to see.
      if (row === undefined || row === 'tampered' || row.fields.partner !== partner) return;
      const f = row.fields;
      out.push(Object.fromEntries(SUMMARY_FIELDS.filter((k) => f[k] !== undefined).map((k) => [k, f[k]])) as unknown as PacketSummaryRecord);
    });
    if (gone.length) await this.redis.multi().zrem(this.keys.mailbox(partner), ...gone).zrem(this.keys.mailboxPending(partner), ...gone).exec();
    return out;
  }

  async advance(packet: PacketRecord, state: 'retrieved' | 'acknowledged', at: string): Promise<void> {
    const delivery: Delivery = { state, packetId: packet.id, expiresAt: packet.expiresAt, updatedAt: at };
    const timeField = state === 'retrieved' ? 'retrievedAt' : 'acknowledgedAt';
    // Compare-and-set from the version read (a record not read here is read first); another writer in
    // between means a fresh read and a retry.
    let current = versions.has(packet) ? packet : await this.get(packet.id);
    for (let attempt = 0; current && attempt < 10; attempt++) {
      const version = versions.get(current)!;
      const { message: _m, refs: _r, subjects: _s, blind: _b, ...meta } = stringFields(current);
      const next = { ...meta, state, [timeField]: at };
      const res = await evalScript(
        this.redis,
        ADVANCE,
        4,
        this.keys.packet(packet.id),
        this.keys.deliveries(packet.dossier),
        this.keys.mailboxPending(packet.partner),
        this.keys.recordVersion('packet', packet.id),
        state,
        timeField,
        at,
        packet.partner,
        JSON.stringify(delivery),
        packet.id,
        String(version),
        String(version + 1),
        this.records.mac('packet', packet.id, version + 1, next),
      );
      if (res !== -1) break;
      current = await this.get(packet.id);
    }
    // A packet is handed out only once a replica holds it and its new state: a fail-over cannot make
    // it be made, and retrieved, a second time.
    await confirmWrites(this.redis);
  }
}

/** A record's fields as Redis holds them (strings), without absent ones. */
function stringFields(record: object): Record<string, string> {
  return Object.fromEntries(Object.entries(record).filter(([, v]) => v !== undefined && v !== null).map(([k, v]) => [k, String(v)]));
}
