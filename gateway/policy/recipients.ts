/**
 * Which partners a dossier goes to, and why: only those it needs (DPA 2018 Part 3: each disclosure
 * necessary and proportionate). The force asks in its own words (`requests.checks`); gateway.yaml's
 * `requestChecks` maps each word to partners' check kinds, and a partner receives the dossier when any
 * requested word maps to one of its `checks`. `requests.partners` narrows that further. A partner
 * with a statutory condition (e.g. children's services under Children Act 2004 s.11) receives it
 * whatever was requested when, for any subject, the condition holds or cannot be settled because a fact
 * is unknown (an unknown age may be a child's); the force may defer such a delivery (`requests.defer`).
 * Every other partner is `not_requested`, with why. What a recipient may report back is limited to the
 * kinds it was asked for (requested: the mapped kinds it serves; statutory: its own checks).
 *
 * Pure: depends only on the dossier and the policy set. A partner id the dossier names that is not
 * configured, or a deferral of a delivery no statutory condition makes, is refused with its path.
 */
import type { Dossier } from '../dossier/types.js';
import { GatewayError, type ErrorDetail } from '../errors/index.js';
import { evaluateRuleCondition } from './condition.js';
import { dossierDate, dossierFacts, subjectFacts, subjectOwnFacts } from './facts.js';
import type { GatewayRules, PartnerPolicy, Statutory } from './types.js';

/** Why a recipient receives the dossier: the words that reached it, its statutory duty, or both. */
export interface Why {
  requested?: { checks: string[]; kinds: string[] };
  statutory?: { name: string; reason: string; subjects: number };
}

export interface Recipient {
  partner: string;
  why: Why;
  /** The hit kinds it may report for this dossier. */
  kinds: string[];
}

export interface NotSent {
  partner: string;
  state: 'not_requested' | 'deferred';
  reason: string;
  /** Deferred: when the force reviews the deferral. */
  reviewBy?: string;
  /** Deferred: the statutory duty the delivery was due under. */
  statutory?: { name: string; reason: string };
}

export interface RecipientChoice {
  recipients: Recipient[];
  notSent: NotSent[];
}

interface PolicySetLike {
  gateway: Pick<GatewayRules, 'requestChecks'>;
  partners: ReadonlyMap<string, Pick<PartnerPolicy, 'partner' | 'statutory'>>;
}

export function chooseRecipients(dossier: Dossier, set: PolicySetLike): RecipientChoice {
  const requests = dossier.requests;
  refuseUnknownIds(requests, set);
  const words = requests?.checks ?? [];
  const only = requests?.partners ? new Set(requests.partners) : undefined;
  const deferred = new Map((requests?.defer ?? []).map((d, i) => [d.partner, { ...d, i }]));
  const mapping = set.gateway.requestChecks ?? {};

  const recipients: Recipient[] = [];
  const notSent: NotSent[] = [];
  const wrongDeferrals: ErrorDetail[] = [];
  for (const [id, policy] of [...set.partners].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const serves = new Set(policy.partner.checks);
    const matched = words.filter((w) => (Object.hasOwn(mapping, w) ? mapping[w]! : []).some((k) => serves.has(k)));
    const kinds = [...new Set(matched.flatMap((w) => mapping[w]!.filter((k) => serves.has(k))))].sort();
    const requested = matched.length > 0 && (!only || only.has(id));
    const statutory = policy.statutory ? statutoryHolds(dossier, policy.statutory) : 0;
    const deferral = deferred.get(id);

    if (deferral) {
      if (!statutory) {
        wrongDeferrals.push({ path: `/requests/defer/${deferral.i}/partner`, message: `${id} is not sent this dossier under a statutory condition; only such a delivery can be deferred` });
        continue;
      }
      // Deferred whole: a partner told "requested" now would still alert the suspects.
      notSent.push({
        partner: id,
        state: 'deferred',
        reason: deferral.reason,
        reviewBy: deferral.reviewBy,
        statutory: { name: policy.statutory!.name, reason: policy.statutory!.reason },
      });
      continue;
    }
    if (requested || statutory) {
      const why: Why = {};
      if (requested) why.requested = { checks: matched, kinds };
      if (statutory) why.statutory = { name: policy.statutory!.name, reason: policy.statutory!.reason, subjects: statutory };
      recipients.push({ partner: id, why, kinds: statutory ? [...policy.partner.checks].sort() : kinds });
      continue;
    }
    notSent.push({ partner: id, state: 'not_requested', reason: notRequestedReason(id, words, matched, [...serves], only) });
  }
  if (wrongDeferrals.length) {
    throw new GatewayError('defer_not_statutory', 'A deferral names a partner that is not sent this dossier under a statutory condition; nothing was stored', wrongDeferrals);
  }
  return { recipients, notSent };
}

/** How many subjects the statutory condition holds, or may hold (a fact unknown), for. */
function statutoryHolds(dossier: Dossier, statutory: Statutory): number {
  const base = dossierFacts(dossier);
  const at = dossierDate(dossier);
  let n = 0;
  for (const s of dossier.subjects) {
    const facts = subjectFacts(dossier, s, base, at, subjectOwnFacts(s, at));
    if (evaluateRuleCondition(statutory.conditions, facts).truth !== 'false') n++;
  }
  return n;
}

function notRequestedReason(id: string, words: readonly string[], matched: readonly string[], serves: string[], only?: Set<string>): string {
  if (words.length === 0) return 'the dossier requests no checks (requests.checks), and no statutory condition applies';
  if (matched.length > 0 && only && !only.has(id)) return `not among the partners the dossier names (requests.partners)`;
  return `none of the requested checks (${words.join(', ')}) is one ${id} serves (${serves.join(', ')})`;
}

/** Every partner id the dossier names must be configured: one error with every offending path. */
function refuseUnknownIds(requests: Dossier['requests'], set: PolicySetLike): void {
  const details: ErrorDetail[] = [];
  const known = (id: string) => set.partners.has(id);
  const hint = `configured partners: ${[...set.partners.keys()].sort().join(', ')}`;
  requests?.partners?.forEach((id, i) => {
    if (!known(id)) details.push({ path: `/requests/partners/${i}`, message: `no partner ${JSON.stringify(id)} (${hint})` });
  });
  requests?.defer?.forEach((d, i) => {
    if (!known(d.partner)) details.push({ path: `/requests/defer/${i}/partner`, message: `no partner ${JSON.stringify(d.partner)} (${hint})` });
  });
  if (details.length) throw new GatewayError('partner_unknown', 'The dossier names partners that are not configured; nothing was stored', details);
}
