import { describe, expect, it } from 'vitest';
import { dossierFacts, SUBJECT_FACT_TYPES, subjectFacts } from '../../gateway/policy/facts.js';
import type { Dossier, Subject } from '../../gateway/dossier/types.js';

function dossier(createdAt: string, subject: Partial<Subject>): { d: Dossier; s: Subject } {
  const s = { id: 'S1', role: 'member', name: { given: 'A', family: 'B' }, ...subject } as Subject;
  const d = {
    schema: 'cordon.dossier/v1',
    reference: 'R-1',
    originator: { force: 'west-midlands', officer: { id: 'X1' } },
    createdAt,
    classification: 'OFFICIAL',
    handling: { code: 'P' },
    purpose: 'test',
    subjects: [s],
  } as Dossier;
  return { d, s };
}

function facts(createdAt: string, subject: Partial<Subject>) {
  const { d, s } = dossier(createdAt, subject);
  return subjectFacts(d, s);
}

describe('subject facts', () => {
  it('counts an 18th birthday on the dossier date as adult, the day before as a minor', () => {
    expect(facts('2026-11-20T09:15:00Z', { dateOfBirth: '2008-11-20' })).toMatchObject({ ageAtDossier: 18, isAdult: true, isMinor: false, ageKnown: true });
    expect(facts('2026-11-20T09:15:00Z', { dateOfBirth: '2008-11-21' })).toMatchObject({ ageAtDossier: 17, isAdult: false, isMinor: true });
  });

  it('computes the dossier date in UTC', () => {
    // 23:30 at UTC-2 on the 19th is 01:30 UTC on the 20th: the birthday has come.
    expect(facts('2026-11-19T23:30:00-02:00', { dateOfBirth: '2008-11-20' })).toMatchObject({ ageAtDossier: 18, isAdult: true });
    // 00:30 at UTC+2 on the 20th is 22:30 UTC on the 19th: not yet.
    expect(facts('2026-11-20T00:30:00+02:00', { dateOfBirth: '2008-11-20' })).toMatchObject({ ageAtDossier: 17, isMinor: true });
  });

  it('has a 29 February child come of age on 1 March in a common year', () => {
    expect(facts('2026-02-28T12:00:00Z', { dateOfBirth: '2008-02-29' })).toMatchObject({ ageAtDossier: 17, isMinor: true });
    expect(facts('2026-03-01T12:00:00Z', { dateOfBirth: '2008-02-29' })).toMatchObject({ ageAtDossier: 18, isAdult: true });
  });

  it('treats a missing date of birth as unknown: neither adult nor minor', () => {
    const f = facts('2026-11-20T09:15:00Z', {});
    expect(f).toMatchObject({ ageAtDossier: null, ageKnown: false, isAdult: null, isMinor: null });
  });

  it.each(['2001-02-30', '1987-4-12', 'yesterday', '', '2030-01-01', '1850-01-01'])('treats date of birth %j as unknown', (dob) => {
    expect(facts('2026-11-20T09:15:00Z', { dateOfBirth: dob })).toMatchObject({ ageAtDossier: null, ageKnown: false, isAdult: null, isMinor: null });
  });

  it('treats a malformed createdAt as unknown age', () => {
    expect(facts('20 Nov 2026', { dateOfBirth: '1980-01-01' })).toMatchObject({ ageKnown: false, isAdult: null, isMinor: null });
  });

  it('has every fact present, never undefined', () => {
    const f = facts('2026-11-20T09:15:00Z', {});
    for (const k of Object.keys(SUBJECT_FACT_TYPES)) {
      expect(Object.hasOwn(f, k)).toBe(true);
      expect((f as unknown as Record<string, unknown>)[k]).not.toBeUndefined();
    }
    expect(f.nationality).toBeNull();
    // No vulnerabilities list: none recorded (see facts.ts), the same as [].
    expect(f.vulnerabilities).toEqual([]);
    expect(f.isVulnerable).toBe(false);
    expect(facts('2026-11-20T09:15:00Z', { vulnerabilities: [] })).toMatchObject({ vulnerabilities: [], isVulnerable: false });
  });

  it.each(['child-criminal-exploitation', 'child-sexual-exploitation'])('makes a subject flagged %s a minor whatever the date of birth says', (flag) => {
    const at = '2026-11-20T09:15:00Z';
    // No date of birth: a minor of unknown exact age.
    expect(facts(at, { vulnerabilities: [flag] })).toMatchObject({ isMinor: true, isAdult: false, ageAtDossier: null, ageKnown: false });
    // A date of birth that agrees keeps the age.
    expect(facts(at, { dateOfBirth: '2010-07-19', vulnerabilities: [flag] })).toMatchObject({ isMinor: true, isAdult: false, ageAtDossier: 16, ageKnown: true });
    // One that contradicts the flag is overruled: under 18, exact age unknown.
    expect(facts(at, { role: 'principal', dateOfBirth: '1990-01-01', vulnerabilities: ['debt-bondage', flag] })).toMatchObject({
      isMinor: true,
      isAdult: false,
      ageAtDossier: null,
      ageKnown: false,
    });
  });

  it('reads vulnerabilities, nationality and role', () => {
    const f = facts('2026-11-20T09:15:00Z', { role: 'potential-victim', nationality: 'RO', vulnerabilities: ['debt-bondage'] });
    expect(f).toMatchObject({ role: 'potential-victim', nationality: 'RO', vulnerabilities: ['debt-bondage'], isVulnerable: true });
  });
});

describe('dossier facts', () => {
  it('uses null and [] for what the dossier does not say', () => {
    const { d } = dossier('2026-11-20T09:15:00Z', {});
    expect(dossierFacts(d)).toEqual({
      classification: 'OFFICIAL',
      handlingCode: 'P',
      crimeTypes: [],
      threatBand: null,
      originatorForce: 'west-midlands',
      subjectCount: 1,
    });
  });

  it('reads the group', () => {
    const { d } = dossier('2026-11-20T09:15:00Z', {});
    d.group = { ocgmId: 'G', threatBand: 'A', crimeTypes: ['drugs-supply'] };
    expect(dossierFacts(d)).toMatchObject({ threatBand: 'A', crimeTypes: ['drugs-supply'] });
  });
});
