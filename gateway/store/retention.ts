/**
 * The retention schedule and erasure in Redis. The schedule is one sorted set of members naming what to
 * erase (retention/schedule.ts), scored by when (ms); a lock with a token lets one sweeper at a time
 * work through it. Erasing a packet (store/scripts/retention-erase-packet.lua) removes it, its mailbox
 * entry and its schedule member and turns the source's delivery `expired` in one step; erasing a dossier
 * deletes its status record and every key kept with it. Every step is idempotent.
 */
import type { Redis } from 'ioredis';
import { AuthenticatedRecords, type RecordAuth } from './records.js';
import type { Keys } from './redis.js';
import { evalScript, loadScript } from './scripts.js';

const ERASE_PACKET = loadScript('retention-erase-packet');
const RELEASE = loadScript('lock-release');
const SEALED_AFTER_MATCH = loadScript('retention-sealed-after-match');

/** `skipped`: not in the required state; `gone`: already erased; `erased`: erased by this call. */
export type PacketErasure = 'skipped' | 'gone' | 'erased';

export interface PacketErasureRequest {
  id: string;
  dossier: string;
  partner: string;
  /** Its schedule member, removed with it. */
  member: string;
  /** The time and reason the source's delivery shows. */
  at: string;
  reason: string;
  /** Only erase a packet still in this state. */
  onlyIfState?: string;
}

/** What is left of a dossier before its erasure. */
export interface DossierRemains {
  /** Whether its sealed content is still there. */
  sealedLeft: boolean;
  /** Whether anything of it is still stored. */
  present: boolean;
  /** The further keys kept with its status record (e.g. its exchange records). */
  companions: number;
}

export interface RetentionStore {
  /** Schedules `member` for erasure at `dueMs`; rescheduling moves it. */
  schedule(member: string, dueMs: number): Promise<void>;
  /** Members due at `nowMs`, oldest first, at most `limit`. */
  due(nowMs: number, limit: number): Promise<string[]>;
  unschedule(member: string): Promise<void>;
  /** Takes the sweep lock for `ms` under `token`; false when another holder has it. */
  lock(token: string, ms: number): Promise<boolean>;
  release(token: string): Promise<void>;
  /**
   * A packet's state and type (`recall` for a recall notice), or nulls when it is gone; state `tampered`
   * for one that fails its integrity check (store/record-mac.ts): it is still erased when due.
   */
  packetState(id: string): Promise<{ state: string | null; type: string | null }>;
  erasePacket(request: PacketErasureRequest): Promise<PacketErasure>;
  dossierRemains(id: string): Promise<DossierRemains>;
  /** Deletes a dossier's status record, deliveries, sealed content, hits, links and companions, and its schedule member. */
  eraseDossier(id: string, member: string): Promise<void>;
  /**
   * Whether the dossier's sealed content is kept only for match requests that are all gone (none can
   * bring a follow-up any more); with `erase`, erases it then. True when it is (or was) so.
   */
  sealedAfterMatch(id: string, mode: 'check' | 'erase'): Promise<boolean>;
}

export class RedisRetention implements RetentionStore {
  private readonly records: AuthenticatedRecords;

  constructor(private readonly redis: Redis, private readonly keys: Keys, auth: RecordAuth | AuthenticatedRecords) {
    this.records = auth instanceof AuthenticatedRecords ? auth : new AuthenticatedRecords(redis, keys, auth);
  }

  async schedule(member: string, dueMs: number): Promise<void> {
    await this.redis.zadd(this.keys.retentionDue(), dueMs, member);
  }

  due(nowMs: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.retentionDue(), '-inf', nowMs, 'LIMIT', 0, limit);
  }

  async unschedule(member: string): Promise<void> {
    await this.redis.zrem(this.keys.retentionDue(), member);
  }

  async lock(token: string, ms: number): Promise<boolean> {
    return (await this.redis.set(this.keys.retentionLock(), token, 'PX', ms, 'NX')) === 'OK';
  }

  async release(token: string): Promise<void> {
    await evalScript(this.redis, RELEASE, 1, this.keys.retentionLock(), token);
  }

  async packetState(id: string): Promise<{ state: string | null; type: string | null }> {
    const read = await this.records.readOrSkip('packet', id);
    if (read === 'tampered') return { state: 'tampered', type: null };
    return { state: read?.fields.state ?? null, type: read?.fields.type ?? null };
  }

  async erasePacket(r: PacketErasureRequest): Promise<PacketErasure> {
    const result = (await evalScript(
      this.redis,
      ERASE_PACKET,
      5,
      this.keys.packet(r.id),
      this.keys.mailbox(r.partner),
      this.keys.deliveries(r.dossier),
      this.keys.retentionDue(),
      this.keys.recordVersion('packet', r.id),
      r.id,
      r.partner,
      r.member,
      r.at,
      r.reason,
      r.onlyIfState ?? '',
    )) as number;
    return result === 0 ? 'skipped' : result === 1 ? 'gone' : 'erased';
  }

  private async dossierKeys(id: string): Promise<{ keys: string[]; companions: string[] }> {
    const companions = await this.redis.smembers(this.keys.dossierCompanions(id));
    const k = this.keys;
    return { keys: [k.dossier(id), k.recordVersion('dossier', id), k.deliveries(id), k.hits(id), k.dossierLinks(id), k.dossierCompanions(id), ...companions], companions };
  }

  async dossierRemains(id: string): Promise<DossierRemains> {
    const sealedLeft = (await this.redis.hexists(this.keys.dossier(id), 'sealed')) === 1;
    const { keys, companions } = await this.dossierKeys(id);
    const present = (await this.redis.exists(...keys)) > 0;
    return { sealedLeft, present, companions: companions.length };
  }

  async sealedAfterMatch(id: string, mode: 'check' | 'erase'): Promise<boolean> {
    const packetPrefix = this.keys.packet('');
    return (await evalScript(this.redis, SEALED_AFTER_MATCH, 2, this.keys.dossier(id), this.keys.deliveries(id), packetPrefix, mode)) === 1;
  }

  async eraseDossier(id: string, member: string): Promise<void> {
    const { keys } = await this.dossierKeys(id);
    const results = (await this.redis.multi().del(...keys).zrem(this.keys.retentionDue(), member).exec()) ?? [];
    const failed = results.find(([err]) => err);
    if (failed) throw failed[0]!;
  }
}
