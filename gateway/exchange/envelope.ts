/**
 * The envelope: what one force's gateway sends another. Its plaintext is JSON, `{"envelope": {type,
 * id, from, to, issuedAt, expiresAt, inReplyTo?, policy?, agreement?, enforcesConditions?}, ...body}` (schemas/envelope.schema.json
 * for the header), encrypted to the receiving gateway's pinned key and signed with the sender's.
 * Sealing, opening and the header check live here; what each type carries, in outbound.ts,
 * hits-relay.ts and recall-relay.ts.
 */
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject } from 'ajv';
import { decryptAndVerify, encryptAndSign, type GatewayKey, type RecipientKey } from '../crypto/openpgp.js';
import { GatewayError, type ErrorDetail } from '../errors/index.js';
import type { PeerPolicy } from '../policy/types.js';

/**
 * An envelope older than this (or issued further than CLOCK_SKEW_MS in the future) is refused. The
 * defaults of CORDON_EXCHANGE_FRESHNESS_MS and CORDON_EXCHANGE_CLOCK_SKEW_MS (config/env.ts).
 */
export const FRESHNESS_MS = 10 * 60_000;
export const CLOCK_SKEW_MS = 2 * 60_000;

export interface Freshness {
  freshnessMs: number;
  clockSkewMs: number;
}
const DEFAULT_FRESHNESS: Freshness = { freshnessMs: FRESHNESS_MS, clockSkewMs: CLOCK_SKEW_MS };
const MAX_PLAINTEXT_BYTES = 4 * 1024 * 1024;

export interface EnvelopeHeader {
  type: 'dossier' | 'hits' | 'recall' | 'match' | 'answers';
  id: string;
  from: string;
  to: string;
  issuedAt: string;
  expiresAt: string;
  inReplyTo?: string;
}

/** The decrypted plaintext of an envelope, header unchecked. */
export interface EnvelopeDocument {
  envelope?: Record<string, unknown>;
  dossier?: unknown;
  hits?: unknown;
  recall?: unknown;
  /** A match envelope's subjects: refs and identifiers only (match-out.ts). */
  subjects?: unknown;
  /** An answers envelope's answers, a `cordon.matches/v1` document (match-in.ts). */
  matches?: unknown;
}

const envelopeSchema = JSON.parse(readFileSync(new URL('../../schemas/envelope.schema.json', import.meta.url), 'utf8')) as Record<string, unknown>;
const ajv = new Ajv2020({ strict: true, allErrors: true });
const checkSchema = ajv.compile(envelopeSchema);

/** What each header member must be, as the refusal says it (the same words whichever check failed). */
const MUST: Record<string, string> = {
  type: 'must be "dossier", "hits", "recall", "match" or "answers"',
  id: 'must be an envelope id',
};

/** The order problems are reported in: the header's own, then anything else. */
const ORDER = ['type', 'id', 'from', 'to', 'issuedAt', 'expiresAt', 'inReplyTo'].map((m) => `/envelope/${m}`);

/** Members of a body that travel in the header: `enforcesConditions` is the sender's own vocabulary of handling-condition codes. */
const HEADER_MEMBERS = ['policy', 'agreement', 'enforcesConditions'];

/**
 * Encrypts `body` to the peer's key and signs it: the header gets the body's `policy`, `agreement` and
 * `enforcesConditions` beside its own members, the rest of the body follows the header.
 */
export async function sealEnvelope(
  header: Omit<EnvelopeHeader, 'issuedAt' | 'expiresAt'>,
  key: RecipientKey,
  gatewayKey: GatewayKey,
  body: Record<string, unknown>,
  freshness: Freshness = DEFAULT_FRESHNESS,
): Promise<{ header: EnvelopeHeader; message: string }> {
  const now = new Date();
  const full: EnvelopeHeader = {
    type: header.type,
    id: header.id,
    from: header.from,
    to: header.to,
    issuedAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + freshness.freshnessMs).toISOString(),
    ...(header.inReplyTo !== undefined ? { inReplyTo: header.inReplyTo } : {}),
  };
  const message = await encryptAndSign(JSON.stringify({ envelope: { ...full, ...pick(body, HEADER_MEMBERS) }, ...omit(body, HEADER_MEMBERS) }), key, gatewayKey, now);
  return { header: full, message };
}

/** Decrypts with this gateway's key and verifies against the peer's pinned key; parses the plaintext. */
export async function openEnvelope(armored: unknown, gatewayKey: GatewayKey, peerKey: RecipientKey, peerId: string): Promise<EnvelopeDocument> {
  if (typeof armored !== 'string' || armored.length === 0) throw new GatewayError('signature_invalid', 'The body must be an armored OpenPGP message');
  let data: string;
  try {
    ({ data } = await decryptAndVerify(armored, gatewayKey.privateKey, [peerKey.key]));
  } catch (err) {
    if (err instanceof GatewayError && err.code === 'crypto_failed') {
      throw new GatewayError('signature_invalid', `The envelope could not be decrypted with this gateway's key or is not signed by the pinned key of peer ${peerId}; nothing was stored`, undefined, { cause: err });
    }
    throw err;
  }
  if (Buffer.byteLength(data, 'utf8') > MAX_PLAINTEXT_BYTES) throw new GatewayError('payload_too_large', 'The decrypted envelope is larger than the gateway accepts');
  try {
    return JSON.parse(data) as EnvelopeDocument;
  } catch {
    throw new GatewayError('invalid_json', 'The decrypted envelope is not valid JSON');
  }
}

/**
 * The header against the schema, then what the schema cannot know: it comes from the force of the
 * peer whose credential sent it, is addressed to this gateway's force (`me`, undefined when that is
 * not configured), and is fresh. Every problem is reported at once (`envelope_invalid`).
 */
export function checkHeader(raw: unknown, policy: PeerPolicy, me: string | undefined, now = Date.now(), freshness: Freshness = DEFAULT_FRESHNESS): EnvelopeHeader {
  const problems = new Map<string, string>();
  const add = (path: string, message: string) => {
    if (!problems.has(path)) problems.set(path, message);
  };
  const e = (raw && typeof raw === 'object' && !Array.isArray(raw) ? raw : {}) as Record<string, unknown>;
  if (!checkSchema(e)) for (const err of checkSchema.errors ?? []) schemaProblem(err, e, add);
  if (e.from !== policy.peer.force) add('/envelope/from', `must be "${policy.peer.force}", the force of the peer whose credential sent it`);
  if (me === undefined || e.to !== me) add('/envelope/to', `is addressed to another gateway (this is "${me ?? 'unconfigured'}")`);
  const issued = typeof e.issuedAt === 'string' ? Date.parse(e.issuedAt) : NaN;
  const expires = typeof e.expiresAt === 'string' ? Date.parse(e.expiresAt) : NaN;
  if (!Number.isFinite(issued) || issued > now + freshness.clockSkewMs || issued < now - freshness.freshnessMs) add('/envelope/issuedAt', 'is not fresh (stale, in the future, or missing)');
  if (!Number.isFinite(expires) || expires <= now) add('/envelope/expiresAt', 'has passed');
  if (problems.size) {
    const rank = (path: string) => (ORDER.indexOf(path) + ORDER.length + 1) % (ORDER.length + 1);
    const details: ErrorDetail[] = [...problems].sort(([a], [b]) => rank(a) - rank(b)).map(([path, message]) => ({ path, message }));
    throw new GatewayError('envelope_invalid', 'The envelope is not addressed to this gateway, not fresh, or malformed; nothing was stored', details);
  }
  return e as unknown as EnvelopeHeader;
}

function schemaProblem(err: ErrorObject, e: Record<string, unknown>, add: (path: string, message: string) => void): void {
  const member =
    err.keyword === 'required' ? (err.params as { missingProperty: string }).missingProperty
    : err.keyword === 'additionalProperties' && err.instancePath === '' ? (err.params as { additionalProperty: string }).additionalProperty
    : err.instancePath.split('/')[1];
  if (member === undefined || member === '') return; // the `if` of the inReplyTo rule: reported by its `then`
  if (err.keyword === 'additionalProperties' && err.instancePath === '') return add(`/envelope/${member}`, 'is not allowed in an envelope header');
  if (member === 'inReplyTo') {
    const what =
      e.type === 'recall' ? 'must name the dossier envelope recalled'
      : e.type === 'hits' ? 'must name the dossier envelope the hits answer'
      : e.type === 'answers' ? 'must name the match envelope answered'
      : 'must be an envelope id';
    return add('/envelope/inReplyTo', what);
  }
  const must = MUST[member];
  if (must) return add(`/envelope/${member}`, must);
  // from, to, issuedAt, expiresAt: reported by the checks beside the schema, in their own words.
  if (member === 'from' || member === 'to' || member === 'issuedAt' || member === 'expiresAt') return;
  const where = err.keyword === 'additionalProperties' ? `${err.instancePath}/${(err.params as { additionalProperty: string }).additionalProperty}` : err.instancePath;
  add(`/envelope${where}`, err.keyword === 'additionalProperties' ? 'is not allowed' : (err.message ?? 'is not valid'));
}

export function agreementOf(policy: PeerPolicy) {
  return { reference: policy.agreement.reference, legalBasis: policy.agreement.legalBasis, purpose: policy.agreement.purpose };
}

export function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));
}

function omit(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([k]) => !keys.includes(k)));
}
