/**
 * What a peer file (`peers/<id>.yaml`) must let through to another force's gateway, checked at load.
 *
 * Roles and vulnerability flags only ever tighten what the receiving gateway shares (its own
 * protective rules fire on them: children's services only, no victims to enforcement…), and handling
 * condition codes bind the receiver's own fan-out (a second hop is never looser than the first). A peer
 * policy that strips them would make the receiving side looser, so such a file does not load (fail
 * closed: nothing is exchanged with that peer until it is fixed). The peer must keep:
 *  - `subjects[].role` and `subjects[].vulnerabilities[]`,
 *  - `handling.conditionCodes[]` (the dossier's own condition codes),
 *  - `subjects[].intelligence[].conditions[]` whenever it receives anything of the intelligence items,
 * and no rule of it may set another operation on them (nor may gateway.yaml's neverShare name them).
 */
import { ancestors } from './paths.js';
import type { Problems } from './schema-check.js';
import type { Operation, Rule } from './types.js';

const ALWAYS_KEPT = ['subjects[].role', 'subjects[].vulnerabilities[]', 'handling.conditionCodes[]'];
const ITEMS = 'subjects[].intelligence[]';
const ITEM_CODES = 'subjects[].intelligence[].conditions[]';

function why(path: string): string {
  return path === ITEM_CODES || path === 'handling.conditionCodes[]'
    ? 'handling condition codes bind the peer\'s own fan-out and must travel with what they govern'
    : 'roles and vulnerability flags only tighten what the peer shares and must always cross';
}

export function checkPeerKeepsProtections(rel: string, fields: Record<string, Operation>, rules: Rule[], neverShare: ReadonlySet<string>, problems: Problems): void {
  const sendsItems = Object.keys(fields).some((p) => p.startsWith(`${ITEMS}.`) && fields[p]?.op !== 'strip');
  const required = sendsItems ? [...ALWAYS_KEPT, ITEM_CODES] : ALWAYS_KEPT;
  for (const p of required) {
    if (neverShare.has(p)) problems.add(rel, `fields."${p}"`, `gateway.yaml neverShare names it, but a peer must receive it: ${why(p)}`);
    if (fields[p]?.op !== 'keep') problems.add(rel, `fields."${p}"`, `a peer file must keep it: ${why(p)}`);
    // Stripping or counting the items themselves is fine: their codes then go nowhere without them.
    const above = ancestors(p).filter((a) => a !== ITEMS);
    for (const a of above) {
      const op = fields[a];
      if (op !== undefined && op.op !== 'keep' && op.op !== 'filter') problems.add(rel, `fields."${a}"`, `hides ${p}, which a peer must receive: ${why(p)}`);
    }
    for (const rule of rules) {
      for (const [q, op] of Object.entries(rule.then.set ?? {})) {
        if (op.op === 'keep' || op.op === 'filter') continue;
        if (q === p || above.includes(q)) problems.add(rel, `rules (${rule.name})`, `sets ${op.op} on ${q}, but a peer must receive ${p}: ${why(p)}`);
      }
    }
  }
}
