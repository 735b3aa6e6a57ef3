/** The partnership toolkit: who the partners are, what they can check, and under which agreement. */
import type { PolicySet } from '../policy/types.js';

const DAY_MS = 24 * 3600 * 1000;

export function agreementStatus(inForceFrom: string, reviewBy: string, now: Date): 'not_in_force' | 'in_force' | 'review_due' | 'expired' {
  const start = Date.parse(`${inForceFrom}T00:00:00Z`);
  const end = Date.parse(`${reviewBy}T23:59:59.999Z`);
  if (now.getTime() < start) return 'not_in_force';
  if (now.getTime() > end) return 'expired';
  // Whole days left, as `cordon policy lint` counts them: a review 30 days away is already due.
  if (Math.floor((end - now.getTime()) / DAY_MS) <= 30) return 'review_due';
  return 'in_force';
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
        status: agreementStatus(p.agreement.inForceFrom, p.agreement.reviewBy, now),
      },
    }));
}
