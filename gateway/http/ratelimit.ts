/**
 * Rate limits kept in Redis, so every api process shares them: requests per client per minute, and
 * failed authentications per remote address (a brute-force guess costs a slot too; an address over its
 * budget is refused for a minute whatever token it shows). Both are settled by one script per request,
 * after the token has been checked in memory. Over a limit: 429 with Retry-After. If Redis cannot
 * answer, the request is refused (503), never let through.
 */
import type { Redis } from 'ioredis';
import { GatewayError } from '../errors/index.js';
import { evalScript } from '../store/scripts.js';

export interface RateLimitOptions {
  redis: Redis;
  prefix: string;
  /** Requests per client per minute. */
  perClientPerMinute: number;
  /** Failed authentications per remote address per minute before that address is refused. */
  authFailuresPerMinute: number;
}

const WINDOW_MS = 60_000;
/** How long an address that used up its failures is refused. */
const BLOCK_MS = 60_000;

/**
 * KEYS[1] the address's failures, KEYS[2] the client's requests this window (KEYS[1] again when the
 * token was not valid). ARGV: failure limit, client limit, window ms, block ms, '1' when authenticated.
 * Returns {outcome, n}: blocked (n = ms left), failed (counted), limited (n = ms left), ok (n = left).
 */
const CHECK = `
local fails = tonumber(redis.call('GET', KEYS[1]) or '0')
if fails >= tonumber(ARGV[1]) then return {'blocked', redis.call('PTTL', KEYS[1])} end
if ARGV[5] ~= '1' then
  fails = redis.call('INCR', KEYS[1])
  if fails == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
  if fails >= tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
  return {'failed', fails}
end
local used = redis.call('INCR', KEYS[2])
if used == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
if used > tonumber(ARGV[2]) then return {'limited', redis.call('PTTL', KEYS[2])} end
return {'ok', tonumber(ARGV[2]) - used}
`;

export type RateCheck = { outcome: 'ok'; remaining: number } | { outcome: 'failed' } | { outcome: 'blocked' | 'limited'; retryAfterMs: number };

export class RateLimits {
  constructor(private readonly o: RateLimitOptions) {}

  /** Counts this request against its client (or, without a valid token, a failure against its address). */
  async check(address: string, clientId: string | undefined): Promise<RateCheck> {
    const failures = `${this.o.prefix}:rl:authfail:${address}`;
    let reply: [string, number];
    try {
      reply = (await evalScript(
        this.o.redis,
        CHECK,
        2,
        failures,
        clientId === undefined ? failures : `${this.o.prefix}:rl:client:${clientId}`,
        String(this.o.authFailuresPerMinute),
        String(this.o.perClientPerMinute),
        String(WINDOW_MS),
        String(BLOCK_MS),
        clientId === undefined ? '0' : '1',
      )) as [string, number];
    } catch (err) {
      throw new GatewayError('store_unavailable', 'The gateway store is unavailable; try again shortly', undefined, { cause: err });
    }
    const [outcome, n] = reply;
    if (outcome === 'ok') return { outcome, remaining: n };
    if (outcome === 'failed') return { outcome };
    return { outcome: outcome as 'blocked' | 'limited', retryAfterMs: Math.max(0, n) };
  }
}

export function rateLimited(retryAfterMs: number): { error: GatewayError; retryAfter: string } {
  return {
    error: new GatewayError('rate_limited', 'Too many requests; retry after the time given in Retry-After'),
    retryAfter: String(Math.max(1, Math.ceil(retryAfterMs / 1000))),
  };
}
