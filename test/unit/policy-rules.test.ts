/**
 * Every rule fact reaches json-rules-engine as a plain precomputed fact, at dossier level
 * (classification, handling code, crime types, threat band, originator, subject count) and at subject
 * level (role, age at the dossier date, age known, adult, minor, vulnerabilities, vulnerable,
 * nationality); item filters run on grading, source type and relationship. Which rules fired is
 * reported per decision (for policy-test coverage).
 */
import { describe, expect, it } from 'vitest';
import { Decider } from '../../gateway/policy/decide.js';
import type { Dossier } from '../../gateway/dossier/types.js';
import type { Agreement, Condition, Operation, PartnerPolicy, PolicySet, Rule } from '../../gateway/policy/types.js';
import { coverage, type PolicyTestResult } from '../../gateway/governance/testing.js';
import { redact } from '../../gateway/redact/redact.js';
import full from '../../examples/dossier-full.json' with { type: 'json' };
import { TEST_AGREEMENT } from '../helpers/policies.js';

const NOW = new Date('2026-11-21T12:00:00Z');
const agreement: Agreement = TEST_AGREEMENT;

function makeSet(fields: Record<string, Operation>, rules: Rule[]): PolicySet {
  const p: PartnerPolicy = {
    file: 'partners/t.yaml',
    partner: { id: 't', name: 'Test', kind: 'x', key: { file: 'keys/t.asc', fingerprint: 'A'.repeat(40) }, checks: [] },
    agreement,
    fields,
    rules,
  };
  return { dir: '/x', revision: 'r1', loadedAt: NOW.toISOString(), gateway: { neverShare: [], alwaysFilter: {} }, partners: new Map([['t', p]]), sources: new Map() };
}

const c = (fact: string, operator: string, value: unknown): Condition => ({ fact, operator, value });
const rule = (name: string, when: Rule['when'], cond: Condition, set: Record<string, Operation> = { purpose: { op: 'strip' } }): Rule => ({
  name,
  when,
  conditions: { all: [cond] },
  then: { set },
});

describe('rule facts', () => {
  // dossier-full: OFFICIAL-SENSITIVE, handling C, threat band B, crime types incl. drugs-supply, west-midlands,
  // 4 subjects: S1 principal GB adult, S2 member adult, S3 potential-victim RO vulnerable adult, S4 child.
  const d = structuredClone(full) as unknown as Dossier;
  const dossierRules: Rule[] = [
    rule('classification', 'dossier', c('classification', 'equal', 'OFFICIAL-SENSITIVE')),
    rule('classification-no', 'dossier', c('classification', 'equal', 'OFFICIAL')),
    rule('handling', 'dossier', c('handlingCode', 'equal', 'C')),
    rule('handling-no', 'dossier', c('handlingCode', 'equal', 'P')),
    rule('crime', 'dossier', c('crimeTypes', 'contains', 'drugs-supply')),
    rule('crime-no', 'dossier', c('crimeTypes', 'contains', 'fraud')),
    rule('threat', 'dossier', c('threatBand', 'in', ['A', 'B'])),
    rule('threat-no', 'dossier', c('threatBand', 'equal', 'A')),
    rule('originator', 'dossier', c('originatorForce', 'equal', 'west-midlands')),
    rule('originator-no', 'dossier', c('originatorForce', 'equal', 'gmp')),
    rule('count', 'dossier', c('subjectCount', 'greaterThanInclusive', 4)),
    rule('count-no', 'dossier', c('subjectCount', 'greaterThan', 4)),
  ];
  const subjectRules: Rule[] = [
    rule('victim', 'subject', c('role', 'equal', 'potential-victim'), { 'subjects[].name.given': { op: 'strip' } }),
    rule('age-under-18', 'subject', c('ageAtDossier', 'lessThan', 18), { 'subjects[].name.family': { op: 'strip' } }),
    rule('age-known', 'subject', c('ageKnown', 'equal', true), { 'subjects[].gender': { op: 'strip' } }),
    rule('adult', 'subject', c('isAdult', 'equal', true), { 'subjects[].role': { op: 'strip' } }),
    rule('minor', 'subject', c('isMinor', 'equal', true), { 'subjects[].dateOfBirth': { op: 'generalise', to: 'ageBand' } }),
    rule('debt-bondage', 'subject', c('vulnerabilities', 'contains', 'debt-bondage'), { 'subjects[].nationality': { op: 'strip' } }),
    rule('vulnerable', 'subject', c('isVulnerable', 'equal', true), { 'subjects[].vulnerabilities[]': { op: 'count' } }),
    rule('gb', 'subject', c('nationality', 'equal', 'GB'), { 'subjects[].dateOfBirth': { op: 'generalise', to: 'year' } }),
    rule('in-threat-b', 'subject', c('threatBand', 'equal', 'B'), { 'subjects[].name.aliases[]': { op: 'mask', show: 'first', chars: 1 } }),
  ];
  const fields: Record<string, Operation> = {
    purpose: { op: 'keep' },
    'subjects[].role': { op: 'keep' },
    'subjects[].name.given': { op: 'keep' },
    'subjects[].name.family': { op: 'keep' },
    'subjects[].name.aliases[]': { op: 'keep' },
    'subjects[].dateOfBirth': { op: 'keep' },
    'subjects[].gender': { op: 'keep' },
    'subjects[].nationality': { op: 'keep' },
    'subjects[].vulnerabilities[]': { op: 'keep' },
  };

  it('fire exactly when their facts hold', async () => {
    const decision = await new Decider(makeSet(fields, [...dossierRules, ...subjectRules])).decide('t', d, NOW);
    expect(decision.fired).toEqual(['classification', 'handling', 'crime', 'threat', 'originator', 'count', 'victim', 'age-under-18', 'age-known', 'adult', 'minor', 'debt-bondage', 'vulnerable', 'gb', 'in-threat-b']);
    const refs = new Map(d.subjects.map((s, i) => [s.id, `ref-${i + 1}`]));
    const out = redact(d, decision.plan, { refs, pseudonymKey: Buffer.alloc(32, 1) }).dossier as { purpose?: string; subjects: Array<Record<string, any>> };
    expect(out.purpose).toBeUndefined(); // dossier rules stripped it
    const [s1, s2, s3, s4] = out.subjects as [Record<string, any>, Record<string, any>, Record<string, any>, Record<string, any>];
    expect(s1).toMatchObject({ name: { given: 'Daniel', family: 'Okafor', aliases: ['D******', 'D*****'] }, dateOfBirth: '1987', nationality: 'GB' });
    expect(s1).not.toHaveProperty('role'); // adult
    expect(s1).not.toHaveProperty('gender'); // age known
    expect(s2.dateOfBirth).toBe('1991'); // GB
    expect(s3.dateOfBirth).toBe('2000-02-05'); // RO: kept
    expect(s3.name).toEqual({ family: 'Popescu' }); // victim: given name stripped
    expect(s3).not.toHaveProperty('nationality'); // debt bondage
    expect(s3.vulnerabilities).toBe(3); // vulnerable: counted
    expect(s4.name).toEqual({ given: 'Tyler' }); // under 18: family name stripped
    expect(s4.dateOfBirth).toBe('under-18'); // minor: age band
    expect(s4.role).toBe('associate');
  });

  it('fire on an unknown date of birth and a missing threat band (unknown is not "no"), never on a known empty list', async () => {
    const x = structuredClone(d) as Dossier & { group?: unknown };
    delete x.group;
    delete (x.subjects[0] as { dateOfBirth?: string }).dateOfBirth;
    const decision = await new Decider(makeSet(fields, [...dossierRules, ...subjectRules])).decide('t', x, NOW);
    expect(decision.fired).toContain('threat');
    expect(decision.fired).toContain('threat-no');
    expect(decision.fired).not.toContain('crime'); // no group: crime types are [] (known none)
    const refs = new Map(x.subjects.map((s, i) => [s.id, `ref-${i + 1}`]));
    const out = redact(x, decision.plan, { refs, pseudonymKey: Buffer.alloc(32, 1) }).dossier as { subjects: Array<Record<string, any>> };
    // Age unknown: both "adult" (role stripped) and "under 18" (family name stripped) fire; "age known" does not.
    expect(out.subjects[0]).not.toHaveProperty('role');
    expect(out.subjects[0]?.name).not.toHaveProperty('family');
    expect(out.subjects[0]).toMatchObject({ gender: 'male' });
    const notes = decision.trace.filter((t) => t.subject === 'S1' && t.note !== undefined).map((t) => `${t.rule}: ${t.note}`);
    expect(notes).toContain('adult: applied: age unknown (isAdult)');
    expect(notes).toContain('age-under-18: applied: age unknown (ageAtDossier)');
  });
});

describe('item filters', () => {
  it('keep only vehicles the subject keeps, and only intelligence graded 1-2 / A-B with handling P', async () => {
    const set = makeSet(
      {
        'subjects[].vehicles[]': { op: 'filter', where: { all: [c('relationship', 'equal', 'keeper')] } },
        'subjects[].vehicles[].vrm': { op: 'keep' },
        'subjects[].intelligence[]': {
          op: 'filter',
          where: { all: [c('grading.source', 'lessThanInclusive', 2), c('grading.intelligence', 'in', ['A', 'B']), c('grading.handling', 'equal', 'P')] },
        },
        'subjects[].intelligence[].summary': { op: 'keep' },
        'subjects[].intelligence[].grading.source': { op: 'keep' },
        'subjects[].intelligence[].grading.intelligence': { op: 'keep' },
        'subjects[].intelligence[].grading.handling': { op: 'keep' },
        'subjects[].intelligence[].handlingConditions': { op: 'keep' },
      },
      [],
    );
    const d = structuredClone(full) as unknown as Dossier;
    const decision = await new Decider(set).decide('t', d, NOW);
    const refs = new Map(d.subjects.map((s, i) => [s.id, `ref-${i + 1}`]));
    const out = redact(d, decision.plan, { refs, pseudonymKey: Buffer.alloc(32, 1) }).dossier as { subjects: Array<Record<string, any>> };
    expect(out.subjects[0]!.vehicles).toEqual([{ vrm: 'AB12 CDE' }]); // the keeper's, not the van it uses
    // S1's two items: one graded 2/B/P (kept, no gateway CHIS filter in this set), one 1/B/C (handling C: dropped)
    expect(out.subjects[0]!.intelligence).toEqual([{ summary: 'Stores cash at the business unit overnight', grading: { source: 2, intelligence: 'B', handling: 'P' } }]);
  });
});

describe('coverage', () => {
  it('counts, per partner, the rules that fired in at least one test', () => {
    const partners = [
      { partner: { id: 'a' }, rules: [{ name: 'r1' }, { name: 'r2' }, { name: 'r3' }] },
      { partner: { id: 'b' }, rules: [] },
      { partner: { id: 'c' }, rules: [{ name: 'x' }] },
    ];
    const result = (partner: string, fired: string[], passed = true): PolicyTestResult => ({ file: 'f', name: 'n', partner, passed, failures: [], fired });
    expect(coverage(partners, [result('a', ['r1']), result('a', ['r3', 'r1'], false), result('b', [])])).toEqual([
      { partner: 'a', rules: ['r1', 'r2', 'r3'], fired: ['r1', 'r3'], tests: 2, passed: 1 },
      { partner: 'b', rules: [], fired: [], tests: 1, passed: 1 },
      { partner: 'c', rules: ['x'], fired: [], tests: 0, passed: 0 },
    ]);
  });
});
