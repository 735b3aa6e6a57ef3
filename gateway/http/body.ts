/** Request-body and method helpers shared by every route file. */
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { GatewayError } from '../errors/index.js';

/** Parses a JSON body within `limit` bytes (after decompression); any other content type is a 415. */
export function jsonBody(limit: number): RequestHandler {
  const parse = express.json({ limit, strict: true, type: 'application/json' });
  return (req: Request, res: Response, next: NextFunction) => {
    if (!req.is('application/json')) {
      next(new GatewayError('unsupported_media_type', 'The request body must be application/json'));
      return;
    }
    parse(req, res, next);
  };
}

export const PGP = 'application/pgp-encrypted';

/**
 * JSON, or the same JSON as an armored OpenPGP message (signed by the sender, encrypted to the
 * gateway), within `limit` bytes; any other content type is a 415.
 */
export function jsonOrArmoredBody(limit: number): RequestHandler {
  const json = express.json({ limit, strict: true, type: 'application/json' });
  const armored = express.text({ limit, type: PGP, defaultCharset: 'utf-8' });
  return (req: Request, res: Response, next: NextFunction) => {
    if (req.is('application/json')) json(req, res, next);
    else if (req.is(PGP)) armored(req, res, next);
    else next(new GatewayError('unsupported_media_type', `The request body must be application/json or ${PGP}`));
  };
}

/** Answers 405 with an Allow header. */
export function notAllowed(allow: string): RequestHandler {
  return (_req: Request, res: Response, next: NextFunction) => {
    res.setHeader('Allow', allow);
    next(new GatewayError('method_not_allowed', `Only ${allow} is allowed on this route`));
  };
}
