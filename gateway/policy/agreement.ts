/**
 * Whether an information-sharing agreement is in force: written once, for the decision (no sharing
 * outside it), the linter (warn before the review date), hits (none received under a lapsed
 * agreement) and the partnership toolkit (its status). Pure: callers pass `now`.
 *
 * An agreement is in force from the start of its `inForceFrom` day to the end of its `reviewBy` day,
 * both in UTC; sharing past the review date must stop. A date that cannot be read (or a `now` that is
 * not a time) fails closed: the agreement is not in force. The loader refuses such dates, so this only
 * guards a set that was built some other way.
 */
import { endOfDayUtc, startOfDayUtc } from './dates.js';
import type { Dossier } from '../dossier/types.js';
import type { Agreement, Block } from './types.js';

const DAY_MS = 24 * 3600 * 1000;

/**
 * How many whole days before its review date an agreement is "due for review": lint warns from then on
 * and the partnership toolkit says `review_due`. A quarter: renewing an agreement takes both parties'
 * sign-off, and that is what it takes.
 */
export const REVIEW_WARN_DAYS = 90;

export type AgreementStatus =
  /** `daysLeft`: whole days to the end of the review day; the review day itself is 0. */
  | { state: 'in_force'; daysLeft: number }
  /** Before its first day (the review day still counted down: `daysLeft`). */
  | { state: 'not_in_force'; reason: 'agreement_not_in_force'; unreadable: false; daysLeft: number }
  /** A date (or `now`) that cannot be read: fail closed. */
  | { state: 'not_in_force'; reason: 'agreement_not_in_force'; unreadable: true }
  /** Past the end of its review day. */
  | { state: 'expired'; reason: 'agreement_expired' };

export function agreementStatus(agreement: Pick<Agreement, 'inForceFrom' | 'reviewBy'>, now: Date): AgreementStatus {
  const t = now.getTime();
  const from = startOfDayUtc(agreement.inForceFrom);
  const end = endOfDayUtc(agreement.reviewBy);
  if (from === undefined || end === undefined || !Number.isFinite(t)) return { state: 'not_in_force', reason: 'agreement_not_in_force', unreadable: true };
  if (t > end) return { state: 'expired', reason: 'agreement_expired' };
  const daysLeft = Math.floor((end - t) / DAY_MS);
  if (t < from) return { state: 'not_in_force', reason: 'agreement_not_in_force', unreadable: false, daysLeft };
  return { state: 'in_force', daysLeft };
}

// ---- sharing one dossier under it ---------------------------------------------------------------

const CLASSIFICATION_RANK: Record<string, number> = { OFFICIAL: 0, 'OFFICIAL-SENSITIVE': 1 };

/**
 * Why the agreement does not allow sharing this dossier now (not in force, past review, the dossier's
 * classification or handling code not covered), or undefined when it does. Pure.
 */
export function checkAgreement(agreement: Agreement, dossier: Dossier, now: Date): Block | undefined {
  const status = agreementStatus(agreement, now);
  if (status.state === 'not_in_force') {
    const message = status.unreadable
      ? `Agreement ${agreement.reference} has a date that cannot be read (in force from ${agreement.inForceFrom}, review by ${agreement.reviewBy}): it is not in force`
      : `Agreement ${agreement.reference} is in force from ${agreement.inForceFrom}`;
    return { reason: status.reason, message };
  }
  if (status.state === 'expired') {
    return { reason: status.reason, message: `Agreement ${agreement.reference} was due for review by ${agreement.reviewBy}; sharing under it has stopped` };
  }
  const d = dossier as unknown as { classification?: unknown; handling?: { code?: unknown } };
  const cls = typeof d.classification === 'string' && Object.hasOwn(CLASSIFICATION_RANK, d.classification) ? CLASSIFICATION_RANK[d.classification] : undefined;
  const ceiling = CLASSIFICATION_RANK[agreement.highestClassification];
  if (cls === undefined || ceiling === undefined || cls > ceiling) {
    return {
      reason: 'classification_above_agreement',
      message: `The dossier is ${String(d.classification)}; agreement ${agreement.reference} covers up to ${agreement.highestClassification}`,
    };
  }
  const code = d.handling?.code;
  if (typeof code !== 'string' || !(agreement.handlingCodes as string[]).includes(code)) {
    return {
      reason: 'handling_not_accepted',
      message: `Handling code ${String(code)} is not accepted under agreement ${agreement.reference} (accepts ${agreement.handlingCodes.join(', ')})`,
    };
  }
  return undefined;
}
