/**
 * The plain, precomputed facts policy rules are evaluated against (json-rules-engine gets these and
 * nothing else: no JSONPath, no async facts). Every fact is always present; unknown values are null
 * (or false for the booleans), never undefined, so `allowUndefinedFacts: false` never trips.
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
  /** Completed years at the dossier's createdAt (UTC); null when unknown. */
  ageAtDossier: number | null;
  ageKnown: boolean;
  /** True only when the date of birth is known and the subject was 18 or over at createdAt. */
  isAdult: boolean;
  /** True only when the date of birth is known and the subject was under 18 at createdAt. */
  isMinor: boolean;
  vulnerabilities: string[];
  isVulnerable: boolean;
  nationality: string | null;
}

export type FactType = 'string' | 'string?' | 'number' | 'number?' | 'boolean' | 'string[]';

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
  isAdult: 'boolean',
  isMinor: 'boolean',
  vulnerabilities: 'string[]',
  isVulnerable: 'boolean',
  nationality: 'string?',
});

/** Schema paths whose enums bound the values a fact can take (for load-time value checks). */
export const FACT_ENUM_PATHS: Readonly<Record<string, string>> = Object.freeze({
  classification: 'classification',
  handlingCode: 'handling.code',
  threatBand: 'group.threatBand',
  role: 'subjects[].role',
});

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
  const age = ageOn(s.dateOfBirth, at);
  const vulnerabilities = strings(s.vulnerabilities);
  return {
    role: str(s.role),
    ageAtDossier: age ?? null,
    ageKnown: age !== undefined,
    isAdult: age !== undefined && age >= 18,
    isMinor: age !== undefined && age < 18,
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
    if (Array.isArray(v)) out.push(v.length, ...v);
    else out.push(v);
  }
}
