/**
 * A hook that sees every response as it is sent: method, path, status, headers and body. Off unless a
 * caller of createApp asks for it (the tests check each response against the OpenAPI description), so
 * production never copies a body. The observer runs before the response leaves, so whatever it records
 * is there before the client can act on the answer.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';

export interface ObservedResponse {
  method: string;
  /** The request path, without the query string. */
  path: string;
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: Buffer;
}

export type ResponseObserver = (response: ObservedResponse) => void;

function toBuffer(chunk: unknown, encoding?: unknown): Buffer | undefined {
  if (chunk === undefined || chunk === null || typeof chunk === 'function') return undefined;
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk);
  return Buffer.from(String(chunk), typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
}

export function observeResponses(observer: ResponseObserver): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const chunks: Buffer[] = [];
    const method = req.method;
    const path = req.originalUrl.split('?')[0]!;
    const write = res.write.bind(res) as (...args: unknown[]) => boolean;
    const end = res.end.bind(res) as (...args: unknown[]) => Response;
    res.write = ((...args: unknown[]) => {
      const b = toBuffer(args[0], args[1]);
      if (b) chunks.push(b);
      return write(...args);
    }) as Response['write'];
    res.end = ((...args: unknown[]) => {
      const b = toBuffer(args[0], args[1]);
      if (b) chunks.push(b);
      observer({ method, path, status: res.statusCode, headers: res.getHeaders(), body: Buffer.concat(chunks) });
      return end(...args);
    }) as Response['end'];
    next();
  };
}
