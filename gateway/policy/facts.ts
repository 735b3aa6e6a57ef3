/**
 * The plain, precomputed facts policy rules are evaluated against (json-rules-engine gets these and
 * nothing else: no JSONPath, no async facts). Every fact is always present, never undefined, so
 * `allowUndefinedFacts: false` never trips.
 *
 * Unknown is not "no": a fact the dossier does not establish is null (unknown), never false. A subject
 * without a date of birth is neither a known minor nor a known adult (isMinor, isAdult and ageAtDossier
 * are null), one without a nationality has an unknown one, a dossier without a threat band has an
 * unknown one. Rules only tighten, so a rule whose condition is unknown because of
 * such a fact fires (decide.ts, engines.ts, condition.ts evaluateRuleCondition) unless it says
 * `unknown: ignore`.
 *
 * Vulnerabilities: an absent list is read as "none recorded", the same as `[]`. The list is the force's
 * own vulnerability markers, which it records when it identifies them and which the contract leaves
 * optional (its example omits it for the suspects); the gateway cannot know more than the force records,
 * and reading absence as unknown would stop every referral to a partner with a protective rule on it
 * (immigration enforcement) for any force that omits an empty list. What protects here is elsewhere:
 * the flags always cross to peers, and a childhood flag makes a subject a minor (below). The fact type
 * stays nullable so that a source with a real "not assessed" state can say so later.
 *
 * Childhood flags (CHILD_FLAGS, e.g. `child-criminal-exploitation`) make a subject a minor whatever the
 * role or the date of birth says: isMinor true, isAdult false; the age is kept when the date of birth
 * agrees (under 18), else it is null and read as "0 to 17" (condition.ts).
 *
 * Pure: depends only on the dossier.
 */
import type { Dossier, Subject } from '../dossier/types.js';
import { ageOn, parseDateTimeUtc, type CalendarDate } from './dates.js';

export interface DossierFacts {
  classification: string | null;
  handlingCode: string | null;
  crimeTypes: string[];
  threatBand: string | null;
  originatorForce: string | null;
  subjectCount: number;
}

export interface SubjectFacts extends DossierFacts {
  role: string | null;
  /**
   * Completed years at the dossier's createdAt (UTC); null when unknown (no usable date of birth, or one
   * a childhood flag contradicts: then the age is known only to be under 18).
   */
  ageAtDossier: number | null;
  /** Whether ageAtDossier is known. */
  ageKnown: boolean;
  /** 18 or over at createdAt; null when unknown; false for a subject with a childhood flag. */
  isAdult: boolean | null;
  /** Under 18 at createdAt, or flagged with a childhood flag; null when unknown. */
  isMinor: boolean | null;
  /** The subject's vulnerability markers; none recorded ([]) when the dossier has no list (see above). */
  vulnerabilities: string[] | null;
  isVulnerable: boolean | null;
  nationality: string | null;
}

/** `?`: the fact is null when the dossier does not establish it (unknown). */
export type FactType = 'string' | 'string?' | 'number' | 'number?' | 'boolean' | 'boolean?' | 'string[]' | 'string[]?';

/** The facts a dossier-scope rule may use, and their types (checked by the loader). */
export const DOSSIER_FACT_TYPES: Readonly<Record<keyof DossierFacts, FactType>> = Object.freeze({
  classification: 'string?',
  handlingCode: 'string?',
  crimeTypes: 'string[]',
  threatBand: 'string?',
  originatorForce: 'string?',
  subjectCount: 'number',
});

/** The facts a subject-scope rule may use (the dossier facts and the subject's own). */
export const SUBJECT_FACT_TYPES: Readonly<Record<keyof SubjectFacts, FactType>> = Object.freeze({
  ...DOSSIER_FACT_TYPES,
  role: 'string?',
  ageAtDossier: 'number?',
  ageKnown: 'boolean',
  isAdult: 'boolean?',
  isMinor: 'boolean?',
  vulnerabilities: 'string[]?',
  isVulnerable: 'boolean?',
  nationality: 'string?',
});

/** Schema paths whose enums bound the values a fact can take (for load-time value checks). */
export const FACT_ENUM_PATHS: Readonly<Record<string, string>> = Object.freeze({
  classification: 'classification',
  handlingCode: 'handling.code',
  threatBand: 'group.threatBand',
  role: 'subjects[].role',
});

/**
 * Vulnerability flags that only a child can carry (the dossier schema has no closed list of flags:
 * these are the childhood ones in use; add any new one here).
 */
export const CHILD_FLAGS: readonly string[] = Object.freeze([
  'child-criminal-exploitation',
  'child-sexual-exploitation',
  'child-trafficking',
  'looked-after-child',
]);

/** The first childhood flag of a vulnerabilities list, or undefined. */
export function childFlag(vulnerabilities: readonly string[] | null): string | undefined {
  return vulnerabilities?.find((v) => CHILD_FLAGS.includes(v));
}

/** What a person reading a trace calls each fact (`age unknown`). */
const FACT_LABELS: Readonly<Record<string, string>> = Object.freeze({
  ageAtDossier: 'age',
  ageKnown: 'age',
  isAdult: 'age',
  isMinor: 'age',
  vulnerabilities: 'vulnerabilities',
  isVulnerable: 'vulnerabilities',
  role: 'role',
  nationality: 'nationality',
  classification: 'classification',
  handlingCode: 'handling code',
  threatBand: 'threat band',
  originatorForce: 'originating force',
});

/** `age unknown (isMinor)`, `age and vulnerabilities unknown (isAdult, isVulnerable)`. */
export function unknownFactsText(facts: readonly string[]): string {
  const labels = [...new Set(facts.map((f) => FACT_LABELS[f] ?? f))];
  const said = labels.length <= 1 ? (labels[0] ?? 'a fact') : `${labels.slice(0, -1).join(', ')} and ${labels[labels.length - 1]}`;
  return `${said} unknown (${facts.join(', ')})`;
}

function str(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function obj(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

export function dossierFacts(dossier: Dossier): DossierFacts {
  const d = obj(dossier);
  const group = obj(d.group);
  return {
    classification: str(d.classification),
    handlingCode: str(obj(d.handling).code),
    crimeTypes: strings(group.crimeTypes),
    threatBand: str(group.threatBand),
    originatorForce: str(obj(d.originator).force),
    subjectCount: Array.isArray(d.subjects) ? d.subjects.length : 0,
  };
}

/** The dossier's createdAt as a UTC calendar date (the day ages are computed at). */
export function dossierDate(dossier: Dossier): CalendarDate | undefined {
  return parseDateTimeUtc(obj(dossier).createdAt);
}

/** The subject's own facts: SubjectFacts without the dossier's. */
export type SubjectOwnFacts = Omit<SubjectFacts, keyof DossierFacts>;

/** `at` is dossierDate(): ages are at the dossier's createdAt, never at the time of deciding. */
export function subjectOwnFacts(subject: Subject, at: CalendarDate | undefined): SubjectOwnFacts {
  const s = obj(subject);
  const vulnerabilities = strings(s.vulnerabilities);
  const child = childFlag(vulnerabilities) !== undefined;
  let age = ageOn(s.dateOfBirth, at);
  // A childhood flag outweighs a date of birth that says 18 or over: the age is then only "under 18".
  if (child && age !== undefined && age >= 18) age = undefined;
  return {
    role: str(s.role),
    ageAtDossier: age ?? null,
    ageKnown: age !== undefined,
    isAdult: child ? false : age === undefined ? null : age >= 18,
    isMinor: child ? true : age === undefined ? null : age < 18,
    vulnerabilities,
    isVulnerable: vulnerabilities.length > 0,
    nationality: str(s.nationality),
  };
}

/**
 * `base`, `at` and `own` may be passed in when computing the facts of many subjects of one dossier
 * (they are the dossier's facts, dossierDate() and subjectOwnFacts()).
 */
export function subjectFacts(
  dossier: Dossier,
  subject: Subject,
  base: DossierFacts = dossierFacts(dossier),
  at: CalendarDate | undefined = dossierDate(dossier),
  own: SubjectOwnFacts = subjectOwnFacts(subject, at),
): SubjectFacts {
  return {
    classification: base.classification,
    handlingCode: base.handlingCode,
    crimeTypes: [...base.crimeTypes],
    threatBand: base.threatBand,
    originatorForce: base.originatorForce,
    subjectCount: base.subjectCount,
    ...own,
  };
}

/**
 * Appends every value of a facts object to `out`, an array as its length then its items, so that two
 * such lists are equal item by item (===) exactly when the facts are (for objects of one shape, as built
 * here). Every property is included, so a fact added later is covered too. For decision cache keys.
 */
export function factValues(facts: DossierFacts | SubjectOwnFacts, out: unknown[]): void {
  for (const k in facts) {
    const v = (facts as unknown as Record<string, unknown>)[k];
    // null (unknown) is a value of its own: an unknown list pushes null, an empty one its length 0.
    if (Array.isArray(v)) out.push(v.length, ...v);
    else out.push(v);
  }
}
