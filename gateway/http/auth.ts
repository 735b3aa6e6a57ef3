/** Bearer authentication and role checks. Failures are audited without the token. */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { AuditLog } from '../audit/log.js';
import type { Client, ClientRegistry, ClientRole } from '../config/clients.js';
import { GatewayError } from '../errors/index.js';

declare module 'express-serve-static-core' {
  interface Request {
    client?: Client;
  }
}

const BEARER = /^Bearer ([A-Za-z0-9._~+/=-]{1,256})$/;

export function authenticate(registry: () => ClientRegistry, audit: AuditLog, onFailure?: (req: Request) => Promise<void>): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction) => {
    const header = req.headers.authorization;
    const match = header ? BEARER.exec(header) : null;
    const client = match ? registry().authenticate(match[1]!) : undefined;
    if (!client) {
      void audit
        .append({ kind: 'auth_failure', action: 'auth.failed', reason: header ? 'unknown_token' : 'no_token', route: `${req.method} ${req.baseUrl}${req.route?.path ?? ''}`, remote: req.ip })
        .catch(() => undefined);
      void onFailure?.(req);
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
