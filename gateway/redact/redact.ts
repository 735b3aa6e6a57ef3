/**
 * Apply a decision's plan to a dossier: the packet's plaintext body. Pure (no I/O, no clock).
 *
 *  - `schema` is always copied;
 *  - every other field comes out only through the compiled allowlist projection (projection.ts);
 *  - excluded subjects (plan.subjects[i] null, or missing) are absent;
 *  - `subjects[].id` always becomes the subject's packet ref (ctx.refs), never the dossier's own id;
 *  - `subjects[].associates[]` items pointing at an excluded or unknown subject are dropped, the others
 *    have their `subject` mapped to that subject's ref;
 *  - an address, vehicle, business or location derived from an intelligence item (`derivedFrom`) is
 *    absent unless that item is in this packet (provenance.ts); `withheld` says which and why;
 *  - `disclosed` lists the distinct (path, operation) pairs actually emitted: paths, never values.
 */
import { GatewayError } from '../errors/index.js';
import type { Dossier } from '../dossier/types.js';
import { parseDateTimeUtc, type CalendarDate } from '../policy/dates.js';
import { ASSOCIATE_SUBJECT, isSubjectPath, SUBJECT_ID, SUBJECTS } from '../policy/paths.js';
import type { Operation, Plan } from '../policy/types.js';
import { Disclosures, Recorder, type ProjectionEnv } from './disclosures.js';
import { compileFields, compileProjection, intelligenceProbe } from './projection.js';
import { Provenance, type Withheld } from './provenance.js';
import { MIN_PSEUDONYM_KEY_BYTES } from './values.js';

interface RedactContext {
  /** Dossier subject id → opaque packet-scoped ref. */
  refs: Map<string, string>;
  /** The recipient's own pseudonymisation key (at least 16 bytes). */
  pseudonymKey: Buffer;
}

export interface Disclosure {
  path: string;
  op: string;
}

interface RedactResult {
  dossier: Record<string, unknown>;
  disclosed: Disclosure[];
  /** The items left out because the intelligence they were derived from is (input indexes; for the trace). */
  withheld: Withheld[];
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Frozen dossier parts of plans already checked (the Decider's plans are frozen and shared). */
const checkedDossierOps = new WeakSet<object>();

function checkPlan(plan: Plan): void {
  if (!isPlainObject(plan) || !isPlainObject(plan.dossier) || !Array.isArray(plan.subjects)) {
    throw new GatewayError('internal', 'redact: malformed plan');
  }
  if (checkedDossierOps.has(plan.dossier)) return;
  for (const path of Object.keys(plan.dossier)) {
    if (isSubjectPath(path)) throw new GatewayError('internal', `redact: subject path ${path} in the dossier part of a plan`);
  }
  // A frozen object's keys cannot change, so the check holds for good.
  if (Object.isFrozen(plan.dossier)) checkedDossierOps.add(plan.dossier);
}

/** The projection environment of one redaction. */
class Env implements ProjectionEnv {
  readonly disclosed = new Disclosures();
  private date: CalendarDate | undefined | null = null;
  readonly provenance: Provenance;
  constructor(
    readonly pseudonymKey: Buffer,
    private readonly createdAt: unknown,
    readonly refs: ReadonlyMap<string, string>,
    disclosedIntelligence: (env: ProjectionEnv) => ReadonlySet<string>,
  ) {
    this.provenance = new Provenance(() => disclosedIntelligence(this));
  }
  /** createdAt's UTC date, parsed on first use: only age bands need it. */
  get at(): CalendarDate | undefined {
    if (this.date === null) this.date = parseDateTimeUtc(this.createdAt);
    return this.date;
  }
}

/** A sink that keeps nothing: what the intelligence probe emits is not the packet's. */
const DISCARD = { set: () => undefined };

/**
 * The ids of the intelligence items this packet holds (in any form), found by running each included
 * subject's own intelligence projection on each item. An id also carried by an item that is not in the
 * packet counts as withheld: a `derivedFrom` cannot say which of the two it meant.
 */
function disclosedIntelligence(subjectsIn: unknown[], plan: Plan, env: ProjectionEnv): ReadonlySet<string> {
  const given = new Set<string>();
  const withheld = new Set<string>();
  const probeEnv: ProjectionEnv = {
    pseudonymKey: env.pseudonymKey,
    get at() {
      return env.at;
    },
    disclosed: DISCARD,
    ...(env.refs ? { refs: env.refs } : {}),
  };
  for (let i = 0; i < subjectsIn.length; i++) {
    const s: unknown = subjectsIn[i];
    if (!isPlainObject(s) || !Array.isArray(s.intelligence)) continue;
    const ops = plan.subjects[i];
    const probe = ops == null || typeof s.id !== 'string' ? undefined : intelligenceProbe(ops);
    for (const item of s.intelligence as unknown[]) {
      if (!isPlainObject(item) || typeof item.id !== 'string') continue;
      (probe?.(item, probeEnv) === true ? given : withheld).add(item.id);
    }
  }
  for (const id of withheld) given.delete(id);
  return given;
}

const schemaKept = new Recorder('schema', 'keep');
const subjectRef = new Recorder(SUBJECT_ID, 'ref');

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
  for (let i = 0; i < subjectsIn.length; i++) {
    const s: unknown = subjectsIn[i];
    if (plan.subjects[i] == null || !isPlainObject(s) || typeof s.id !== 'string') continue;
    const ref = ctx.refs.get(s.id);
    if (typeof ref !== 'string' || ref.length === 0) {
      throw new GatewayError('internal', `redact: no packet ref for included subject #${i}`);
    }
    included.set(s.id, ref);
  }

  const env = new Env(ctx.pseudonymKey, input.createdAt, included, (e) => disclosedIntelligence(subjectsIn, plan, e));
  const result: Record<string, unknown> = {};
  if (typeof input.schema === 'string') {
    result.schema = input.schema;
    schemaKept.record(env);
  }

  // The dossier-level fields, in plan order; put in the dossier's own order below.
  const top = compileFields(plan.dossier);
  const topValues = top.values(input, env);

  const subjectsOut: Record<string, unknown>[] = [];
  for (let i = 0; i < subjectsIn.length; i++) {
    const s = subjectsIn[i];
    const ops = plan.subjects[i];
    if (ops == null || !isPlainObject(s) || typeof s.id !== 'string') continue;
    checkSubjectOps(ops);
    const out: Record<string, unknown> = { id: included.get(s.id) as string };
    env.provenance.subject = i;
    compileProjection(ops, SUBJECTS)(s, env, out); // the subject's fields, after its ref
    subjectsOut.push(out);
  }
  env.provenance.subject = -1;
  if (subjectsOut.length > 0) subjectRef.record(env);

  // The dossier's own top-level order, schema first.
  for (const k in input) {
    if (k === 'subjects') {
      if (subjectsOut.length > 0) result.subjects = subjectsOut;
    } else if (k !== 'schema') {
      const i = top.index.get(k);
      const v = i === undefined ? undefined : topValues[i];
      if (v !== undefined) result[k] = v;
    }
  }

  return { dossier: result, disclosed: env.disclosed.list(), withheld: env.provenance.withheld };
}
