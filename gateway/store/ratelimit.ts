/**
 * Rate-limit counters in Redis, so every api process shares them: requests per client per window, and
 * failed authentications per remote address (an address over its budget has its unauthenticated
 * attempts blocked for a while; valid tokens from it still pass). One script per request settles both
 * (store/scripts/ratelimit-check.lua).
 */
import type { Redis } from 'ioredis';
import type { Keys } from './redis.js';
import { evalScript, loadScript } from './scripts.js';

const CHECK = loadScript('ratelimit-check');

export interface RateLimitBudget {
  /** Requests per client per window. */
  perClient: number;
  /** Failed authentications per address per window before the address's unauthenticated attempts are blocked. */
  authFailures: number;
  windowMs: number;
  /** How long an address that used up its failures is blocked. */
  blockMs: number;
}

/** `failed`: `failures` is the address's count this window including this one (1 opens a new window). */
export type RateCheck = { outcome: 'ok'; remaining: number } | { outcome: 'failed'; failures: number } | { outcome: 'blocked' | 'limited'; retryAfterMs: number };

export interface RateLimitStore {
  /**
   * Counts one request against its client (`clientId`), or without a valid token a failure against
   * its address; only the latter can be `blocked`.
   */
  check(address: string, clientId: string | undefined, budget: RateLimitBudget): Promise<RateCheck>;
}

export class RedisRateLimits implements RateLimitStore {
  constructor(private readonly redis: Redis, private readonly keys: Keys) {}

  async check(address: string, clientId: string | undefined, budget: RateLimitBudget): Promise<RateCheck> {
    const failures = this.keys.rateAuthFailures(address);
    const [outcome, n] = (await evalScript(
      this.redis,
      CHECK,
      2,
      failures,
      clientId === undefined ? failures : this.keys.rateClient(clientId),
      String(budget.authFailures),
      String(budget.perClient),
      String(budget.windowMs),
      String(budget.blockMs),
      clientId === undefined ? '0' : '1',
    )) as [string, number];
    if (outcome === 'ok') return { outcome, remaining: n };
    if (outcome === 'failed') return { outcome, failures: n };
    return { outcome: outcome as 'blocked' | 'limited', retryAfterMs: Math.max(0, n) };
  }
}
