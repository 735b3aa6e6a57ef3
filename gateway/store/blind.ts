/**
 * Redis storage of blind-match partners' setup messages (gateway/blind/): per partner one hash holding
 * the latest setup, sealed (AES-256-GCM, bound to the partner by its AAD), its digest and when it was
 * published. A new setup replaces the old one at once: requests already answered keep their results,
 * and an answer made with an older key no longer verifies (the partner answers again).
 */
import type { Redis } from 'ioredis';
import { seal, unseal } from '../crypto/seal.js';
import type { Keys } from './redis.js';

export interface HeldSetup {
  /** The setup message as the partner published it (JSON). */
  json: string;
  digest: string;
  publishedAt: string;
}

export interface BlindSetupStore {
  put(partner: string, setup: HeldSetup): Promise<void>;
  get(partner: string): Promise<HeldSetup | undefined>;
  /** The digest and time only, without reading the setup itself. */
  head(partner: string): Promise<Omit<HeldSetup, 'json'> | undefined>;
}

export class RedisBlindSetupStore implements BlindSetupStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly sealKey: Buffer,
  ) {}

  async put(partner: string, setup: HeldSetup): Promise<void> {
    await this.redis.hset(this.keys.blindSetup(partner), { sealed: seal(this.sealKey, setup.json, aad(partner)), digest: setup.digest, publishedAt: setup.publishedAt });
  }

  async get(partner: string): Promise<HeldSetup | undefined> {
    const row = await this.redis.hgetall(this.keys.blindSetup(partner));
    if (!row.sealed || !row.digest || !row.publishedAt) return undefined;
    return { json: unseal(this.sealKey, row.sealed, aad(partner)).toString('utf8'), digest: row.digest, publishedAt: row.publishedAt };
  }

  async head(partner: string): Promise<Omit<HeldSetup, 'json'> | undefined> {
    const [digest, publishedAt] = await this.redis.hmget(this.keys.blindSetup(partner), 'digest', 'publishedAt');
    return digest && publishedAt ? { digest, publishedAt } : undefined;
  }
}

function aad(partner: string): string {
  return `blind-setup:${partner}`;
}
