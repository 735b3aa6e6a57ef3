/**
 * Rate limits kept in Redis, so every api process shares them: requests per client per minute, and
 * failed authentications per remote address (a brute-force guess costs a slot too). Over the limit:
 * 429 with Retry-After. If Redis cannot answer, the request is refused (503), never let through.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { GatewayError } from '../errors/index.js';

export interface RateLimitOptions {
  redis: Redis;
  prefix: string;
  /** Requests per client per minute. */
  perClientPerMinute: number;
  /** Failed authentications per remote address per minute before that address is refused. */
  authFailuresPerMinute: number;
}

export class RateLimits {
  private readonly perClient: RateLimiterRedis;
  private readonly authFailures: RateLimiterRedis;

  constructor(o: RateLimitOptions) {
    this.perClient = new RateLimiterRedis({ storeClient: o.redis, keyPrefix: `${o.prefix}:rl:client`, points: o.perClientPerMinute, duration: 60 });
    this.authFailures = new RateLimiterRedis({
      storeClient: o.redis,
      keyPrefix: `${o.prefix}:rl:authfail`,
      points: o.authFailuresPerMinute,
      duration: 60,
      blockDuration: 60,
    });
  }

  /** Before authentication: an address that kept failing is refused without looking at its token. */
  guardAddress(): RequestHandler {
    return async (req: Request, res: Response, next: NextFunction) => {
      try {
        const state = await this.authFailures.get(addressOf(req));
        if (state && state.remainingPoints <= 0) return next(limited(res, state.msBeforeNext));
        next();
      } catch (err) {
        next(unavailable(err));
      }
    };
  }

  async authFailed(req: Request): Promise<void> {
    await this.authFailures.consume(addressOf(req)).catch(() => undefined);
  }

  /** After authentication: each client has its own budget. */
  perClientLimit(): RequestHandler {
    return async (req: Request, res: Response, next: NextFunction) => {
      try {
        const r = await this.perClient.consume(req.client!.id);
        res.setHeader('RateLimit-Remaining', String(r.remainingPoints));
        next();
      } catch (err) {
        if (err instanceof RateLimiterRes) return next(limited(res, err.msBeforeNext));
        next(unavailable(err));
      }
    };
  }
}

function addressOf(req: Request): string {
  return req.ip ?? req.socket.remoteAddress ?? 'unknown';
}

function limited(res: Response, msBeforeNext: number): GatewayError {
  res.setHeader('Retry-After', String(Math.max(1, Math.ceil(msBeforeNext / 1000))));
  return new GatewayError('rate_limited', 'Too many requests; retry after the time given in Retry-After');
}

function unavailable(err: unknown): GatewayError {
  return new GatewayError('store_unavailable', 'The gateway store is unavailable; try again shortly', undefined, { cause: err });
}
