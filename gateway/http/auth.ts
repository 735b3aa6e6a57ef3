/**
 * Bearer authentication and role checks. Failures are audited without the token, one record per
 * address per rate-limit window (the first failure opens it; the rest are counted in Redis, not
 * written), so an unauthenticated sender cannot grow the trail without bound.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { AuditLog } from '../audit/log.js';
import type { Client, ClientRegistry, ClientRole } from '../config/clients.js';
import { GatewayError } from '../errors/index.js';
import { rateLimited, type RateCheck, type RateLimits } from './ratelimit.js';

declare module 'express-serve-static-core' {
  interface Request {
    client?: Client;
  }
}

const BEARER = /^Bearer ([A-Za-z0-9._~+/=-]{1,256})$/;

/**
 * Checks the bearer token (in memory), then, with rate limits, settles both budgets in one Redis call:
 * a request without a valid token costs its address a slot, and once the address has used up its
 * failed attempts such requests get 429; a valid client spends one request of its own budget and is
 * never refused for its address's failures (behind a proxy that address is everyone's).
 */
export function authenticate(registry: () => ClientRegistry, audit: AuditLog, limits?: RateLimits): RequestHandler {
  return async (req: Request, res: Response, next: NextFunction) => {
    const header = req.headers.authorization;
    const match = header ? BEARER.exec(header) : null;
    const client = match ? registry().authenticate(match[1]!) : undefined;
    let firstFailureThisWindow = true; // without rate limits there is no window: every failure is recorded
    if (limits) {
      let check: RateCheck;
      try {
        check = await limits.check(req.ip ?? req.socket.remoteAddress ?? 'unknown', client?.id);
      } catch (err) {
        next(err);
        return;
      }
      if (check.outcome === 'blocked' || check.outcome === 'limited') {
        const { error, retryAfter } = rateLimited(check.retryAfterMs);
        res.setHeader('Retry-After', retryAfter);
        next(error);
        return;
      }
      if (check.outcome === 'ok') res.setHeader('RateLimit-Remaining', String(check.remaining));
      if (check.outcome === 'failed') firstFailureThisWindow = check.failures === 1;
    }
    if (!client) {
      if (firstFailureThisWindow) {
        void audit
          .append({ kind: 'auth_failure', action: 'auth.failed', reason: header ? 'unknown_token' : 'no_token', route: `${req.method} ${req.baseUrl}${req.route?.path ?? ''}`, remote: req.ip })
          .catch(() => undefined);
      }
      next(new GatewayError('unauthenticated', header ? 'The bearer token is not valid' : 'A bearer token is required'));
      return;
    }
    req.client = client;
    next();
  };
}

export function requireRole(...roles: ClientRole[]): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction) => {
    if (!req.client || !roles.includes(req.client.role)) {
      next(new GatewayError('forbidden', `This route is for ${roles.join(' or ')} clients`));
      return;
    }
    next();
  };
}
