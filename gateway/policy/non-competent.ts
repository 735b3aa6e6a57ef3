/**
 * What a recipient that is not a competent authority never receives, whatever its own policy says.
 *
 * `gateway.yaml` may carry a `nonCompetentFilter` section, shaped like `alwaysFilter` (an array path →
 * an item condition). For every recipient whose partner file does not say `competentAuthority: true`
 * (a body listed in DPA 2018 Sch. 7 processing for the law-enforcement purposes), each of its
 * conditions is ANDed into `alwaysFilter` for that recipient only, and so into the recipient's own
 * filter on that path (or added as one where it has none). The sample section keeps intelligence graded
 * 3 (source not reliable) or D/E (not known, suspected false) from councils and other bodies outside
 * law enforcement, who cannot weigh it as the police do and may act on it against the person.
 *
 * Why a recipient filter rather than a rule: rules see one subject's facts, not each intelligence item,
 * and a partner file could forget the rule; like `alwaysFilter` this holds gateway-wide, and a recipient
 * is treated as not competent unless its file says otherwise (fail closed). Peers (other forces'
 * gateways) are competent authorities (policy/load.ts).
 */
import { checkItemCondition } from './condition-checks.js';
import { andConditions } from './condition.js';
import { canonicalPath, getSchemaIndex } from './schema-index.js';
import { loc, type Problems } from './schema-check.js';
import type { Condition, GatewayRules } from './types.js';

const NON_COMPETENT_FILTER = 'nonCompetentFilter';

/**
 * The semantic check of `gateway.yaml`'s `nonCompetentFilter` (after its schema check): each path an
 * array of objects of the dossier schema, each condition on facts its items have. Only the entries
 * without problems are returned; every problem is added to `problems`.
 */
export function checkNonCompetentFilter(rel: string, doc: Record<string, unknown>, problems: Problems): Record<string, Condition> {
  const out: Record<string, Condition> = {};
  const raw = doc[NON_COMPETENT_FILTER] as Record<string, Condition> | undefined;
  if (raw === undefined) return out;
  const { byPath } = getSchemaIndex();
  for (const [written, cond] of Object.entries(raw)) {
    const where = loc(NON_COMPETENT_FILTER, written);
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
    if (ms.length === 0) out[p] = structuredClone(cond);
  }
  return out;
}

/**
 * The gateway constraints that hold for one recipient: the gateway's own, with `nonCompetentFilter`
 * ANDed into `alwaysFilter` unless the recipient is a competent authority. The same object when
 * nothing changes (a competent authority, or no such section).
 */
export function gatewayFor(gateway: GatewayRules, competentAuthority: boolean | undefined): GatewayRules {
  const extra = gateway.nonCompetentFilter;
  if (competentAuthority === true || extra === undefined || Object.keys(extra).length === 0) return gateway;
  const alwaysFilter: Record<string, Condition> = { ...gateway.alwaysFilter };
  for (const [p, where] of Object.entries(extra)) {
    const own = alwaysFilter[p];
    alwaysFilter[p] = own === undefined ? where : andConditions(own, where);
  }
  return { ...gateway, alwaysFilter };
}
