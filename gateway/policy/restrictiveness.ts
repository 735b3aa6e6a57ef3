/**
 * Which of two operations on the same path is the more restrictive. Where the base allowlist, the
 * gateway-wide constraints and the rules that fired disagree about a path, the most restrictive wins
 * (as in MISP: the most restrictive setting wins).
 *
 * The order, most restrictive first:
 *
 *   1. strip         nothing is disclosed
 *   2. count         only how many items there are (of those passing its `where`)
 *   3. replace       a fixed text stands in for the value
 *   4. pseudonymise  a keyed HMAC of the value, stable for one recipient
 *   5. generalise    a coarser form of the value; between two generalisations of the same family the
 *                    coarser wins:
 *                      dates:      ageBand > decade > year > month
 *                      postcodes:  area > district > sector
 *                      addresses:  town > postcode
 *                      numbers:    the wider band wins (width 20 beats width 10)
 *                    two generalisations of different families cannot meet on one valid path; if they
 *                    ever do, the result is strip (fail closed)
 *   6. mask          part of the value; the one showing fewer characters wins (equal counts from
 *                    different ends: nothing is shown)
 *   7. filter        only the array items satisfying a condition; two filters: both conditions must hold
 *   8. keep          the value as it is
 *
 * Filters are never lost: when count or an address generalisation (town/postcode) wins over a filter,
 * it carries the filter's condition as its `where` (ANDed with its own), so a count never counts and a
 * town never comes from an item the filter would have dropped. Between two operations of the same
 * rank the result does not depend on argument order (mostRestrictive is commutative).
 */
import { andConditions, stableJson } from './condition.js';
import type { Condition, Operation } from './types.js';

const RANK: Record<Operation['op'], number> = {
  strip: 8,
  count: 7,
  replace: 6,
  pseudonymise: 5,
  generalise: 4,
  mask: 3,
  filter: 2,
  keep: 1,
};

/** Rank of an operation: higher is more restrictive. Unknown operations rank above strip (never pass). */
export function rank(op: Operation): number {
  return RANK[op.op] ?? 99;
}

const DATE_LEVEL: Record<string, number> = { month: 1, year: 2, decade: 3, ageBand: 4 };
const POSTCODE_LEVEL: Record<string, number> = { sector: 1, district: 2, area: 3 };
const ADDRESS_LEVEL: Record<string, number> = { postcode: 1, town: 2 };

type Generalise = Extract<Operation, { op: 'generalise' }>;

function generaliseFamily(op: Generalise): 'date' | 'postcode' | 'address' | 'band' | undefined {
  if (op.to in DATE_LEVEL) return 'date';
  if (op.to in POSTCODE_LEVEL) return 'postcode';
  if (op.to in ADDRESS_LEVEL) return 'address';
  if (op.to === 'band') return 'band';
  return undefined;
}

function whereOf(op: Operation): Condition | undefined {
  if (op.op === 'filter') return op.where;
  if (op.op === 'count') return op.where;
  if (op.op === 'generalise' && (op.to === 'town' || op.to === 'postcode')) return op.where;
  return undefined;
}

function andWhere(a: Condition | undefined, b: Condition | undefined): Condition | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return andConditions(a, b);
}

/** Attach a filter condition to the winner when it can carry one (count, town/postcode). */
function carry(winner: Operation, where: Condition | undefined): Operation {
  if (where === undefined) return winner;
  if (winner.op === 'count') {
    const w = andWhere(winner.where, where);
    return w === undefined ? { op: 'count' } : { op: 'count', where: w };
  }
  if (winner.op === 'generalise' && (winner.to === 'town' || winner.to === 'postcode')) {
    const w = andWhere(winner.where, where);
    return w === undefined ? { op: 'generalise', to: winner.to } : { op: 'generalise', to: winner.to, where: w };
  }
  if (winner.op === 'filter') return { op: 'filter', where: andConditions(winner.where, where) };
  return winner;
}

function sameRank(a: Operation, b: Operation): Operation {
  switch (a.op) {
    case 'strip':
    case 'keep':
    case 'pseudonymise':
      return a;
    case 'count':
      return carry(a, whereOf(b));
    case 'filter':
      return carry(a, whereOf(b));
    case 'replace': {
      const bw = (b as Extract<Operation, { op: 'replace' }>).with;
      return a.with <= bw ? a : b;
    }
    case 'mask': {
      const m = b as Extract<Operation, { op: 'mask' }>;
      if (a.chars < m.chars) return a;
      if (m.chars < a.chars) return m;
      if (a.show === m.show) return a;
      return { op: 'mask', show: 'last', chars: 0 };
    }
    case 'generalise': {
      const g = b as Generalise;
      const fa = generaliseFamily(a);
      const fb = generaliseFamily(g);
      if (fa === undefined || fa !== fb) return { op: 'strip' };
      if (fa === 'band') {
        const wa = (a as { width: number }).width;
        const wb = (g as { width: number }).width;
        return wa >= wb ? a : g;
      }
      const level = fa === 'date' ? DATE_LEVEL : fa === 'postcode' ? POSTCODE_LEVEL : ADDRESS_LEVEL;
      const la = level[a.to] ?? 0;
      const lb = level[g.to] ?? 0;
      const winner = la >= lb ? a : g;
      return fa === 'address' ? carry({ op: 'generalise', to: winner.to as 'town' | 'postcode' }, andWhere(whereOf(a), whereOf(g))) : winner;
    }
    default:
      return { op: 'strip' };
  }
}

/** The more restrictive of two operations on one path (see the order above). */
export function mostRestrictive(a: Operation, b: Operation): Operation {
  const ra = rank(a);
  const rb = rank(b);
  if (ra > 8 || rb > 8) return { op: 'strip' };
  if (ra > rb) return carry(a, whereOf(b));
  if (rb > ra) return carry(b, whereOf(a));
  return sameRank(a, b);
}

/** Whether two operations are the same (for traces: did a rule change anything?). */
export function sameOperation(a: Operation, b: Operation): boolean {
  return stableJson(a) === stableJson(b);
}

/** A short label for traces and audit: `keep`, `generalise:year`, `generalise:band:10`, `mask:last:3`, … */
export function describeOp(op: Operation): string {
  switch (op.op) {
    case 'generalise':
      return op.to === 'band' ? `generalise:band:${op.width}` : `generalise:${op.to}`;
    case 'mask':
      return `mask:${op.show}:${op.chars}`;
    default:
      return op.op;
  }
}
