/**
 * Dossier records: who sent it, its state, one delivery per partner, and the sealed dossier until
 * every delivery is settled. The dossier itself is only ever stored sealed (AES-GCM, see crypto/seal).
 */
import type { Redis } from 'ioredis';
import type { Keys } from './redis.js';

/** `withdrawn` and `corrected`: recalled by the source (gateway/recall). */
export type DossierState = 'accepted' | 'processed' | 'failed' | 'withdrawn' | 'corrected';
export type DeliveryState = 'queued' | 'delivered' | 'retrieved' | 'acknowledged' | 'blocked' | 'expired';

export interface Delivery {
  state: DeliveryState;
  reason?: string;
  message?: string;
  packetId?: string;
  expiresAt?: string;
  updatedAt: string;
}

export interface DossierRecord {
  id: string;
  source: string;
  client: string;
  receivedAt: string;
  state: DossierState;
  revision: string;
  partners: string[];
  failure?: string;
}

/** How long a dossier's status record and idempotency key outlive it (longer than any job retention). */
export const RECORD_TTL_SECONDS = 400 * 24 * 3600;
export const IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600;

export class DossierStore {
  constructor(private readonly redis: Redis, private readonly keys: Keys) {}

  /**
   * Stores a new dossier and its idempotency record atomically. Returns the id of an earlier dossier
   * when the idempotency key was already used (with the body hash it was used for), else undefined.
   */
  async create(
    record: DossierRecord,
    sealed: string,
    idem?: { clientId: string; keyHash: string; bodyHash: string },
  ): Promise<{ existing?: { dossierId: string; bodyHash: string } }> {
    if (idem) {
      const idemKey = this.keys.idempotency(idem.clientId, idem.keyHash);
      const value = JSON.stringify({ dossierId: record.id, bodyHash: idem.bodyHash });
      const set = await this.redis.set(idemKey, value, 'EX', IDEMPOTENCY_TTL_SECONDS, 'NX');
      if (set === null) {
        const prior = await this.redis.get(idemKey);
        if (prior) return { existing: JSON.parse(prior) as { dossierId: string; bodyHash: string } };
      }
    }
    const now = record.receivedAt;
    const deliveries = Object.fromEntries(
      record.partners.map((p) => [p, JSON.stringify({ state: 'queued', updatedAt: now } satisfies Delivery)]),
    );
    const multi = this.redis
      .multi()
      .hset(this.keys.dossier(record.id), { ...toHash(record), sealed })
      .expire(this.keys.dossier(record.id), RECORD_TTL_SECONDS);
    if (record.partners.length) {
      multi.hset(this.keys.deliveries(record.id), deliveries).expire(this.keys.deliveries(record.id), RECORD_TTL_SECONDS);
    }
    await multi.exec();
    return {};
  }

  /** Undo of create() when the job could not be queued: nothing accepted stays half-stored. */
  async discard(id: string, idem?: { clientId: string; keyHash: string }): Promise<void> {
    const multi = this.redis.multi().del(this.keys.dossier(id)).del(this.keys.deliveries(id));
    if (idem) multi.del(this.keys.idempotency(idem.clientId, idem.keyHash));
    await multi.exec();
  }

  async get(id: string): Promise<DossierRecord | undefined> {
    const h = await this.redis.hgetall(this.keys.dossier(id));
    if (!h.id) return undefined;
    return {
      id: h.id,
      source: h.source ?? '',
      client: h.client ?? '',
      receivedAt: h.receivedAt ?? '',
      state: (h.state ?? 'accepted') as DossierState,
      revision: h.revision ?? '',
      partners: JSON.parse(h.partners ?? '[]') as string[],
      ...(h.failure ? { failure: h.failure } : {}),
    };
  }

  async getSealed(id: string): Promise<string | undefined> {
    return (await this.redis.hget(this.keys.dossier(id), 'sealed')) ?? undefined;
  }

  async deliveries(id: string): Promise<Record<string, Delivery>> {
    const h = await this.redis.hgetall(this.keys.deliveries(id));
    return Object.fromEntries(Object.entries(h).map(([k, v]) => [k, JSON.parse(v) as Delivery]));
  }

  async setDelivery(id: string, partner: string, delivery: Delivery): Promise<void> {
    await this.redis.hset(this.keys.deliveries(id), partner, JSON.stringify(delivery));
  }

  /** Every delivery settled: the sealed dossier is erased, only the status record remains. */
  async markProcessed(id: string): Promise<void> {
    await this.redis.multi().hset(this.keys.dossier(id), 'state', 'processed').hdel(this.keys.dossier(id), 'sealed').exec();
  }

  async markFailed(id: string, failure: string): Promise<void> {
    await this.redis.hset(this.keys.dossier(id), { state: 'failed', failure });
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
  };
}
