/**
 * The json-rules-engine condition syntax (all / any / not / {fact, operator, value}) as plain data, and a
 * small synchronous evaluator of it for item filters (`filter`, `count.where`, address `where`).
 *
 * Policy rules themselves run in json-rules-engine (decide.ts); item filters run here, per array item,
 * because a filter is evaluated for every intelligence item of every subject and needs no engine.
 *
 * Fail-closed semantics: the evaluator uses three-valued (Kleene) logic. A comparison whose fact is
 * missing from the item, is not a scalar (or array of scalars), or has the wrong type for the operator
 * is UNKNOWN, not false. `not UNKNOWN` is UNKNOWN, `all` is false if any part is false, else UNKNOWN if
 * any part is UNKNOWN; `any` is true if any part is true, else UNKNOWN if any part is UNKNOWN. An item
 * passes only when the whole condition is TRUE. So a filter that requires something never lets an item
 * without it through, not even from under a `not`.
 */
import type { Condition } from './types.js';

export const NUMERIC_OPERATORS: ReadonlySet<string> = new Set(['lessThan', 'lessThanInclusive', 'greaterThan', 'greaterThanInclusive']);
export const LIST_VALUE_OPERATORS: ReadonlySet<string> = new Set(['in', 'notIn']);
export const LIST_FACT_OPERATORS: ReadonlySet<string> = new Set(['contains', 'doesNotContain']);

type Tri = 0 | 1 | 2; // 0 false, 1 unknown, 2 true
const FALSE: Tri = 0;
const UNKNOWN: Tri = 1;
const TRUE: Tri = 2;

type Scalar = string | number | boolean;

function isScalar(v: unknown): v is Scalar {
  return typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
}

/**
 * Fact names split at the dots. Fact names come from policies (a few dozen), and splitting on every
 * lookup made fresh strings that each property lookup then had to intern. Cleared if it ever grows large.
 */
const factParts = new Map<string, readonly string[]>();

function splitFact(fact: string): readonly string[] {
  let parts = factParts.get(fact);
  if (parts === undefined) {
    if (factParts.size >= 1000) factParts.clear();
    parts = fact.split('.');
    factParts.set(fact, parts);
  }
  return parts;
}

/** Resolve a dotted fact name (`grading.source`) on an item's own properties; undefined when absent or not scalar(s). */
export function resolveFact(item: unknown, fact: string): Scalar | Scalar[] | undefined {
  let cur: unknown = item;
  for (const part of splitFact(fact)) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    if (!Object.hasOwn(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  if (isScalar(cur)) return cur;
  if (Array.isArray(cur) && cur.every(isScalar)) return cur as Scalar[];
  return undefined;
}

/**
 * Operators the gateway's built-in handling-condition filter uses (policy/handling.ts); policy files
 * cannot name them (the schema and the load checks refuse them). `allIn`: every element of the item's
 * list is in the value list, and an item without the list (or with an empty one) has no element
 * outside it: TRUE. `someIn`: at least one element is in the value list (an absent list is UNKNOWN).
 */
export const BUILT_IN_OPERATORS: ReadonlySet<string> = new Set(['allIn', 'someIn']);

function compareList(operator: string, fact: Scalar | Scalar[] | undefined, value: unknown, present: boolean): Tri {
  if (!Array.isArray(value)) return UNKNOWN;
  if (fact === undefined) {
    // Absent, or present but not scalars (malformed: never let through).
    return operator === 'allIn' && !present ? TRUE : UNKNOWN;
  }
  const list = Array.isArray(fact) ? fact : [fact];
  if (operator === 'allIn') return list.every((v) => value.includes(v)) ? TRUE : FALSE;
  return list.some((v) => value.includes(v)) ? TRUE : FALSE;
}

function compare(operator: string, fact: Scalar | Scalar[] | undefined, value: unknown): Tri {
  if (fact === undefined) return UNKNOWN;
  switch (operator) {
    case 'equal':
      return !Array.isArray(fact) && isScalar(value) ? (fact === value ? TRUE : FALSE) : UNKNOWN;
    case 'notEqual':
      return !Array.isArray(fact) && isScalar(value) ? (fact !== value ? TRUE : FALSE) : UNKNOWN;
    case 'in':
    case 'notIn': {
      if (Array.isArray(fact) || !Array.isArray(value)) return UNKNOWN;
      const found = value.includes(fact);
      return (operator === 'in') === found ? TRUE : FALSE;
    }
    case 'contains':
    case 'doesNotContain': {
      if (!Array.isArray(fact) || !isScalar(value)) return UNKNOWN;
      const found = fact.includes(value);
      return (operator === 'contains') === found ? TRUE : FALSE;
    }
    case 'lessThan':
    case 'lessThanInclusive':
    case 'greaterThan':
    case 'greaterThanInclusive': {
      if (typeof fact !== 'number' || typeof value !== 'number' || !Number.isFinite(value)) return UNKNOWN;
      const r =
        operator === 'lessThan' ? fact < value
        : operator === 'lessThanInclusive' ? fact <= value
        : operator === 'greaterThan' ? fact > value
        : fact >= value;
      return r ? TRUE : FALSE;
    }
    default:
      // Unknown operators are refused at load; at run time they never let anything through.
      return UNKNOWN;
  }
}

function evaluate(cond: Condition, item: unknown, depth: number): Tri {
  if (depth > 32 || cond === null || typeof cond !== 'object') return UNKNOWN;
  if ('all' in cond) {
    if (!Array.isArray(cond.all) || cond.all.length === 0) return UNKNOWN;
    let out: Tri = TRUE;
    for (const c of cond.all) {
      const r = evaluate(c, item, depth + 1);
      if (r === FALSE) return FALSE;
      if (r === UNKNOWN) out = UNKNOWN;
    }
    return out;
  }
  if ('any' in cond) {
    if (!Array.isArray(cond.any) || cond.any.length === 0) return UNKNOWN;
    let out: Tri = FALSE;
    for (const c of cond.any) {
      const r = evaluate(c, item, depth + 1);
      if (r === TRUE) return TRUE;
      if (r === UNKNOWN) out = UNKNOWN;
    }
    return out;
  }
  if ('not' in cond) {
    const r = evaluate(cond.not, item, depth + 1);
    return r === UNKNOWN ? UNKNOWN : r === TRUE ? FALSE : TRUE;
  }
  if ('fact' in cond && typeof cond.fact === 'string' && typeof cond.operator === 'string') {
    if (BUILT_IN_OPERATORS.has(cond.operator)) {
      return compareList(cond.operator, resolveFact(item, cond.fact), cond.value, hasFact(item, cond.fact));
    }
    return compare(cond.operator, resolveFact(item, cond.fact), cond.value);
  }
  return UNKNOWN;
}

/** Whether the dotted fact exists on the item at all (whatever its value). */
function hasFact(item: unknown, fact: string): boolean {
  let cur: unknown = item;
  for (const part of splitFact(fact)) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || !Object.hasOwn(cur, part)) return false;
    cur = (cur as Record<string, unknown>)[part];
  }
  return true;
}

/** True only when the condition definitely holds for the item (see the module comment). */
export function evaluateCondition(cond: Condition, item: unknown): boolean {
  return evaluate(cond, item, 0) === TRUE;
}

// ---- rules on facts -----------------------------------------------------------------------------

/** The three values of a rule's condition on a subject's or a dossier's facts. */
export type RuleTruth = 'true' | 'false' | 'unknown';

/** Integer comparisons against an age known only to lie in [lo, hi]. */
function compareRange(operator: string, lo: number, hi: number, value: unknown): Tri {
  if (typeof value !== 'number' || !Number.isFinite(value)) return UNKNOWN;
  const decide = (always: boolean, never: boolean): Tri => (always ? TRUE : never ? FALSE : UNKNOWN);
  switch (operator) {
    case 'lessThan':
      return decide(hi < value, lo >= value);
    case 'lessThanInclusive':
      return decide(hi <= value, lo > value);
    case 'greaterThan':
      return decide(lo > value, hi <= value);
    case 'greaterThanInclusive':
      return decide(lo >= value, hi < value);
    case 'equal':
      return decide(lo === value && hi === value, value < lo || value > hi || !Number.isInteger(value));
    case 'notEqual':
      return decide(value < lo || value > hi || !Number.isInteger(value), lo === value && hi === value);
    default:
      return UNKNOWN;
  }
}

function ruleLeaf(c: { fact: string; operator: string; value: unknown }, facts: Readonly<Record<string, unknown>>, unknown: Set<string>): Tri {
  const v = facts[c.fact];
  const { operator, value } = c;
  if (v === null || v === undefined) {
    // `equal null` asks whether the fact is unknown: that is known.
    if (value === null && operator === 'equal') return TRUE;
    if (value === null && operator === 'notEqual') return FALSE;
    // A minor by a childhood flag whose exact age is not known is 0 to 17.
    const r = c.fact === 'ageAtDossier' && facts.isMinor === true ? compareRange(operator, 0, 17, value) : UNKNOWN;
    if (r === UNKNOWN) unknown.add(c.fact);
    return r;
  }
  if (value === null) return operator === 'equal' ? FALSE : operator === 'notEqual' ? TRUE : UNKNOWN;
  return compare(operator, isScalar(v) ? v : Array.isArray(v) && v.every(isScalar) ? (v as Scalar[]) : undefined, value);
}

function evaluateRule(cond: Condition, facts: Readonly<Record<string, unknown>>, unknown: Set<string>, depth: number): Tri {
  if (depth > 32 || cond === null || typeof cond !== 'object') return UNKNOWN;
  if ('all' in cond || 'any' in cond) {
    const isAll = 'all' in cond;
    const parts = isAll ? cond.all : cond.any;
    if (!Array.isArray(parts) || parts.length === 0) return UNKNOWN;
    let out: Tri = isAll ? TRUE : FALSE;
    for (const c of parts) {
      const r = evaluateRule(c, facts, unknown, depth + 1);
      if (r === (isAll ? FALSE : TRUE)) return r;
      if (r === UNKNOWN) out = UNKNOWN;
    }
    return out;
  }
  if ('not' in cond) {
    const r = evaluateRule(cond.not, facts, unknown, depth + 1);
    return r === UNKNOWN ? UNKNOWN : r === TRUE ? FALSE : TRUE;
  }
  if ('fact' in cond && typeof cond.fact === 'string' && typeof cond.operator === 'string') return ruleLeaf(cond, facts, unknown);
  return UNKNOWN;
}

/**
 * A policy rule's condition on precomputed facts (facts.ts), in three values: a null fact is unknown,
 * and so is every comparison on it (Kleene logic as for item filters, above). `unknownFacts` names the
 * unknown facts the evaluation read (for "excluded: age unknown" in the trace). json-rules-engine
 * decides the known case; this decides the rules it did not fire (engines.ts).
 */
export function evaluateRuleCondition(cond: Condition, facts: object): { truth: RuleTruth; unknownFacts: string[] } {
  const unknown = new Set<string>();
  const r = evaluateRule(cond, facts as Readonly<Record<string, unknown>>, unknown, 0);
  return { truth: r === TRUE ? 'true' : r === FALSE ? 'false' : 'unknown', unknownFacts: r === FALSE ? [] : [...unknown] };
}

/** Both conditions must hold. Flattens nested `all`s and drops exact duplicates, sorted for a stable shape. */
export function andConditions(a: Condition, b: Condition): Condition {
  const parts: Condition[] = [];
  const seen = new Set<string>();
  for (const c of [a, b]) {
    const items = 'all' in c ? c.all : [c];
    for (const item of items) {
      const key = stableJson(item);
      if (seen.has(key)) continue;
      seen.add(key);
      parts.push(item);
    }
  }
  if (parts.length === 1) return parts[0] as Condition;
  parts.sort((x, y) => (stableJson(x) < stableJson(y) ? -1 : stableJson(x) > stableJson(y) ? 1 : 0));
  return { all: parts };
}

/** Every comparison in a condition, for load-time checks. */
export function conditionLeaves(cond: Condition, out: Array<{ fact: string; operator: string; value: unknown }> = []) {
  if ('all' in cond) for (const c of cond.all) conditionLeaves(c, out);
  else if ('any' in cond) for (const c of cond.any) conditionLeaves(c, out);
  else if ('not' in cond) conditionLeaves(cond.not, out);
  else out.push(cond);
  return out;
}

/** JSON with object keys sorted: the same data always gives the same string. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return '[' + value.map(stableJson).join(',') + ']';
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return '{' + keys.map((k) => JSON.stringify(k) + ':' + stableJson((value as Record<string, unknown>)[k])).join(',') + '}';
  }
  return JSON.stringify(value) ?? 'null';
}
