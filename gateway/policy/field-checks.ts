/**
 * The semantic checks of one policy file after its schema check: every path exists in the dossier
 * schema, operations fit the field, `keep` only on leaves, nothing listed under a hidden path,
 * neverShare paths are never granted, reliability travels with intelligence, rules are named once and
 * only tighten, agreement dates are real.
 */
import { startOfDayUtc } from './dates.js';
import { checkItemCondition, checkRuleConditions } from './condition-checks.js';
import { isAncestor, isSubjectPath } from './paths.js';
import { isAddressOp, isTerminalOp } from './plan.js';
import { describeOp } from './restrictiveness.js';
import { canonicalPath, getSchemaIndex, opMisfit } from './schema-index.js';
import { loc, type Problems } from './schema-check.js';
import type { SchemaPath } from '../dossier/paths.js';
import type { Condition, GatewayRules, Operation, PartnerPolicy, Rule } from './types.js';

/**
 * Fields that must travel with any item of their array that is shared (DPA 2018 s.38: reliability
 * information goes with every transmission; handling conditions travel with the item). A partner that
 * shares anything of an intelligence item must keep these, and no rule may change them.
 */
const TRAVELS_WITH: Readonly<Record<string, readonly string[]>> = Object.freeze({
  'subjects[].intelligence[]': Object.freeze([
    'subjects[].intelligence[].grading.source',
    'subjects[].intelligence[].grading.intelligence',
    'subjects[].intelligence[].grading.handling',
    'subjects[].intelligence[].handlingConditions',
  ]),
});

// ---- operations --------------------------------------------------------------------------------

function normaliseOp(raw: unknown): Operation {
  if (typeof raw === 'string') return { op: raw } as Operation;
  return structuredClone(raw) as Operation;
}

interface OpContext {
  file: string;
  where: (p: string) => string;
  problems: Problems;
  neverShare: Set<string>;
  /** base fields (grants) or a rule's set (restrictions). */
  kind: 'fields' | 'set';
  scope?: 'dossier' | 'subject';
}

/** Canonicalise and check a map of path → operation; returns the normalised map in schema order. */
export function checkOperations(raw: Record<string, unknown>, ctx: OpContext): Record<string, Operation> {
  const { byPath, order } = getSchemaIndex();
  const entries: Array<[string, Operation]> = [];
  const seen = new Map<string, string>();
  for (const [written, rawOp] of Object.entries(raw)) {
    const where = ctx.where(written);
    const p = canonicalPath(written);
    if (p === undefined) {
      ctx.problems.add(ctx.file, where, `no such field in the dossier schema`);
      continue;
    }
    const prior = seen.get(p);
    if (prior !== undefined) {
      ctx.problems.add(ctx.file, where, `names the same field as ${JSON.stringify(prior)}`);
      continue;
    }
    seen.set(p, written);
    const op = normaliseOp(rawOp);
    const entry = byPath.get(p) as SchemaPath;
    const misfit = opMisfit(p, entry, op);
    if (misfit) {
      ctx.problems.add(ctx.file, where, misfit);
      continue;
    }
    if (ctx.kind === 'set' && ctx.scope === 'subject' && !isSubjectPath(p)) {
      ctx.problems.add(ctx.file, where, 'a subject rule can only set subjects[] fields (use a dossier rule for the rest)');
      continue;
    }
    const banned = op.op === 'strip' ? undefined : [...ctx.neverShare].find((n) => n === p || isAncestor(n, p));
    if (banned !== undefined) {
      const what = banned === p ? 'is on' : `is under ${banned}, which is on`;
      ctx.problems.add(ctx.file, where, `${what} the gateway's neverShare list: it can only be stripped, never ${describeOp(op)}`);
      continue;
    }
    if (isAddressOp(op) && ctx.neverShare.has(`${p}.${op.to}`)) {
      ctx.problems.add(ctx.file, where, `would share ${p}.${op.to}, which is on the gateway's neverShare list`);
      continue;
    }
    const where2 = 'where' in op ? op.where : undefined;
    if (where2 !== undefined) {
      for (const m of checkItemCondition(where2, p)) ctx.problems.add(ctx.file, `${where}.where`, m);
    }
    entries.push([p, op]);
  }
  if (ctx.kind === 'fields') {
    // Nothing may be listed under a path whose operation hides it: the author would believe it shared.
    for (const [p, op] of entries) {
      if (!isTerminalOp(op) && !isAddressOp(op)) continue;
      for (const [q] of entries) {
        if (!isAncestor(p, q)) continue;
        if (isAddressOp(op) && q === `${p}.${op.to}`) continue;
        ctx.problems.add(ctx.file, ctx.where(seen.get(q) ?? q), `is under ${p}, which is ${describeOp(op)}: it would never be shared as listed`);
      }
    }
  }
  for (const [container, companions] of Object.entries(TRAVELS_WITH)) {
    const companionSet = new Set(companions);
    if (ctx.kind === 'set') {
      for (const [p, op] of entries) {
        if (companionSet.has(p) && op.op !== 'keep') {
          ctx.problems.add(ctx.file, ctx.where(seen.get(p) ?? p), `must travel with every shared item of ${container}: strip the whole item instead`);
        }
      }
      continue;
    }
    const shares = entries.some(([p, op]) => isAncestor(container, p) && !companionSet.has(p) && op.op !== 'strip');
    if (!shares) continue;
    for (const c of companions) {
      const op = entries.find(([p]) => p === c)?.[1];
      if (op?.op !== 'keep') {
        ctx.problems.add(ctx.file, ctx.where(c), `must be kept: it travels with every shared item of ${container}`);
      }
    }
  }
  entries.sort((a, b) => (order.get(a[0]) ?? 1e9) - (order.get(b[0]) ?? 1e9));
  return Object.fromEntries(entries);
}

// ---- files of each kind ------------------------------------------------------------------------

export function checkGateway(rel: string, doc: Record<string, unknown>, problems: Problems): GatewayRules {
  const { byPath } = getSchemaIndex();
  const neverShare: string[] = [];
  (doc.neverShare as string[]).forEach((written, i) => {
    const p = canonicalPath(written);
    if (p === undefined) problems.add(rel, loc('neverShare', i), `${JSON.stringify(written)}: no such field in the dossier schema`);
    else neverShare.push(p);
  });
  const alwaysFilter: Record<string, Condition> = {};
  for (const [written, cond] of Object.entries(doc.alwaysFilter as Record<string, Condition>)) {
    const where = loc('alwaysFilter', written);
    const p = canonicalPath(written);
    if (p === undefined) {
      problems.add(rel, where, 'no such field in the dossier schema');
      continue;
    }
    if (byPath.get(p)?.type !== 'array-of-objects') {
      problems.add(rel, where, 'filters apply to arrays of objects');
      continue;
    }
    const ms = checkItemCondition(cond, p);
    for (const m of ms) problems.add(rel, where, m);
    if (ms.length === 0) alwaysFilter[p] = structuredClone(cond);
  }
  const out: GatewayRules = { neverShare, alwaysFilter };
  if (doc.requestChecks !== undefined) out.requestChecks = structuredClone(doc.requestChecks as Record<string, string[]>);
  if (doc.handlingConditions !== undefined) out.handlingConditions = structuredClone(doc.handlingConditions as NonNullable<GatewayRules['handlingConditions']>);
  return out;
}

export function checkAgreementDates(rel: string, agreement: PartnerPolicy['agreement'], problems: Problems): void {
  const from = startOfDayUtc(agreement.inForceFrom);
  const review = startOfDayUtc(agreement.reviewBy);
  if (from === undefined) problems.add(rel, 'agreement.inForceFrom', 'is not a real date');
  if (review === undefined) problems.add(rel, 'agreement.reviewBy', 'is not a real date');
  if (from !== undefined && review !== undefined && review < from) problems.add(rel, 'agreement.reviewBy', 'is before inForceFrom');
}

export function checkRules(rel: string, rawRules: unknown[], neverShare: Set<string>, problems: Problems): Rule[] {
  const rules: Rule[] = [];
  const names = new Set<string>();
  rawRules.forEach((raw, i) => {
    const r = raw as {
      name: string;
      description?: string;
      when: 'dossier' | 'subject';
      conditions: Rule['conditions'];
      unknown?: 'fire' | 'ignore';
      then: { exclude?: boolean; set?: Record<string, unknown> };
    };
    const at = (...more: Array<string | number>) => loc('rules', i, ...more);
    if (names.has(r.name)) problems.add(rel, at('name'), `duplicate rule name ${JSON.stringify(r.name)}`);
    names.add(r.name);
    for (const { message } of checkRuleConditions(r.conditions, r.when)) problems.add(rel, at('conditions'), message);
    if (r.then.exclude !== undefined && r.when === 'dossier') {
      problems.add(rel, at('then', 'exclude'), 'only subject rules can exclude (a dossier rule applies to the whole packet: use the agreement to refuse it)');
    }
    if (r.then.exclude === false && r.then.set === undefined) problems.add(rel, at('then'), 'the rule does nothing');
    const then: Rule['then'] = {};
    if (r.then.exclude === true) then.exclude = true;
    if (r.then.set !== undefined) {
      then.set = checkOperations(r.then.set, {
        file: rel,
        where: (p) => at('then', 'set', p),
        problems,
        neverShare,
        kind: 'set',
        scope: r.when,
      });
    }
    const rule: Rule = { name: r.name, when: r.when, conditions: structuredClone(r.conditions), then };
    if (r.unknown === 'ignore') rule.unknown = 'ignore';
    // Kept for the agreement document (governance/isa.ts); deciding never reads it.
    if (typeof r.description === 'string') rule.description = r.description;
    rules.push(rule);
  });
  return rules;
}
