/**
 * Apply a decision's plan to a dossier: the packet's plaintext body. Pure (no I/O, no clock).
 *
 *  - `schema` is always copied;
 *  - every other field comes out only through the compiled allowlist projection (projection.ts);
 *  - excluded subjects (plan.subjects[i] null, or missing) are absent;
 *  - `subjects[].id` always becomes the subject's packet ref (ctx.refs), never the dossier's own id;
 *  - `subjects[].associates[]` items pointing at an excluded or unknown subject are dropped, the others
 *    have their `subject` mapped to that subject's ref;
 *  - `disclosed` lists the distinct (path, operation) pairs actually emitted: paths, never values.
 */
import { GatewayError } from '../errors/index.js';
import type { Dossier } from '../intake/types.js';
import { parseDateTimeUtc } from '../policy/dates.js';
import { ASSOCIATE_SUBJECT, isSubjectPath, SUBJECT_ID, SUBJECTS } from '../policy/paths.js';
import type { Operation, Plan } from '../policy/types.js';
import { compileProjection, disclosureKey, type ProjectionEnv } from './projection.js';
import { MIN_PSEUDONYM_KEY_BYTES } from './values.js';

export interface RedactContext {
  /** Dossier subject id → opaque packet-scoped ref. */
  refs: Map<string, string>;
  /** The recipient's own pseudonymisation key (at least 16 bytes). */
  pseudonymKey: Buffer;
}

export interface Disclosure {
  path: string;
  op: string;
}

export interface RedactResult {
  dossier: Record<string, unknown>;
  disclosed: Disclosure[];
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function checkPlan(plan: Plan): void {
  if (!isPlainObject(plan) || !isPlainObject(plan.dossier) || !Array.isArray(plan.subjects)) {
    throw new GatewayError('internal', 'redact: malformed plan');
  }
  for (const path of Object.keys(plan.dossier)) {
    if (isSubjectPath(path)) throw new GatewayError('internal', `redact: subject path ${path} in the dossier part of a plan`);
  }
}

function checkSubjectOps(ops: Record<string, Operation>): void {
  const assoc = ops[ASSOCIATE_SUBJECT];
  if (assoc !== undefined && assoc.op !== 'keep' && assoc.op !== 'strip') {
    throw new GatewayError('internal', `redact: ${ASSOCIATE_SUBJECT} can only be kept (as a ref) or stripped`);
  }
}

export function redact(dossier: Dossier, plan: Plan, ctx: RedactContext): RedactResult {
  checkPlan(plan);
  if (!Buffer.isBuffer(ctx.pseudonymKey) || ctx.pseudonymKey.length < MIN_PSEUDONYM_KEY_BYTES) {
    throw new GatewayError('internal', `redact: the pseudonym key must be at least ${MIN_PSEUDONYM_KEY_BYTES} bytes`);
  }
  const input: Record<string, unknown> = isPlainObject(dossier) ? (dossier as unknown as Record<string, unknown>) : {};
  const subjectsIn = Array.isArray(input.subjects) ? input.subjects : [];

  // The subjects in this packet (the only ones associates may point at): dossier id → packet ref.
  const included = new Map<string, string>();
  subjectsIn.forEach((s, i) => {
    if (plan.subjects[i] == null || !isPlainObject(s) || typeof s.id !== 'string') return;
    const ref = ctx.refs.get(s.id);
    if (typeof ref !== 'string' || ref.length === 0) {
      throw new GatewayError('internal', `redact: no packet ref for included subject #${i}`);
    }
    included.set(s.id, ref);
  });

  const env: ProjectionEnv = { pseudonymKey: ctx.pseudonymKey, at: parseDateTimeUtc(input.createdAt), disclosed: new Map(), refs: included };
  const result: Record<string, unknown> = {};
  if (typeof input.schema === 'string') {
    result.schema = input.schema;
    env.disclosed.set(disclosureKey('schema', 'keep'), 'keep');
  }

  const top = compileProjection(plan.dossier)(input, env);

  const subjectsOut: Record<string, unknown>[] = [];
  for (let i = 0; i < subjectsIn.length; i++) {
    const s = subjectsIn[i];
    const ops = plan.subjects[i];
    if (ops == null || !isPlainObject(s) || typeof s.id !== 'string') continue;
    checkSubjectOps(ops);
    const out: Record<string, unknown> = { id: included.get(s.id) as string };
    const body = compileProjection(ops, SUBJECTS)(s, env);
    if (body !== undefined) for (const k in body) if (k !== 'id') out[k] = body[k];
    subjectsOut.push(out);
  }
  if (subjectsOut.length > 0) env.disclosed.set(disclosureKey(SUBJECT_ID, 'ref'), 'ref');

  // The dossier's own top-level order, schema first.
  for (const k in input) {
    if (k === 'subjects') {
      if (subjectsOut.length > 0) result.subjects = subjectsOut;
    } else if (k !== 'schema' && top !== undefined && Object.hasOwn(top, k)) {
      result[k] = top[k];
    }
  }

  const disclosed: Disclosure[] = [];
  for (const [key, op] of env.disclosed) {
    const path = key.slice(0, key.indexOf('\u0000'));
    disclosed.push({ path, op: path === ASSOCIATE_SUBJECT && op === 'keep' ? 'ref' : op });
  }
  return { dossier: result, disclosed };
}
