/** The partnership toolkit: who the partners are, what they can check, and under which agreement. */
import { agreementStatus, REVIEW_WARN_DAYS } from '../policy/agreement.js';
import { followUpMode, isAfterMatch } from '../policy/match.js';
import type { Agreement, PolicySet } from '../policy/types.js';

/** The toolkit's status of an agreement: in force, but due for review within REVIEW_WARN_DAYS (90) whole days, as `cordon policy lint` counts them. */
export function toolkitStatus(agreement: Pick<Agreement, 'inForceFrom' | 'reviewBy'>, now: Date): 'not_in_force' | 'in_force' | 'review_due' | 'expired' {
  const status = agreementStatus(agreement, now);
  if (status.state !== 'in_force') return status.state;
  return status.daysLeft <= REVIEW_WARN_DAYS ? 'review_due' : 'in_force';
}

export function partnerToolkit(set: PolicySet, now: Date) {
  return [...set.partners.values()]
    .sort((a, b) => a.partner.id.localeCompare(b.partner.id))
    .map((p) => ({
      id: p.partner.id,
      name: p.partner.name,
      kind: p.partner.kind,
      checks: p.partner.checks,
      agreement: {
        reference: p.agreement.reference,
        purpose: p.agreement.purpose,
        legalBasis: p.agreement.legalBasis,
        reviewBy: p.agreement.reviewBy,
        status: toolkitStatus(p.agreement, now),
        // Asked first (match request, then the rest for the hits) or sent at once, and on which identifiers.
        disclosure: p.agreement.disclosure ?? 'immediate',
        ...(isAfterMatch(p.agreement) ? { followUp: followUpMode(p.agreement), match: p.match ?? [] } : {}),
        ...(p.agreement.blindKeys ? { blindKeys: p.agreement.blindKeys } : {}),
      },
    }));
}
