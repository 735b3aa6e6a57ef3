/**
 * Match first, then disclose (Prüm's hit/no-hit step). An agreement with `disclosure: after-match`
 * first sends its partner a match request: for each subject its policy would disclose, only the
 * identifiers its `match` allowlist names (names, date of birth, postcode, VRM, NI number…), in the
 * form its full policy would give them, and nothing else: no intelligence, group, role or other
 * subject. The full disclosure follows only for the subjects the partner answers `hit`. Pure.
 *
 * The match step is not a second redactor: it is a narrower plan (`matchPlan`) applied by the same
 * redact(), and the follow-up is the full plan narrowed to the subjects with a hit (`onlySubjects`).
 */
import { isAncestor } from './paths.js';
import { canonicalPath } from './schema-index.js';
import { loc, type Problems } from './schema-check.js';
import type { Agreement, Operation, Plan } from './types.js';

/**
 * The only paths a match allowlist may name: what identifies a person, never what is said about them.
 * Anything under `subjects[].identifiers.` (NI number, passport, driving licence, PNC id) counts too.
 */
const IDENTIFIERS: ReadonlySet<string> = new Set([
  'subjects[].name.given',
  'subjects[].name.family',
  'subjects[].name.aliases[]',
  'subjects[].dateOfBirth',
  'subjects[].addresses[].line1',
  'subjects[].addresses[].line2',
  'subjects[].addresses[].town',
  'subjects[].addresses[].postcode',
  'subjects[].vehicles[].vrm',
  'subjects[].phones[]',
  'subjects[].emails[]',
  'subjects[].businesses[].name',
  'subjects[].businesses[].companyNumber',
]);

export function isIdentifierPath(p: string): boolean {
  return IDENTIFIERS.has(p) || p.startsWith('subjects[].identifiers.');
}

export type DisclosureMode = NonNullable<Agreement['disclosure']>;

/**
 * Whether the agreement asks first (`after-match`, or `blind-match`: the same two steps with a blind
 * first step, gateway/blind/) or discloses at once (`immediate`, the default).
 */
export function isAfterMatch(agreement: Pick<Agreement, 'disclosure'>): boolean {
  return agreement.disclosure === 'after-match' || agreement.disclosure === 'blind-match';
}

/** How a follow-up is made: at once (`automatic`, the default) or once the force approves it. */
export function followUpMode(agreement: Pick<Agreement, 'followUp'>): 'automatic' | 'approval' {
  return agreement.followUp === 'approval' ? 'approval' : 'automatic';
}

/**
 * Checks a partner file's `match` allowlist and the agreement fields that go with it; returns the
 * canonical paths. Fails closed: an after-match agreement without identifiers to match on is a
 * problem (the partner could be asked nothing), so is a path that is not an identifier.
 */
export function checkMatch(
  file: string,
  raw: unknown[] | undefined,
  agreement: Pick<Agreement, 'disclosure' | 'followUp'>,
  neverShare: ReadonlySet<string>,
  problems: Problems,
): string[] | undefined {
  if (agreement.followUp !== undefined && !isAfterMatch(agreement)) {
    problems.add(file, 'agreement.followUp', 'applies only to an agreement with disclosure: after-match or blind-match');
  }
  if (raw === undefined) {
    if (isAfterMatch(agreement)) problems.add(file, 'match', `an ${agreement.disclosure} agreement needs a match allowlist of the identifiers its partner matches on`);
    return undefined;
  }
  const out: string[] = [];
  raw.forEach((written, i) => {
    const where = loc('match', i);
    const p = typeof written === 'string' ? canonicalPath(written) : undefined;
    if (p === undefined) return problems.add(file, where, 'no such field in the dossier schema');
    if (!isIdentifierPath(p)) return problems.add(file, where, `${p} is not an identifier: a match request carries names, dates of birth, addresses, VRMs, phone numbers, e-mail addresses, businesses and subjects[].identifiers only`);
    if ([...neverShare].some((n) => n === p || isAncestor(n, p))) return problems.add(file, where, `${p} is on the gateway's neverShare list`);
    if (out.includes(p)) return problems.add(file, where, `names ${p} twice`);
    out.push(p);
  });
  return out;
}

/**
 * The match step's plan: no dossier-level field at all; per subject the full plan would include, only
 * its operations on allowlisted identifiers (as the full plan has them: a rule that generalises a date
 * of birth generalises it here too) and the item filters above them. A subject the full plan excludes
 * stays excluded; an identifier the full plan does not grant is not sent.
 */
export function matchPlan(plan: Plan, match: readonly string[]): Plan {
  const allowed = new Set(match);
  const pick = (ops: Record<string, Operation>): Record<string, Operation> => {
    const out: Record<string, Operation> = {};
    for (const [p, op] of Object.entries(ops)) {
      if (allowed.has(p) || (op.op === 'filter' && match.some((m) => isAncestor(p, m)))) out[p] = op;
    }
    return out;
  };
  return { dossier: {}, subjects: plan.subjects.map((ops) => (ops == null ? null : pick(ops))) };
}

/** The full plan for the given subjects only (by index): the others are left out, as if excluded. */
export function onlySubjects(plan: Plan, include: (index: number) => boolean): Plan {
  return { dossier: plan.dossier, subjects: plan.subjects.map((ops, i) => (include(i) ? ops : null)) };
}
