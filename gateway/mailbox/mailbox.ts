/**
 * Partners' mailboxes. A packet is written at most once per (dossier, partner): its id is derived from
 * both, and the Lua script below stores it, files it in the mailbox and marks the delivery in one
 * atomic step only if it does not exist yet, so a retried or duplicated job can never make a second one.
 */
import type { Redis } from 'ioredis';
import type { Keys } from '../store/redis.js';
import type { Delivery } from '../store/dossiers.js';
import { dossierDueMember, packetDueMember, retentionKey, statusDueAfterPacket, STATUS_STORE_BACKSTOP_MS, STORE_BACKSTOP_MS } from '../retention/schedule.js';
import { evalScript } from '../store/scripts.js';

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
  retrievedAt?: string;
  acknowledgedAt?: string;
  /** `recall` for a recall notice (gateway/recall), absent for a packet. */
  type?: 'recall';
  /** For a recall notice: the packet it recalls. */
  recalls?: string;
}

const SUMMARY_FIELDS = ['id', 'partner', 'dossier', 'source', 'createdAt', 'expiresAt', 'state', 'type', 'recalls'] as const;

/** What a listing needs of a packet: everything but the message and the sealed refs. */
export type PacketSummaryRecord = Omit<PacketRecord, 'message' | 'refs'>;

/**
 * KEYS: packet, mailbox, deliveries, schedule, pending, dossier record, hits, dossier links, dossier
 * companions (a set of further keys kept with the status record, e.g. its exchange records).
 * ARGV: number of field/value arguments, store expiry, created, id, partner, delivery, schedule member,
 * due, then the dossier's schedule member, its status due and store expiry given this packet, then the
 * packet's fields and values as they are (no JSON for Redis to decode). The dossier's status record (and
 * its deliveries, hits and links) is made to outlive the packet: only ever lengthened (GT), never
 * shortened, and nothing is written for a dossier record that is gone.
 */
const CREATE_PACKET = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 12, 11 + tonumber(ARGV[1])))
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
redis.call('HSET', KEYS[3], ARGV[5], ARGV[6])
redis.call('ZADD', KEYS[4], ARGV[8], ARGV[7])
redis.call('ZADD', KEYS[5], ARGV[3], ARGV[4])
if redis.call('EXISTS', KEYS[6]) == 1 then
  redis.call('ZADD', KEYS[4], 'GT', ARGV[10], ARGV[9])
  for _, k in ipairs({3, 6, 7, 8, 9}) do redis.call('PEXPIREAT', KEYS[k], ARGV[11], 'GT') end
  for _, c in ipairs(redis.call('SMEMBERS', KEYS[9])) do redis.call('PEXPIREAT', c, ARGV[11], 'GT') end
end
return 1
`;

/** Moves a packet to a later state and mirrors it on the dossier's delivery; never moves backwards. */
const ADVANCE = `
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 0 end
local order = { delivered = 1, retrieved = 2, acknowledged = 3 }
if order[ARGV[1]] <= order[state] then return 1 end
redis.call('HSET', KEYS[1], 'state', ARGV[1], ARGV[2], ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[6])
if redis.call('HGET', KEYS[1], 'type') ~= 'recall' then redis.call('HSET', KEYS[2], ARGV[4], ARGV[5]) end
return 2
`;

export class Mailbox {
  constructor(private readonly redis: Redis, private readonly keys: Keys) {}

  /** True when this call created the packet, false when it already existed. */
  async create(packet: PacketRecord, delivery: Delivery): Promise<boolean> {
    const fields = Object.entries(packet).flat().map(String);
    // Hits on this packet hang on the dossier's status record: it must outlive the packet.
    const statusDue = statusDueAfterPacket(new Date(packet.expiresAt)).getTime();
    const created = (await evalScript(this.redis, 
      CREATE_PACKET,
      9,
      this.keys.packet(packet.id),
      this.keys.mailbox(packet.partner),
      this.keys.deliveries(packet.dossier),
      retentionKey(this.keys),
      this.keys.mailboxPending(packet.partner),
      this.keys.dossier(packet.dossier),
      this.keys.hits(packet.dossier),
      this.keys.dossierLinks(packet.dossier),
      this.keys.dossierCompanions(packet.dossier),
      String(fields.length),
      // Redis's own expiry is only a backstop: the retention sweeper erases (and audits) at expiresAt.
      String(Date.parse(packet.expiresAt) + STORE_BACKSTOP_MS),
      String(Date.parse(packet.createdAt)),
      packet.id,
      packet.partner,
      JSON.stringify(delivery),
      packetDueMember(packet.id, packet.dossier, packet.partner),
      String(Date.parse(packet.expiresAt)),
      dossierDueMember(packet.dossier),
      String(statusDue),
      String(statusDue + STATUS_STORE_BACKSTOP_MS),
      ...fields,
    )) as number;
    return created === 1;
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
    await evalScript(this.redis, 
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
  }
}
