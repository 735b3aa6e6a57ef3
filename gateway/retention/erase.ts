/**
 * Erasure, one thing at a time, each audited before it happens (`kind: 'erasure'`, ids and reason
 * only): a packet or recall notice (its ciphertext and sealed ref map, its mailbox entry; the delivery
 * the source sees turns `expired`), and a dossier's status record with its deliveries, hits and the
 * records kept with it (dossier companions, e.g. its exchange records). Every step is idempotent, so
 * an erasure interrupted half-way is simply done again.
 */
import type { Redis } from 'ioredis';
import type { AuditLog } from '../audit/log.js';
import type { Keys } from '../store/redis.js';
import { dossierDueMember, packetDueMember, retentionKey } from './schedule.js';
import { evalScript } from '../store/scripts.js';

/**
 * KEYS: packet, mailbox, deliveries, schedule. ARGV: packet id, partner, schedule member, time, reason,
 * required state ('' for any). Returns 0 when the packet is not in the required state, 1 when it was
 * already gone, 2 when erased now.
 */
const ERASE_PACKET = `
if ARGV[6] ~= '' and redis.call('HGET', KEYS[1], 'state') ~= ARGV[6] then return 0 end
local existed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[3])
local d = redis.call('HGET', KEYS[3], ARGV[2])
if d then
  local o = cjson.decode(d)
  if o.packetId == ARGV[1] and o.state ~= 'expired' then
    o.state = 'expired'
    o.updatedAt = ARGV[4]
    o.reason = ARGV[5]
    redis.call('HSET', KEYS[3], ARGV[2], cjson.encode(o))
  end
end
return 1 + existed
`;

export type ErasureReason = 'retention_expired' | 'recalled';

export interface PacketRef {
  id: string;
  dossier: string;
  partner: string;
}

export class Eraser {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly audit: AuditLog,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /**
   * Erases a packet (or recall notice). With `onlyIfState`, only a packet still in that state is
   * erased (recall erases unretrieved packets only); returns whether it was erased by this call.
   */
  async erasePacket(ref: PacketRef, reason: ErasureReason, onlyIfState?: 'delivered'): Promise<boolean> {
    const key = this.keys.packet(ref.id);
    const [state, type] = await this.redis.hmget(key, 'state', 'type');
    if (onlyIfState && state !== onlyIfState) return false;
    await this.audit.append({
      kind: 'erasure',
      action: 'packet.erased',
      packet: ref.id,
      dossier: ref.dossier,
      recipient: ref.partner,
      reason,
      ...(type === 'recall' ? { type: 'recall' } : {}),
      state: state ?? 'already gone from the store',
    });
    const result = (await evalScript(this.redis, 
      ERASE_PACKET,
      4,
      key,
      this.keys.mailbox(ref.partner),
      this.keys.deliveries(ref.dossier),
      retentionKey(this.keys),
      ref.id,
      ref.partner,
      packetDueMember(ref.id, ref.dossier, ref.partner),
      this.now().toISOString(),
      reason,
      onlyIfState ?? '',
    )) as number;
    if (result === 0) {
      // Retrieved between the check and the erasure: the log says so rather than claim an erasure.
      await this.audit.append({ kind: 'erasure', action: 'packet.erasure_skipped', packet: ref.id, dossier: ref.dossier, recipient: ref.partner, reason: 'retrieved meanwhile' });
      return false;
    }
    return true;
  }

  /**
   * Erases a dossier's status record, deliveries, sealed content (if any is left), hits and links, and
   * the records kept with it (its companions: the exchange's peer deliveries and relay bookkeeping).
   */
  async eraseDossier(id: string, reason: ErasureReason): Promise<void> {
    const sealedLeft = await this.redis.hexists(this.keys.dossier(id), 'sealed');
    const companions = await this.redis.smembers(this.keys.dossierCompanions(id));
    const keys = [this.keys.dossier(id), this.keys.deliveries(id), this.keys.hits(id), this.keys.dossierLinks(id), this.keys.dossierCompanions(id), ...companions];
    const present = (await this.redis.exists(...keys)) > 0;
    await this.audit.append({
      kind: 'erasure',
      action: 'dossier.erased',
      dossier: id,
      reason,
      erased: ['status', 'deliveries', 'hits', 'links', ...(companions.length ? ['exchange records'] : []), ...(sealedLeft ? ['sealed dossier'] : [])],
      ...(present ? {} : { state: 'already gone from the store' }),
    });
    const results = (await this.redis.multi().del(...keys).zrem(retentionKey(this.keys), dossierDueMember(id)).exec()) ?? [];
    const failed = results.find(([err]) => err);
    if (failed) throw failed[0]!;
  }
}
