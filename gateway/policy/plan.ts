/**
 * Combining operations into a plan: base allowlist ∩ gateway constraints ∩ the `set`s of the rules that
 * fired. Pure.
 *
 * Only the base allowlist grants. Gateway constraints and rules can only tighten:
 *  - on a path the base lists, the most restrictive of the operations wins (restrictiveness.ts);
 *  - on a path the base does not list, a leaf operation (keep, mask, pseudonymise, a date/postcode/band
 *    generalisation), count or replace becomes strip: the path stays stripped whatever a rule says;
 *    a filter is kept (it only removes items), and an address generalisation (town/postcode) only
 *    removes the other fields of each item: its chosen field is emitted only if the base grants it;
 *  - whatever sits under a strip, count or replace is dropped, and under an address generalisation
 *    everything but the chosen field is dropped (the chosen field keeps any stricter operation of its own).
 */
import { mostRestrictive, sameOperation } from './restrictiveness.js';
import { ancestors, depth } from './paths.js';
import type { Operation } from './types.js';

interface PlanEntry {
  op: Operation;
  /** `base`, `gateway`, or the name of the rule that set the winning operation (`a + b` when combined). */
  rule: string;
  /** The path is in the base allowlist (only the base grants). */
  granted: boolean;
  /** The base allowlist's own operation on this path, when granted. */
  baseOp?: Operation;
  note?: string;
}

export type WorkingPlan = Map<string, PlanEntry>;

const NOT_GRANTED = 'not in the base allowlist: stays stripped';

export function isAddressOp(op: Operation): op is Extract<Operation, { op: 'generalise'; to: 'town' | 'postcode' }> {
  return op.op === 'generalise' && (op.to === 'town' || op.to === 'postcode');
}

/** strip, count and replace hide everything below them. */
export function isTerminalOp(op: Operation): boolean {
  return op.op === 'strip' || op.op === 'count' || op.op === 'replace';
}

/** Operations that emit a (transformed) value of the path itself. */
function isLeafOp(op: Operation): boolean {
  return op.op === 'keep' || op.op === 'mask' || op.op === 'pseudonymise' || (op.op === 'generalise' && !isAddressOp(op));
}

export function basePlan(fields: Record<string, Operation>): WorkingPlan {
  const plan: WorkingPlan = new Map();
  for (const [path, op] of Object.entries(fields)) plan.set(path, { op, rule: 'base', granted: true, baseOp: op });
  return plan;
}

export function clonePlan(plan: WorkingPlan, filter?: (path: string) => boolean): WorkingPlan {
  const out: WorkingPlan = new Map();
  for (const [path, entry] of plan) if (filter === undefined || filter(path)) out.set(path, { ...entry });
  return out;
}

/** Apply one operation from the gateway or a rule: the most restrictive wins, nothing is widened. */
export function tighten(plan: WorkingPlan, path: string, op: Operation, rule: string): void {
  const existing = plan.get(path);
  let winner = existing === undefined ? op : mostRestrictive(existing.op, op);
  const granted = existing?.granted ?? false;
  let note = existing?.note;
  if (!granted && (winner.op === 'count' || winner.op === 'replace')) {
    winner = { op: 'strip' };
    note = NOT_GRANTED;
  }
  let by: string;
  if (existing === undefined) by = rule;
  else if (sameOperation(winner, existing.op)) by = existing.rule;
  else if (sameOperation(winner, op)) by = rule;
  else by = existing.rule === rule ? rule : `${existing.rule} + ${rule}`;
  const entry: PlanEntry = { op: winner, rule: by, granted };
  if (existing?.baseOp !== undefined) entry.baseOp = existing.baseOp;
  if (note !== undefined && winner.op === 'strip') entry.note = note;
  plan.set(path, entry);
}

/**
 * Resolve ancestor/descendant interactions into the final plan (see the module comment). Entries are
 * returned in their original order.
 */
export function normalise(plan: WorkingPlan): WorkingPlan {
  const order = [...plan.keys()];
  const byDepth = [...order].sort((a, b) => depth(a) - depth(b));
  const kept: WorkingPlan = new Map();
  for (const path of byDepth) {
    let entry = plan.get(path) as PlanEntry;
    let hidden = false;
    let grantedByAddress = false;
    for (const anc of ancestors(path)) {
      const a = kept.get(anc);
      if (a === undefined) continue;
      if (isTerminalOp(a.op)) {
        hidden = true;
        break;
      }
      if (isAddressOp(a.op)) {
        if (path !== `${anc}.${a.op.to}`) {
          hidden = true;
          break;
        }
        grantedByAddress = a.baseOp !== undefined && isAddressOp(a.baseOp);
      }
    }
    if (hidden) continue;
    if (!entry.granted && !grantedByAddress && isLeafOp(entry.op)) {
      entry = { op: { op: 'strip' }, rule: entry.rule, granted: false, note: NOT_GRANTED };
    }
    kept.set(path, entry);
  }
  // An address generalisation the base did not grant emits its chosen field only if the base grants that.
  for (const [path, entry] of [...kept]) {
    if (!isAddressOp(entry.op)) continue;
    if (entry.baseOp !== undefined && isAddressOp(entry.baseOp)) continue;
    const child = `${path}.${entry.op.to}`;
    const c = kept.get(child);
    if (c === undefined || !c.granted) {
      kept.set(child, { op: { op: 'strip' }, rule: entry.rule, granted: false, note: NOT_GRANTED });
    }
  }
  const out: WorkingPlan = new Map();
  for (const path of order) {
    const e = kept.get(path);
    if (e !== undefined) out.set(path, e);
  }
  for (const [path, e] of kept) if (!out.has(path)) out.set(path, e);
  return out;
}

export function toOps(plan: WorkingPlan): Record<string, Operation> {
  const out: Record<string, Operation> = {};
  for (const [path, entry] of plan) out[path] = entry.op;
  return out;
}
