/**
 * Rate limits kept in Redis, so every api process shares them: requests per client per minute, and
 * failed authentications per remote address (a brute-force guess costs a slot; an address over its
 * budget has its unauthenticated attempts refused for a minute). A valid token is never refused for
 * its address's failures: behind a proxy every client shares one address, and an unauthenticated
 * sender must not be able to lock them all out (a 256-bit token is not found by guessing at 30 a
 * minute anyway). Both budgets are settled by one script per request, after the token has been checked
 * in memory. Over a limit: 429 with Retry-After. If Redis cannot answer, the request is refused (503),
 * never let through.
 */
import { GatewayError } from '../errors/index.js';
import type { RateCheck, RateLimitStore } from '../store/ratelimit.js';

export type { RateCheck } from '../store/ratelimit.js';

export interface RateLimitOptions {
  store: RateLimitStore;
  /** Requests per client per minute. */
  perClientPerMinute: number;
  /** Failed authentications per remote address per minute before that address is refused. */
  authFailuresPerMinute: number;
}

const WINDOW_MS = 60_000;
/** How long an address that used up its failures has its unauthenticated attempts refused. */
const BLOCK_MS = 60_000;

export class RateLimits {
  constructor(private readonly o: RateLimitOptions) {}

  /** Counts this request against its client (or, without a valid token, a failure against its address). */
  async check(address: string, clientId: string | undefined): Promise<RateCheck> {
    try {
      return await this.o.store.check(address, clientId, {
        perClient: this.o.perClientPerMinute,
        authFailures: this.o.authFailuresPerMinute,
        windowMs: WINDOW_MS,
        blockMs: BLOCK_MS,
      });
    } catch (err) {
      throw new GatewayError('store_unavailable', 'The gateway store is unavailable; try again shortly', undefined, { cause: err });
    }
  }
}

export function rateLimited(retryAfterMs: number): { error: GatewayError; retryAfter: string } {
  return {
    error: new GatewayError('rate_limited', 'Too many requests; retry after the time given in Retry-After'),
    retryAfter: String(Math.max(1, Math.ceil(retryAfterMs / 1000))),
  };
}
