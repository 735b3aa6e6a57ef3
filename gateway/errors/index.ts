/**
 * One error class for the whole gateway. Every failure carries a stable snake_case code from the
 * registry below; only http/ maps codes to HTTP statuses, so domain code never thinks in HTTP.
 */
export const ERROR_CODES = [
  // input
  'invalid_json',
  'unsupported_media_type',
  'payload_too_large',
  'schema_violation',
  'classification_refused',
  'idempotency_key_invalid',
  'idempotency_key_reused',
  'path_invalid',
  'partner_unknown',
  'defer_not_statutory',
  // authentication and authorisation
  'unauthenticated',
  'forbidden',
  // objects and routes
  'not_found',
  'method_not_allowed',
  'rate_limited',
  // configuration
  'config_invalid',
  'policy_invalid',
  'policy_unsigned',
  'key_invalid',
  // governance console
  'candidate_invalid',
  // delivery decisions
  'agreement_expired',
  'agreement_not_in_force',
  'classification_above_agreement',
  'handling_not_accepted',
  'handling_conditions_not_honoured',
  'recipient_key_invalid',
  'no_shareable_subjects',
  'no_agreement',
  // hits
  'packet_mismatch',
  'packet_expired',
  'unknown_subject_ref',
  'hit_kind_not_permitted',
  'signature_invalid',
  'signature_required',
  'packet_is_recall_notice',
  // match first, then disclose
  'nothing_to_approve',
  // exchange between gateways
  'envelope_invalid',
  'envelope_unknown',
  'envelope_wrong_peer',
  'source_key_invalid',
  // audit, retention and recall
  'query_invalid',
  'dossier_not_settled',
  'dossier_recalled',
  // infrastructure
  'store_unavailable',
  'audit_unavailable',
  'crypto_failed',
  'dossier_unreadable',
  'record_tampered',
  'internal',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorDetail {
  /** JSON Pointer or dotted path of the offending input, when there is one. */
  path?: string;
  message: string;
  [key: string]: unknown;
}

export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly details?: ErrorDetail[];

  constructor(code: ErrorCode, message: string, details?: ErrorDetail[], options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GatewayError';
    this.code = code;
    this.details = details;
  }
}

export function isGatewayError(err: unknown): err is GatewayError {
  return err instanceof GatewayError;
}
