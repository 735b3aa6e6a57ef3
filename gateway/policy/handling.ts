/**
 * Handling conditions: 3x5x2 handling code C means "sharing permitted with conditions", and the
 * conditions bind whoever receives the item. gateway.yaml names a vocabulary of condition codes
 * (`handlingConditions`: `safeguarding-only`, `no-onward-disclosure`, …), an agreement lists the codes
 * its recipient can honour (`agreement.conditionsHonoured`; a peer gateway's are the codes it declares
 * it enforces, `peer.enforcesConditions`), and the gateway holds every recipient to them. Pure.
 *
 * Intelligence items (`subjects[].intelligence[]`): a built-in, gateway-wide item filter, ANDed into
 * every recipient's plan like gateway.yaml's alwaysFilter (decide.ts), so redaction stays a pure
 * projection of the plan and the most restrictive operation still wins. An item passes when
 *  - every condition code it carries (`conditions`) is one the recipient honours, and
 *  - it is handling P, or handling C with at least one code, or handling C without codes and the
 *    recipient is a competent authority (DPA 2018 Sch. 7; police forces' peer gateways are).
 * Fail closed: a code outside the vocabulary is honoured by nobody (an agreement can only honour
 * vocabulary codes), so an item carrying one reaches no recipient; a C item whose conditions are
 * free text only reaches competent authorities alone.
 *
 * The dossier's own handling (`handling.code` C, `handling.conditionCodes`): a recipient whose
 * agreement does not honour every code is blocked (`handling_conditions_not_honoured`). Without codes
 * it stays as before: the agreement's accepted handling codes decide (agreement.ts).
 *
 * withheldByHandling names the items the filter withholds and why, for the decision trace (preview)
 * and the disclosure's audit record (paths only, never values).
 */
import { evaluateCondition } from './condition.js';
import { tighten, type WorkingPlan } from './plan.js';
import type { Agreement, Block, Condition, GatewayRules, Plan, TraceEntry } from './types.js';

/** The name the filter has in plans and traces. */
export const HANDLING_RULE = 'handling-conditions';
/** The array the filter applies to. */
export const INTELLIGENCE = 'subjects[].intelligence[]';

/** What the filter needs of a recipient (a partner, or a peer seen as one). */
export interface HandlingRecipient {
  partner: { competentAuthority?: boolean };
  agreement: Pick<Agreement, 'reference' | 'conditionsHonoured'>;
}

/** The codes the recipient honours that are in the vocabulary (any other code is honoured by nobody). */
export function honoured(recipient: HandlingRecipient, gateway: GatewayRules): string[] {
  const vocabulary = gateway.handlingConditions ?? {};
  return [...new Set(recipient.agreement.conditionsHonoured ?? [])].filter((c) => Object.hasOwn(vocabulary, c)).sort();
}

/** The item filter for one recipient (see the module comment), in the condition language of condition.ts. */
export function handlingFilter(recipient: HandlingRecipient, gateway: GatewayRules): Condition {
  const codes = honoured(recipient, gateway);
  const allHonoured: Condition = { fact: 'conditions', operator: 'allIn', value: codes };
  if (recipient.partner.competentAuthority === true) {
    return { all: [allHonoured, { fact: 'grading.handling', operator: 'in', value: ['P', 'C'] }] };
  }
  return {
    all: [
      allHonoured,
      {
        any: [
          { fact: 'grading.handling', operator: 'equal', value: 'P' },
          { all: [{ fact: 'grading.handling', operator: 'equal', value: 'C' }, { fact: 'conditions', operator: 'someIn', value: codes }] },
        ],
      },
    ],
  };
}

/** AND the recipient's handling filter into a plan (only on paths `only` accepts, as applyGateway). */
export function applyHandling(plan: WorkingPlan, recipient: HandlingRecipient, gateway: GatewayRules, only?: (p: string) => boolean): void {
  if (only !== undefined && !only(INTELLIGENCE)) return;
  tighten(plan, INTELLIGENCE, { op: 'filter', where: handlingFilter(recipient, gateway) }, HANDLING_RULE);
}

function codesOf(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/** Why the dossier's own handling conditions keep it from this recipient, or undefined when they do not. */
export function checkHandlingConditions(recipient: HandlingRecipient, dossier: unknown, gateway: GatewayRules): Block | undefined {
  const handling = (dossier as { handling?: { conditionCodes?: unknown } } | null)?.handling;
  const codes = codesOf(handling?.conditionCodes);
  if (codes.length === 0) return undefined;
  const ok = new Set(honoured(recipient, gateway));
  const missing = codes.filter((c) => typeof c !== 'string' || !ok.has(c)).map(String);
  if (missing.length === 0) return undefined;
  return {
    reason: 'handling_conditions_not_honoured',
    message: `The dossier's handling conditions ${missing.join(', ')} are not honoured under agreement ${recipient.agreement.reference}`,
  };
}

/** One intelligence item the handling filter withholds from a recipient. */
export interface Withheld {
  subjectIndex: number;
  itemIndex: number;
  /** JSON Pointer into the input dossier (`/subjects/3/intelligence/0`): a path, never a value. */
  path: string;
  reason: string;
}

/** Why the filter withholds an item (undefined when it does not). */
function whyWithheld(item: unknown, recipient: HandlingRecipient, codes: ReadonlySet<string>, where: Condition): string | undefined {
  if (evaluateCondition(where, item)) return undefined;
  const it = (item ?? {}) as { conditions?: unknown; grading?: { handling?: unknown } };
  const missing = codesOf(it.conditions).filter((c) => typeof c !== 'string' || !codes.has(c)).map(String);
  if (missing.length > 0) return `handling conditions ${missing.join(', ')} not honoured under agreement ${recipient.agreement.reference}`;
  if (it.grading?.handling === 'C') return 'handling C without condition codes: competent authorities only';
  return 'handling code not P or C';
}

/**
 * The intelligence items of the subjects the plan includes that the handling filter withholds (only
 * where the plan discloses intelligence at all: a strip hides them anyway).
 */
export function withheldByHandling(dossier: unknown, plan: Plan, recipient: HandlingRecipient, gateway: GatewayRules): Withheld[] {
  const subjects = (dossier as { subjects?: unknown } | null)?.subjects;
  if (!Array.isArray(subjects)) return [];
  const where = handlingFilter(recipient, gateway);
  const codes = new Set(honoured(recipient, gateway));
  const out: Withheld[] = [];
  subjects.forEach((s: unknown, i) => {
    const ops = plan.subjects[i];
    const op = ops?.[INTELLIGENCE];
    if (op === undefined || op.op === 'strip' || op.op === 'replace') return;
    // Nothing of the items is disclosed (no field under them, no count): nothing to withhold.
    if (op.op !== 'count' && !Object.entries(ops ?? {}).some(([p, o]) => p.startsWith(`${INTELLIGENCE}.`) && o.op !== 'strip')) return;
    const items = (s as { intelligence?: unknown } | null)?.intelligence;
    if (!Array.isArray(items)) return;
    items.forEach((item: unknown, j) => {
      const reason = whyWithheld(item, recipient, codes, where);
      if (reason !== undefined) out.push({ subjectIndex: i, itemIndex: j, path: `/subjects/${i}/intelligence/${j}`, reason });
    });
  });
  return out;
}

/** The trace entries of withheld items: `handling-conditions` / `withhold`, per subject, with the reason. */
export function withheldTrace(withheld: readonly Withheld[], ids: ReadonlyArray<string | undefined>): TraceEntry[] {
  return withheld.map((w) => {
    const id = ids[w.subjectIndex];
    return {
      rule: HANDLING_RULE,
      scope: 'subject',
      ...(id === undefined ? {} : { subject: id }),
      subjectIndex: w.subjectIndex,
      path: INTELLIGENCE,
      op: 'withhold',
      note: `item ${w.itemIndex} withheld: ${w.reason}`,
    };
  });
}
