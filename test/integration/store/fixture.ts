/**
 * The store conformance suite's Redis: one connection, and a fresh key prefix per test file whose keys
 * are all deleted afterwards (the Redis is shared; nothing outside the prefix is touched).
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { Keys } from '../../../gateway/store/redis.js';
import type { RecordAuth } from '../../../gateway/store/records.js';
import { deleteKeys, REDIS_URL } from '../../helpers/gateway.js';
import { testRecordAuth } from '../../helpers/records.js';

export interface StoreFixture {
  redis: Redis;
  keys: Keys;
  /** The record authentication the suite's stores share (store/record-mac.ts). */
  auth: RecordAuth;
}

export function useStoreFixture(name: string): StoreFixture {
  const f = {} as StoreFixture;
  beforeAll(() => {
    f.redis = new Redis(REDIS_URL);
    f.keys = new Keys(`cordon-test-store-${name}-${randomBytes(4).toString('hex')}`);
    f.auth = testRecordAuth();
  });
  afterAll(async () => {
    await deleteKeys(f.redis, f.keys.prefix);
    await f.redis.quit();
  });
  return f;
}

export const DAY_MS = 24 * 3600 * 1000;

export function dossierId(): string {
  return `dos_${randomBytes(16).toString('hex')}`;
}
