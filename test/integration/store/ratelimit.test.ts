/** Rate-limit counters on a real Redis: the client budget per window, failures per address, the block. */
import { describe, expect, it } from 'vitest';
import { RedisRateLimits, type RateLimitBudget } from '../../../gateway/store/ratelimit.js';
import { useStoreFixture } from './fixture.js';

const f = useStoreFixture('ratelimit');
const budget: RateLimitBudget = { perClient: 2, authFailures: 2, windowMs: 60_000, blockMs: 30_000 };

describe('RedisRateLimits', () => {
  it('counts a client’s requests down and then limits it until the window ends', async () => {
    const limits = new RedisRateLimits(f.redis, f.keys);
    expect(await limits.check('10.0.0.1', 'client-a', budget)).toEqual({ outcome: 'ok', remaining: 1 });
    expect(await limits.check('10.0.0.2', 'client-a', budget)).toEqual({ outcome: 'ok', remaining: 0 });
    const limited = await limits.check('10.0.0.1', 'client-a', budget);
    expect(limited.outcome).toBe('limited');
    expect(limited.outcome === 'limited' && limited.retryAfterMs).toBeGreaterThan(50_000);
    expect(await limits.check('10.0.0.1', 'client-b', budget)).toEqual({ outcome: 'ok', remaining: 1 });
  });

  it('counts failed authentications per address and then blocks its unauthenticated attempts; valid clients still pass', async () => {
    const limits = new RedisRateLimits(f.redis, f.keys);
    expect(await limits.check('10.0.0.9', undefined, budget)).toEqual({ outcome: 'failed', failures: 1 });
    expect(await limits.check('10.0.0.9', undefined, budget)).toEqual({ outcome: 'failed', failures: 2 });
    const blocked = await limits.check('10.0.0.9', undefined, budget);
    expect(blocked.outcome).toBe('blocked');
    expect(blocked.outcome === 'blocked' && blocked.retryAfterMs).toBeGreaterThan(20_000);
    expect(blocked.outcome === 'blocked' && blocked.retryAfterMs).toBeLessThanOrEqual(30_000);
    expect(await f.redis.get(f.keys.rateAuthFailures('10.0.0.9'))).toBe('2'); // a blocked attempt is not counted again
    expect(await limits.check('10.0.0.9', 'client-c', budget)).toEqual({ outcome: 'ok', remaining: 1 });
    expect(await f.redis.get(f.keys.rateAuthFailures('10.0.0.9'))).toBe('2');
  });
});
