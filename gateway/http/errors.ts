/** The only place that knows HTTP statuses: maps GatewayError codes to responses, never leaking internals. */
import type { ErrorRequestHandler, Request, Response } from 'express';
import { GatewayError, type ErrorCode } from '../errors/index.js';

const STATUS: Record<ErrorCode, number> = {
  invalid_json: 400,
  schema_violation: 400,
  partner_unknown: 400,
  defer_not_statutory: 400,
  idempotency_key_invalid: 400,
  path_invalid: 400,
  classification_refused: 422,
  idempotency_key_reused: 422,
  unsupported_media_type: 415,
  payload_too_large: 413,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  rate_limited: 429,
  config_invalid: 500,
  policy_invalid: 500,
  policy_unsigned: 500,
  key_invalid: 500,
  candidate_invalid: 422,
  agreement_expired: 409,
  agreement_not_in_force: 409,
  classification_above_agreement: 409,
  handling_not_accepted: 409,
  handling_conditions_not_honoured: 409,
  recipient_key_invalid: 409,
  no_shareable_subjects: 409,
  no_agreement: 409,
  packet_mismatch: 400,
  packet_expired: 410,
  unknown_subject_ref: 422,
  hit_kind_not_permitted: 422,
  signature_invalid: 400,
  signature_required: 403,
  packet_is_recall_notice: 409,
  nothing_to_approve: 409,
  envelope_invalid: 400,
  envelope_unknown: 404,
  envelope_wrong_peer: 403,
  source_key_invalid: 409,
  query_invalid: 400,
  dossier_not_settled: 409,
  dossier_recalled: 409,
  store_unavailable: 503,
  audit_unavailable: 503,
  crypto_failed: 500,
  dossier_unreadable: 500,
  record_tampered: 500,
  internal: 500,
};

export function statusOf(code: ErrorCode): number {
  return STATUS[code] ?? 500;
}

function sendError(req: Request, res: Response, err: GatewayError): void {
  const status = statusOf(err.code);
  if (status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="cordon"');
  if (status === 503) res.setHeader('Retry-After', '5');
  res.status(status).json({
    error: {
      code: err.code,
      // 5xx messages are generic: the cause goes to the log, never to the client.
      message: status >= 500 && err.code !== 'audit_unavailable' && err.code !== 'store_unavailable' ? 'Internal error' : err.message,
      ...(err.details && status < 500 ? { details: err.details } : {}),
      requestId: String(req.id ?? ''),
    },
  });
}

/** body-parser errors carry the raw body (`err.body`): only the type is read, the object is never logged. */
function fromBodyParser(err: { type?: unknown; status?: unknown }): GatewayError | undefined {
  switch (err.type) {
    case 'entity.parse.failed':
      return new GatewayError('invalid_json', 'The request body is not valid JSON');
    case 'entity.too.large':
      return new GatewayError('payload_too_large', 'The request body is larger than the gateway accepts');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new GatewayError('unsupported_media_type', 'The request body encoding or charset is not supported');
    case 'request.aborted':
    case 'request.size.invalid':
    case 'stream.encoding.set':
    case 'stream.not.readable':
      return new GatewayError('invalid_json', 'The request body could not be read');
    default:
      return undefined;
  }
}

function isRedisDown(err: unknown): boolean {
  const msg = (err as Error | undefined)?.message ?? '';
  const name = (err as Error | undefined)?.name ?? '';
  return (
    name === 'MaxRetriesPerRequestError' ||
    /Stream isn't writeable|Connection is closed|ECONNREFUSED|enableOfflineQueue|Command timed out/.test(msg)
  );
}

/**
 * The router decodes route parameters with decodeURIComponent, which throws URIError on a malformed
 * `%`-escape (`/v1/packets/%E0%A4%A`): the client's mistake, answered 400 naming the path segment,
 * not an internal error with a stack trace in the log. The segment is not echoed (it is free input).
 */
function fromBadEscape(req: Request): GatewayError {
  const segments = req.path.split('/');
  const bad = segments.findIndex((s) => {
    try {
      decodeURIComponent(s);
      return false;
    } catch {
      return true;
    }
  });
  const where = bad < 0 ? 'the path' : `path segment ${bad}`;
  return new GatewayError('path_invalid', 'The request path has a malformed %-escape', [{ path: bad < 0 ? 'path' : `path[${bad}]`, message: `${where} is not valid percent-encoding (UTF-8)` }]);
}

export const errorHandler: ErrorRequestHandler = (err, req, res, _next) => {
  let gw: GatewayError;
  if (err instanceof GatewayError) gw = err;
  else if (err instanceof URIError) gw = fromBadEscape(req);
  else if (err && typeof err === 'object' && 'type' in err && fromBodyParser(err)) gw = fromBodyParser(err)!;
  else if (isRedisDown(err)) gw = new GatewayError('store_unavailable', 'The gateway store is unavailable; try again shortly');
  else gw = new GatewayError('internal', 'Internal error');
  if (statusOf(gw.code) >= 500) {
    const cause = err instanceof GatewayError ? (err.cause as Error | undefined) : (err as Error);
    req.log?.error({ code: gw.code, err: { name: cause?.name, message: cause?.message, stack: cause?.stack } }, 'request failed');
  }
  if (res.headersSent) return;
  sendError(req, res, gw);
};
