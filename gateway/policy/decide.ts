/**
 * Deciding what one partner may receive of one dossier. Pure apart from json-rules-engine's promises:
 * no I/O, no clock (callers pass `now`).
 *
 * 1. The agreement: in force, not past its review date, classification and handling code accepted
 *    (agreement.ts, checkAgreement). A failing agreement blocks the delivery.
 * 2. The rules, in json-rules-engine, on plain precomputed facts (facts.ts): dossier-scope rules once
 *    per dossier, subject-scope rules once per subject. One Engine per (revision, partner, scope),
 *    compiled on first use (engines.ts); an Engine never runs two documents at once (a per-engine promise queue),
 *    because its run status is shared and a concurrent run can skip rules: a silent leak. Outcomes
 *    (which rules fired) are cached by (revision, partner, scope, facts) in a bounded LRU map, and
 *    whole-dossier outcomes per partner by all the dossier's facts (Decider.outcome).
 * 3. The plan: base allowlist ∩ gateway constraints ∩ the fired rules' `set`s, the most restrictive
 *    operation winning per path, rules only tightening (plan.ts, restrictiveness.ts); subjects a rule
 *    excludes are null. Every subject excluded → block `no_shareable_subjects`.
 * 4. The trace: each path's winning operation and the rule that set it (`base`, `gateway` or a rule
 *    name), and each exclusion. A rule that fired on facts the dossier does not establish says so
 *    ("excluded: age unknown (isMinor)"), and a subject made a minor by a childhood flag gets a note
 *    ("treated as a minor: flag child-criminal-exploitation"). When unknown facts are why nothing can
 *    be shared, the block message names them.
 */
import { GatewayError } from '../errors/index.js';
import type { Dossier, Subject } from '../dossier/types.js';
import { checkAgreement } from './agreement.js';
import { applyHandling, checkHandlingConditions, withheldByHandling, withheldTrace } from './handling.js';
import { LruCache, RuleRunner, type Fired } from './engines.js';
import {
  childFlag,
  dossierDate,
  dossierFacts,
  factValues,
  subjectFacts,
  subjectOwnFacts,
  unknownFactsText,
  type DossierFacts,
  type SubjectFacts,
  type SubjectOwnFacts,
} from './facts.js';
import { gatewayFor } from './non-competent.js';
import { isSubjectPath, SUBJECTS } from './paths.js';
import { basePlan, clonePlan, normalise, tighten, toOps, type WorkingPlan } from './plan.js';
import { describeOp } from './restrictiveness.js';
import type { Decision, GatewayRules, Operation, PartnerPolicy, Plan, PolicySet, Rule, TraceEntry } from './types.js';

// ---- plans -------------------------------------------------------------------------------------

interface CompiledPartner {
  policy: PartnerPolicy;
  rules: Map<string, Rule>;
  dossierRunner?: RuleRunner;
  subjectRunner?: RuleRunner;
  gateway: GatewayRules; // for this recipient: nonCompetentFilter included unless it is a competent authority
  /** Base allowlist with the gateway constraints applied. */
  base: WorkingPlan;
  /** Combined plans by the names of the rules that fired. */
  plans: LruCache<CachedPlan>;
  /** Whole outcomes by the digest of every fact of a dossier (see Decider.outcome). */
  outcomes: LruCache<CachedOutcome[]>;
}

interface CachedPlan {
  ops: Record<string, Operation>;
  trace: Array<Omit<TraceEntry, 'scope' | 'subject' | 'subjectIndex'>>;
}

/** A decision without the agreement check and the subjects' ids (see Decider.outcome). Shared: never modified. */
interface Outcome {
  top: CachedPlan;
  /** By subject index: the rules that exclude it, whether it lacks an id, and its plan when included. */
  subjects: Array<{ excluding: Rule[]; noId: boolean; cached?: CachedPlan; unknown: Fired['unknown']; note?: string }>;
  /** The rules that fired, in policy order. */
  fired: string[];
  /** Dossier rules that fired on unknown facts (see engines.ts). */
  unknown: Fired['unknown'];
}

const NO_RULES: Fired = { names: [], unknown: new Map() };

/** Why a rule fired without its condition known to hold: `excluded: age unknown (isMinor)`. */
function unknownNote(verb: string, facts: readonly string[]): string {
  return `${verb}: ${facts.length === 0 ? 'treated as a minor' : unknownFactsText(facts)}`;
}

/** "treated as a minor: flag …", when a childhood flag made the subject a minor. */
function minorNote(subject: unknown, own: SubjectOwnFacts): string | undefined {
  const flag = childFlag(own.vulnerabilities);
  if (flag === undefined) return undefined;
  const dob = (subject as { dateOfBirth?: unknown } | null)?.dateOfBirth;
  const why = dob === undefined ? 'no date of birth' : own.ageKnown ? undefined : `date of birth ${JSON.stringify(dob)} overruled`;
  return `treated as a minor: flag ${flag}${why === undefined ? '' : ` (${why})`}`;
}

/** An outcome and the fact values it was decided on (see Decider.outcome). */
interface CachedOutcome {
  values: unknown[];
  outcome: Outcome;
}

/** Different fact values with the same digest kept at once; more are very unlikely. */
const DIGEST_BUCKET = 4;

/**
 * A 32-bit digest of fact values (strings by length and end characters: cheap, and enough to tell most
 * dossiers apart). Only narrows the search: a cached outcome is used only when all values are equal.
 */
function digest(values: unknown[]): string {
  let h = values.length;
  for (const v of values) {
    let x: number;
    if (typeof v === 'string') x = v.length === 0 ? 0 : (v.length << 16) ^ (v.charCodeAt(0) << 8) ^ v.charCodeAt(v.length - 1);
    else if (typeof v === 'number') x = Math.round(v * 1000) | 0;
    else x = v === true ? 1 : v === false ? 2 : 3;
    h = Math.imul(h ^ x, 0x01000193);
  }
  return (h >>> 0).toString(36);
}

function sameValues(a: unknown[], b: unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A subject's own id, or undefined when it has none (it is then excluded). */
function subjectId(s: unknown): string | undefined {
  return s !== null && typeof s === 'object' && typeof (s as { id?: unknown }).id === 'string' ? (s as { id: string }).id : undefined;
}

export function applyGateway(plan: WorkingPlan, gateway: GatewayRules, only?: (p: string) => boolean): void {
  for (const [p, where] of Object.entries(gateway.alwaysFilter)) {
    if (only === undefined || only(p)) tighten(plan, p, { op: 'filter', where }, 'gateway');
  }
  for (const p of gateway.neverShare) if (only === undefined || only(p)) tighten(plan, p, { op: 'strip' }, 'gateway');
}

export function applyRules(plan: WorkingPlan, rules: Rule[], only?: (p: string) => boolean): void {
  for (const rule of rules) {
    for (const [p, op] of Object.entries(rule.then.set ?? {})) if (only === undefined || only(p)) tighten(plan, p, op, rule.name);
  }
}

function finish(plan: WorkingPlan): CachedPlan {
  const final = normalise(plan);
  const trace: CachedPlan['trace'] = [];
  for (const [path, e] of final) {
    const t: CachedPlan['trace'][number] = { rule: e.rule, path, op: describeOp(e.op) };
    if (e.note !== undefined) t.note = e.note;
    trace.push(t);
  }
  // Shared by every decision with the same outcome: frozen so that no consumer can change another's plan.
  return { ops: deepFreeze(toOps(final)), trace };
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

const OUTCOME_CACHE_SIZE = 10_000;
const PLAN_CACHE_SIZE = 1_000;
const DOSSIER_CACHE_SIZE = 256;

interface DeciderOptions {
  /** Maximum cached rule outcomes (default 10,000). */
  outcomeCacheSize?: number;
  /** Maximum cached whole-dossier outcomes per partner (default 256; 0 turns that cache off). */
  dossierCacheSize?: number;
}

export class Decider {
  private readonly compiled = new Map<string, CompiledPartner>();
  private readonly outcomes: LruCache<Promise<Fired>>;
  private readonly dossierCacheSize: number;

  constructor(
    private readonly set: PolicySet,
    options: DeciderOptions = {},
  ) {
    this.outcomes = new LruCache(options.outcomeCacheSize ?? OUTCOME_CACHE_SIZE);
    this.dossierCacheSize = options.dossierCacheSize ?? DOSSIER_CACHE_SIZE;
  }

  get revision(): string {
    return this.set.revision;
  }

  /** The set it decides with (policy tests choose recipients with it). */
  get policySet(): PolicySet {
    return this.set;
  }

  /** The policy of a recipient of this set (for the packet header policy tests build). */
  policyOf(partnerId: string): PartnerPolicy | undefined {
    return this.set.partners.get(partnerId);
  }

  private partner(id: string): CompiledPartner {
    let c = this.compiled.get(id);
    if (c !== undefined) return c;
    const policy = this.set.partners.get(id);
    if (policy === undefined) throw new GatewayError('not_found', `No policy for partner ${JSON.stringify(id)}`);
    const gateway = gatewayFor(this.set.gateway, policy.partner.competentAuthority);
    const base = basePlan(policy.fields);
    applyGateway(base, gateway);
    applyHandling(base, policy, this.set.gateway);
    const dossierRules = policy.rules.filter((r) => r.when === 'dossier');
    const subjectRules = policy.rules.filter((r) => r.when === 'subject');
    c = {
      policy,
      rules: new Map(policy.rules.map((r) => [r.name, r])),
      gateway,
      base,
      plans: new LruCache(PLAN_CACHE_SIZE),
      outcomes: new LruCache(this.dossierCacheSize),
    };
    if (dossierRules.length > 0) c.dossierRunner = new RuleRunner(dossierRules);
    if (subjectRules.length > 0) c.subjectRunner = new RuleRunner(subjectRules);
    this.compiled.set(id, c);
    return c;
  }

  private fired(c: CompiledPartner, scope: 'dossier' | 'subject', facts: DossierFacts | SubjectFacts): Promise<Fired> {
    const runner = scope === 'dossier' ? c.dossierRunner : c.subjectRunner;
    if (runner === undefined) return Promise.resolve(NO_RULES);
    // Every fact is in the key, null (unknown) included: JSON keeps null, [] and false apart.
    const key = `${this.set.revision}\u0000${c.policy.partner.id}\u0000${scope}\u0000${JSON.stringify(facts)}`;
    const hit = this.outcomes.get(key);
    if (hit !== undefined) return hit;
    const p = runner.run(facts);
    this.outcomes.set(key, p);
    p.catch(() => this.outcomes.delete(key));
    return p;
  }

  private rulesNamed(c: CompiledPartner, names: string[]): Rule[] {
    return names.map((n) => c.rules.get(n)).filter((r): r is Rule => r !== undefined);
  }

  /** The dossier-level plan (all paths, subjects[] ones included) after the dossier rules. */
  private dossierPlan(c: CompiledPartner, dossierFired: string[]): WorkingPlan {
    const plan = clonePlan(c.base);
    applyRules(plan, this.rulesNamed(c, dossierFired));
    applyGateway(plan, c.gateway);
    applyHandling(plan, c.policy, this.set.gateway);
    return plan;
  }

  private planFor(c: CompiledPartner, dossierFired: string[], subjectFired: string[] | undefined): CachedPlan {
    const key = `${dossierFired.join('\u0001')}\u0000${subjectFired === undefined ? '-' : subjectFired.join('\u0001')}`;
    const hit = c.plans.get(key);
    if (hit !== undefined) return hit;
    let result: CachedPlan;
    if (subjectFired === undefined) {
      result = finish(clonePlan(this.dossierPlan(c, dossierFired), (p) => !isSubjectPath(p)));
    } else {
      const plan = clonePlan(this.dossierPlan(c, dossierFired), isSubjectPath);
      applyRules(plan, this.rulesNamed(c, subjectFired), isSubjectPath);
      applyGateway(plan, c.gateway, isSubjectPath);
      applyHandling(plan, c.policy, this.set.gateway, isSubjectPath);
      result = finish(plan);
    }
    c.plans.set(key, result);
    return result;
  }

  /**
   * Everything a decision depends on but the agreement and the subjects' ids: which rules fired, the
   * plans, the exclusions. Cached whole per partner (and so per revision: a Decider has one) by every
   * fact of the dossier and of each subject and which subjects have an id: a warm decision then costs the
   * facts and one lookup. Facts depend on the dossier only (ages are at its createdAt), never on `now`:
   * the agreement, the one thing checked against `now`, is checked before, on every decision.
   */
  private async outcome(c: CompiledPartner, dossier: Dossier, subjects: unknown[]): Promise<Outcome> {
    const dFacts = dossierFacts(dossier);
    const at = dossierDate(dossier);
    const owns = subjects.map((s) => subjectOwnFacts((s ?? {}) as Subject, at));
    const hasId = subjects.map((s) => subjectId(s) !== undefined);
    const values: unknown[] = [subjects.length];
    factValues(dFacts, values);
    owns.forEach((own, i) => {
      values.push(hasId[i]);
      factValues(own, values);
    });
    const key = digest(values);
    const bucket = c.outcomes.get(key) ?? [];
    const hit = bucket.find((e) => sameValues(e.values, values));
    if (hit !== undefined) return hit.outcome;

    const dFired = await this.fired(c, 'dossier', dFacts);
    const dossierFired = dFired.names;
    const top = this.planFor(c, dossierFired, undefined);
    const perSubject = await Promise.all(
      subjects.map((s, i) => this.fired(c, 'subject', subjectFacts(dossier, (s ?? {}) as Subject, dFacts, at, owns[i]))),
    );
    const outSubjects = subjects.map((s, i): Outcome['subjects'][number] => {
      const { names: fired, unknown } = perSubject[i] ?? NO_RULES;
      const excluding = this.rulesNamed(c, fired).filter((r) => r.then.exclude === true);
      const noId = hasId[i] !== true;
      const note = owns[i] === undefined ? undefined : minorNote(s, owns[i]);
      const entry: Outcome['subjects'][number] = { excluding, noId, unknown, ...(note === undefined ? {} : { note }) };
      if (excluding.length > 0 || noId) return entry;
      return { ...entry, cached: this.planFor(c, dossierFired, fired) };
    });
    const firedNames = new Set([...dossierFired, ...perSubject.flatMap((f) => f.names)]);
    const outcome: Outcome = {
      top,
      subjects: outSubjects,
      fired: c.policy.rules.map((r) => r.name).filter((n) => firedNames.has(n)),
      unknown: dFired.unknown,
    };
    c.outcomes.set(key, [{ values, outcome }, ...bucket].slice(0, DIGEST_BUCKET));
    return outcome;
  }

  async decide(partnerId: string, dossier: Dossier, now: Date = new Date()): Promise<Decision> {
    const c = this.partner(partnerId);
    const revision = this.set.revision;
    const subjects: unknown[] = Array.isArray((dossier as unknown as { subjects?: unknown }).subjects)
      ? (dossier as unknown as { subjects: unknown[] }).subjects
      : [];

    // The agreement, then the dossier's own handling-condition codes (handling.ts).
    const agreementBlock = checkAgreement(c.policy.agreement, dossier, now) ?? checkHandlingConditions(c.policy, dossier, this.set.gateway);
    if (agreementBlock !== undefined) {
      return { partner: partnerId, revision, block: agreementBlock, plan: { dossier: {}, subjects: subjects.map(() => null) }, trace: [], fired: [] };
    }

    const outcome = await this.outcome(c, dossier, subjects);
    const { top } = outcome;
    const plan: Plan = { dossier: top.ops, subjects: outcome.subjects.map((s) => s.cached?.ops ?? null) };
    // Who each subject is, for the trace (built only if someone reads it: the worker never does).
    const ids = subjects.map(subjectId);

    // A rule's entries say when it fired on unknown facts (its own note, if any, comes first).
    const noted = <T extends { rule: string; note?: string }>(t: T, unknown: Fired['unknown']): T => {
      const facts = unknown.get(t.rule) ?? outcome.unknown.get(t.rule);
      if (facts === undefined) return t;
      const why = unknownNote('applied', facts);
      return { ...t, note: t.note === undefined ? why : `${t.note}; ${why}` };
    };
    const buildTrace = (): TraceEntry[] => {
      const trace: TraceEntry[] = top.trace.map((t) => noted({ ...t, scope: 'dossier' }, outcome.unknown));
      outcome.subjects.forEach(({ excluding, noId, cached, unknown, note }, i) => {
        const id = ids[i];
        const who: Pick<TraceEntry, 'subject' | 'subjectIndex'> = id === undefined ? { subjectIndex: i } : { subject: id, subjectIndex: i };
        if (note !== undefined) trace.push({ rule: 'facts', scope: 'subject', ...who, path: SUBJECTS, op: 'note', note });
        for (const r of excluding) {
          const facts = unknown.get(r.name);
          const entry: TraceEntry = { rule: r.name, scope: 'subject', ...who, path: SUBJECTS, op: 'exclude' };
          trace.push(facts === undefined ? entry : { ...entry, note: unknownNote('excluded', facts) });
        }
        if (noId) trace.push({ rule: 'gateway', scope: 'subject', ...who, path: SUBJECTS, op: 'exclude', note: 'subject has no id' });
        if (cached) for (const t of cached.trace) trace.push(noted({ ...t, scope: 'subject', ...who }, unknown));
      });
      trace.push(...withheldTrace(withheld(), ids)); // what handling conditions withhold, and why
      return trace;
    };
    let trace: TraceEntry[] | undefined;
    let held: NonNullable<Decision['withheld']> | undefined;
    const withheld = () => (held ??= withheldByHandling(dossier, plan, c.policy, this.set.gateway));
    const decision = { partner: partnerId, revision, plan, fired: [...outcome.fired] } as Decision;
    Object.defineProperty(decision, 'withheld', { enumerable: false, configurable: true, get: withheld });
    Object.defineProperty(decision, 'trace', {
      enumerable: true,
      configurable: true,
      get: () => (trace ??= buildTrace()),
      set: (value: TraceEntry[]) => {
        trace = value;
      },
    });
    if (!plan.subjects.some((s) => s !== null)) {
      decision.block = {
        reason: 'no_shareable_subjects',
        message: `No subject of this dossier may be shared with ${c.policy.partner.name} under its policy${unknownExclusions(outcome)}`,
      };
    }
    return decision;
  }
}

/**
 * For the block message: the subjects excluded only by rules that fired on unknown facts, and those
 * facts (`: 2 of 3 subjects excluded because age unknown (isMinor)`), or '' when unknown facts are not why.
 */
function unknownExclusions(outcome: Outcome): string {
  const facts = new Set<string>();
  let count = 0;
  for (const s of outcome.subjects) {
    if (s.noId || s.excluding.length === 0 || !s.excluding.every((r) => s.unknown.has(r.name))) continue;
    count++;
    for (const r of s.excluding) for (const f of s.unknown.get(r.name) ?? []) facts.add(f);
  }
  if (count === 0 || facts.size === 0) return '';
  const n = outcome.subjects.length;
  return `: ${count} of ${n} subject${n === 1 ? '' : 's'} excluded because ${unknownFactsText([...facts])}`;
}
