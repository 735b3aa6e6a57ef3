/**
 * The replication guard on a standalone Redis (the shared test Redis has no replicas): nothing is
 * waited for, no connection is opened for it, and /readyz's detail says so; switched off, it says that.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { Keys } from '../../../gateway/store/redis.js';
import { confirmWrites, guardReplication, replicationOf } from '../../../gateway/store/replication.js';
import { REDIS_URL } from '../../helpers/gateway.js';

const redis = new Redis(REDIS_URL);
const keys = new Keys(`cordon-test-repl-${process.pid}`);

afterAll(async () => {
  await redis.quit();
});

describe('replication guard', () => {
  it('a connection without a guard writes as before', async () => {
    const other = new Redis(REDIS_URL);
    try {
      expect(replicationOf(other)).toBeUndefined();
      expect(await confirmWrites(other)).toBe(0);
    } finally {
      await other.quit();
    }
  });

  it('on a standalone master, waits for nothing and says so', async () => {
    if (/connected_slaves:[1-9]/.test(await redis.info('replication'))) return; // a replicated test Redis: nothing to check here
    const guard = guardReplication(redis, keys, { confirmReplicas: 1, waitTimeoutMs: 500 });
    expect(await confirmWrites(redis)).toBe(0);
    const status = await guard.status();
    expect(status).toMatchObject({ ready: true, required: 0, online: 0 });
    expect(status.detail).toMatch(/standalone master/);
    // No barrier write, no extra connection.
    expect(await redis.exists(keys.replicationBarrier())).toBe(0);
    await guard.close();
  });

  it('switched off, it sends nothing and reports it', async () => {
    const guard = guardReplication(redis, keys, { confirmReplicas: 0, waitTimeoutMs: 500 });
    expect(await guard.confirm()).toBe(0);
    expect((await guard.status()).detail).toMatch(/switched off/);
  });
});
