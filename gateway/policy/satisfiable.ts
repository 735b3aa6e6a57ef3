/**
 * Can a rule's conditions ever hold? A static check for `cordon policy lint`: a rule whose conditions
 * contradict each other (`isAdult equal true` and `ageAtDossier lessThan 18`, `role in [victim]` and
 * `role notIn [victim, witness]`, `contains x` and `doesNotContain x`…) never fires, so the protection
 * its author meant never happens.
 *
 * The conditions are brought to disjunctive normal form (negations pushed down to the comparisons)
 * and each conjunction is checked variable by variable, with json-rules-engine's own semantics for
 * every operator (a numeric comparison never holds for null, `notIn` holds for null, …). Facts that
 * are views of one underlying value are checked together: `ageAtDossier`, `ageKnown`, `isAdult` and
 * `isMinor` are all the subject's age (unknown, a minor by a childhood flag of unknown exact age, or 0
 * to 120 completed years); `isVulnerable` says
 * whether `vulnerabilities` is empty.
 *
 * The check is conservative: it says "never" only when it is sure. Conditions too large to expand
 * (more than MAX_TERMS conjunctions) are taken as satisfiable. Pure.
 */
import { schemaLeafPaths } from '../dossier/paths.js';
import { MAX_PLAUSIBLE_AGE } from './dates.js';
import { FACT_ENUM_PATHS } from './facts.js';
import type { Condition } from './types.js';

const MAX_TERMS = 512;
const MAX_SUBJECTS = 200;

type Scalar = string | number | boolean | null;

interface Literal {
  fact: string;
  operator: string;
  value: unknown;
  negated: boolean;
}

/** Universes that narrow what a fact can be (e.g. the classifications an agreement accepts). */
interface FactUniverses {
  classification?: readonly string[];
  handlingCode?: readonly string[];
}

/** json-rules-engine's operators on a scalar fact value. */
function holds(operator: string, fact: Scalar, value: unknown): boolean {
  const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
  switch (operator) {
    case 'equal':
      return fact === value;
    case 'notEqual':
      return fact !== value;
    case 'in':
      return Array.isArray(value) && value.includes(fact);
    case 'notIn':
      return Array.isArray(value) && !value.includes(fact);
    case 'lessThan':
      return isNum(fact) && isNum(value) && fact < value;
    case 'lessThanInclusive':
      return isNum(fact) && isNum(value) && fact <= value;
    case 'greaterThan':
      return isNum(fact) && isNum(value) && fact > value;
    case 'greaterThanInclusive':
      return isNum(fact) && isNum(value) && fact >= value;
    default:
      // contains/doesNotContain on a scalar fact: json-rules-engine's validator refuses it.
      return false;
  }
}

// ---- variables ---------------------------------------------------------------------------------

/** A finite variable: the facts that read it, as functions of its value. */
interface FiniteVar {
  kind: 'finite';
  universe: Scalar[];
  read: (fact: string, v: Scalar) => Scalar;
}

/** A string variable with an open set of values (plus null when nullable). */
interface OpenVar {
  kind: 'open';
  nullable: boolean;
}

/** A list of strings; `isVulnerable`-style facts read its emptiness. */
interface ListVar {
  kind: 'list';
}

type Var = FiniteVar | OpenVar | ListVar;

function enumOf(schemaPath: string): Scalar[] | undefined {
  const entry = schemaLeafPaths().find((p) => p.path === schemaPath);
  return entry?.enum ? [...entry.enum] : undefined;
}

/** A minor by a childhood flag whose exact age is unknown (facts.ts): ageAtDossier null, isMinor true. */
const FLAGGED_CHILD = 'flagged-child';
const AGE_UNIVERSE: Scalar[] = [null, FLAGGED_CHILD, ...Array.from({ length: MAX_PLAUSIBLE_AGE + 1 }, (_, i) => i)];

/** fact → [variable name, variable]. */
function variables(universes: FactUniverses): Map<string, [string, Var]> {
  const out = new Map<string, [string, Var]>();
  const enumVar = (fact: string, nullable: boolean, narrowed?: readonly string[]) => {
    const path = FACT_ENUM_PATHS[fact];
    const values = narrowed ? [...narrowed] : path !== undefined ? enumOf(path) : undefined;
    if (values === undefined) return;
    out.set(fact, [fact, { kind: 'finite', universe: nullable ? [null, ...values] : values, read: (_f, v) => v }]);
  };
  enumVar('classification', universes.classification === undefined, universes.classification);
  enumVar('handlingCode', universes.handlingCode === undefined, universes.handlingCode);
  enumVar('threatBand', true);
  enumVar('role', true);
  out.set('subjectCount', ['subjectCount', { kind: 'finite', universe: Array.from({ length: MAX_SUBJECTS + 1 }, (_, i) => i), read: (_f, v) => v }]);
  const age: FiniteVar = {
    kind: 'finite',
    universe: AGE_UNIVERSE,
    read: (fact, v) => {
      switch (fact) {
        case 'ageAtDossier':
          return v === FLAGGED_CHILD ? null : v;
        case 'ageKnown':
          return v !== null && v !== FLAGGED_CHILD;
        case 'isAdult':
          return v === FLAGGED_CHILD ? false : v !== null && (v as number) >= 18;
        case 'isMinor':
          return v === FLAGGED_CHILD ? true : v !== null && (v as number) < 18;
        default:
          return null;
      }
    },
  };
  for (const f of ['ageAtDossier', 'ageKnown', 'isAdult', 'isMinor']) out.set(f, ['age', age]);
  out.set('nationality', ['nationality', { kind: 'open', nullable: true }]);
  out.set('originatorForce', ['originatorForce', { kind: 'open', nullable: true }]);
  out.set('crimeTypes', ['crimeTypes', { kind: 'list' }]);
  out.set('vulnerabilities', ['vulnerabilities', { kind: 'list' }]);
  out.set('isVulnerable', ['vulnerabilities', { kind: 'list' }]);
  return out;
}

// ---- DNF ---------------------------------------------------------------------------------------

/** Conjunctions of literals, or undefined when the expansion is too large. */
function dnf(cond: Condition, negated: boolean): Literal[][] | undefined {
  if ('not' in cond) return dnf(cond.not, !negated);
  if ('all' in cond || 'any' in cond) {
    const parts = 'all' in cond ? cond.all : cond.any;
    // all = AND, any = OR; under a negation they swap (De Morgan).
    const conjunctive = 'all' in cond !== negated;
    const expanded: Literal[][][] = [];
    for (const p of parts) {
      const d = dnf(p, negated);
      if (d === undefined) return undefined;
      expanded.push(d);
    }
    if (!conjunctive) {
      const out = expanded.flat();
      return out.length > MAX_TERMS ? undefined : out;
    }
    let acc: Literal[][] = [[]];
    for (const d of expanded) {
      const next: Literal[][] = [];
      for (const a of acc) for (const b of d) next.push([...a, ...b]);
      if (next.length > MAX_TERMS) return undefined;
      acc = next;
    }
    return acc;
  }
  return [[{ fact: cond.fact, operator: cond.operator, value: cond.value, negated }]];
}

// ---- one conjunction ---------------------------------------------------------------------------

function termSatisfiable(term: Literal[], vars: Map<string, [string, Var]>): boolean {
  const finite = new Map<string, Set<Scalar>>();
  const open = new Map<string, { only?: Set<Scalar>; not: Set<Scalar>; nullable: boolean }>();
  const lists = new Map<string, { must: Set<unknown>; mustNot: Set<unknown>; empty?: boolean }>();
  for (const lit of term) {
    const entry = vars.get(lit.fact);
    if (entry === undefined) return true; // an unknown fact: the loader reports it; assume it can hold
    const [name, v] = entry;
    if (v.kind === 'finite') {
      let allowed = finite.get(name);
      if (allowed === undefined) {
        allowed = new Set(v.universe);
        finite.set(name, allowed);
      }
      for (const x of [...allowed]) if (holds(lit.operator, v.read(lit.fact, x), lit.value) === lit.negated) allowed.delete(x);
      if (allowed.size === 0) return false;
    } else if (v.kind === 'open') {
      let s = open.get(name);
      if (s === undefined) {
        s = { not: new Set(), nullable: v.nullable };
        if (!v.nullable) s.not.add(null);
        open.set(name, s);
      }
      // The literal as a set: in(values) or notIn(values).
      let inSet: Set<Scalar> | undefined;
      let outSet: Set<Scalar> | undefined;
      const op = lit.operator;
      const values = (Array.isArray(lit.value) ? lit.value : [lit.value]) as Scalar[];
      if (op === 'equal' || op === 'in') inSet = new Set(values);
      else if (op === 'notEqual' || op === 'notIn') outSet = new Set(values);
      else inSet = new Set(); // numeric or list operators never hold on a string
      if (lit.negated) [inSet, outSet] = [outSet, inSet];
      if (inSet !== undefined) {
        const base: Set<Scalar> = s.only ?? inSet;
        s.only = new Set([...base].filter((x) => inSet.has(x) && !s.not.has(x)));
      }
      if (outSet !== undefined) {
        for (const x of outSet) s.not.add(x);
        if (s.only) s.only = new Set([...s.only].filter((x) => !s.not.has(x)));
      }
      if (s.only !== undefined && s.only.size === 0) return false;
    } else {
      let s = lists.get(name);
      if (s === undefined) {
        s = { must: new Set(), mustNot: new Set() };
        lists.set(name, s);
      }
      if (lit.fact === 'isVulnerable') {
        // A boolean view: equal/notEqual/in/notIn on true/false.
        const whenEmpty = holds(lit.operator, false, lit.value) !== lit.negated;
        const whenNot = holds(lit.operator, true, lit.value) !== lit.negated;
        if (!whenEmpty && !whenNot) return false;
        if (whenEmpty !== whenNot) {
          const empty = whenEmpty;
          if (s.empty !== undefined && s.empty !== empty) return false;
          s.empty = empty;
        }
      } else {
        const contains = lit.operator === 'contains' ? !lit.negated : lit.operator === 'doesNotContain' ? lit.negated : undefined;
        if (contains === undefined) return false; // scalar operators never hold on a list fact
        (contains ? s.must : s.mustNot).add(lit.value);
      }
      for (const x of s.must) if (s.mustNot.has(x)) return false;
      if (s.empty === true && s.must.size > 0) return false;
    }
  }
  return true;
}

/**
 * Whether the conditions can ever hold: `false` only when they certainly cannot, `true` otherwise
 * (also when they are too large to expand).
 */
export function canHold(cond: Condition, universes: FactUniverses = {}): boolean {
  const terms = dnf(cond, false);
  if (terms === undefined) return true;
  const vars = variables(universes);
  return terms.some((t) => termSatisfiable(t, vars));
}
