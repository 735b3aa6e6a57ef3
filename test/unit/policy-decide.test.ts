import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { checkAgreement } from '../../gateway/policy/agreement.js';
import { Decider } from '../../gateway/policy/decide.js';
import { maxConcurrentEngineRuns } from '../../gateway/policy/engines.js';
import { loadPolicySet } from '../../gateway/policy/load.js';
import { redact } from '../../gateway/redact/redact.js';
import { GatewayError } from '../../gateway/errors/index.js';
import type { Dossier } from '../../gateway/dossier/types.js';
import type { Agreement, Condition, GatewayRules, Operation, PartnerPolicy, PolicySet, Rule } from '../../gateway/policy/types.js';
import full from '../../examples/dossier-full.json' with { type: 'json' };
import { TEST_AGREEMENT } from '../helpers/policies.js';

const NOW = new Date('2026-11-21T12:00:00Z');
const SAMPLE = path.resolve(import.meta.dirname, '../../policies');
const dossier = (): Dossier => structuredClone(full) as unknown as Dossier;
const key = Buffer.alloc(32, 5);

const agreement: Agreement = TEST_AGREEMENT;

const notChis: Condition = { all: [{ fact: 'sourceType', operator: 'notEqual', value: 'CHIS' }] };
const GATEWAY: GatewayRules = {
  neverShare: ['originator.officer.name', 'originator.officer.email', 'subjects[].identifiers.pnc'],
  alwaysFilter: { 'subjects[].intelligence[]': notChis },
};
const always: Rule['conditions'] = { all: [{ fact: 'subjectCount', operator: 'greaterThan', value: 0 }] };

function makeSet(fields: Record<string, Operation>, rules: Rule[] = [], over: Partial<Agreement> = {}): PolicySet {
  const p: PartnerPolicy = {
    file: 'partners/t.yaml',
    // A competent authority: handling-C intelligence without condition codes reaches it (policy/handling.ts).
    partner: { id: 't', name: 'Test', kind: 'x', key: { file: 'keys/t.asc', fingerprint: 'A'.repeat(40) }, checks: [], competentAuthority: true },
    agreement: { ...agreement, ...over },
    fields,
    rules,
  };
  return { dir: '/x', revision: 'r1', loadedAt: NOW.toISOString(), gateway: GATEWAY, partners: new Map([['t', p]]), sources: new Map() };
}

async function run(set: PolicySet, d: Dossier = dossier()) {
  const decision = await new Decider(set).decide('t', d, NOW);
  const refs = new Map(d.subjects.map((s, i) => [s.id, `ref-${i + 1}`]));
  const out = decision.block ? undefined : redact(d, decision.plan, { refs, pseudonymKey: key }).dossier;
  return { decision, out, subjects: (out?.subjects ?? []) as Array<Record<string, unknown>> };
}

describe('checkAgreement', () => {
  const d = dossier();
  it('is in force from the start of inForceFrom (UTC)', () => {
    expect(checkAgreement({ ...agreement, inForceFrom: '2026-11-22' }, d, NOW)?.reason).toBe('agreement_not_in_force');
    expect(checkAgreement({ ...agreement, inForceFrom: '2026-11-21' }, d, new Date('2026-11-21T00:00:00Z'))).toBeUndefined();
    expect(checkAgreement({ ...agreement, inForceFrom: '2026-11-21' }, d, new Date('2026-11-20T23:59:59.999Z'))?.reason).toBe('agreement_not_in_force');
  });
  it('stops after the end of the reviewBy day (UTC)', () => {
    expect(checkAgreement({ ...agreement, reviewBy: '2026-11-21' }, d, new Date('2026-11-21T23:59:59.999Z'))).toBeUndefined();
    expect(checkAgreement({ ...agreement, reviewBy: '2026-11-21' }, d, new Date('2026-11-22T00:00:00Z'))?.reason).toBe('agreement_expired');
  });
  it('refuses a classification above the agreement, and anything unknown', () => {
    expect(checkAgreement({ ...agreement, highestClassification: 'OFFICIAL' }, d, NOW)?.reason).toBe('classification_above_agreement');
    expect(checkAgreement(agreement, { ...d, classification: 'SECRET' as never }, NOW)?.reason).toBe('classification_above_agreement');
    expect(checkAgreement({ ...agreement, highestClassification: 'OFFICIAL' }, { ...d, classification: 'OFFICIAL' }, NOW)).toBeUndefined();
  });
  it('refuses a handling code the agreement does not accept', () => {
    expect(checkAgreement({ ...agreement, handlingCodes: ['P'] }, d, NOW)?.reason).toBe('handling_not_accepted');
    expect(checkAgreement({ ...agreement, handlingCodes: ['P'] }, { ...d, handling: { code: 'P' } }, NOW)).toBeUndefined();
  });
  it('blocks the decision with an empty plan', async () => {
    const { decision } = await run(makeSet({ reference: { op: 'keep' } }, [], { reviewBy: '2026-01-01' }));
    expect(decision.block?.reason).toBe('agreement_expired');
    expect(decision.plan.dossier).toEqual({});
    expect(decision.plan.subjects.every((s) => s === null)).toBe(true);
  });
});

describe('Decider: rules only tighten', () => {
  const base: Record<string, Operation> = {
    reference: { op: 'keep' },
    'subjects[].name.family': { op: 'keep' },
    'subjects[].dateOfBirth': { op: 'keep' },
    'subjects[].addresses[].postcode': { op: 'keep' },
    'subjects[].intelligence[].summary': { op: 'keep' },
    'subjects[].phones[]': { op: 'keep' },
  };

  it('never widens: paths missing from the base stay stripped whatever a rule says', async () => {
    const rule: Rule = {
      name: 'everyone',
      when: 'subject',
      conditions: always,
      then: {
        set: {
          'subjects[].name.given': { op: 'keep' },
          'subjects[].dateOfBirth': { op: 'generalise', to: 'year' },
          'subjects[].addresses[]': { op: 'generalise', to: 'town' },
          'subjects[].vehicles[]': { op: 'count' },
          'subjects[].intelligence[]': { op: 'count' },
          'subjects[].identifiers.niNumber': { op: 'mask', show: 'last', chars: 2 },
        },
      },
    };
    const { subjects, decision } = await run(makeSet(base, [rule]));
    const s1 = subjects[0] as Record<string, unknown>;
    expect(s1.name).toEqual({ family: 'Okafor' });
    expect(s1.dateOfBirth).toBe('1987');
    expect(s1.addresses).toBeUndefined(); // town was never granted, postcode is now excluded by the town rule
    expect(s1.vehicles).toBeUndefined();
    expect(s1.intelligence).toBeUndefined();
    expect(s1.identifiers).toBeUndefined();
    const dob = decision.trace.find((t) => t.subject === 'S1' && t.path === 'subjects[].dateOfBirth');
    expect(dob).toMatchObject({ rule: 'everyone', op: 'generalise:year' });
    const given = decision.trace.find((t) => t.subject === 'S1' && t.path === 'subjects[].name.given');
    expect(given).toMatchObject({ op: 'strip', note: expect.stringMatching(/not in the base allowlist/) });
  });

  it('lets a rule restrict the field an address generalisation emits, and town beats postcode', async () => {
    const fields: Record<string, Operation> = { 'subjects[].addresses[]': { op: 'generalise', to: 'postcode' } };
    const toTown: Rule = { name: 'to-town', when: 'subject', conditions: always, then: { set: { 'subjects[].addresses[]': { op: 'generalise', to: 'town' } } } };
    expect((await run(makeSet(fields, [toTown]))).subjects[0]?.addresses).toEqual([{ town: 'Coventry' }, { town: 'Coventry' }]);
    const sector: Rule = { name: 'sector', when: 'subject', conditions: always, then: { set: { 'subjects[].addresses[].postcode': { op: 'generalise', to: 'sector' } } } };
    expect((await run(makeSet(fields, [sector]))).subjects[0]?.addresses).toEqual([{ postcode: 'CV6 5' }, { postcode: 'CV6 4' }]);
    const strip: Rule = { name: 'strip', when: 'subject', conditions: always, then: { set: { 'subjects[].addresses[].postcode': { op: 'strip' } } } };
    expect((await run(makeSet(fields, [strip]))).subjects[0]?.addresses).toBeUndefined();
  });

  it('makes the most restrictive operation win whatever the rule order', async () => {
    const a: Rule = { name: 'a', when: 'subject', conditions: always, then: { set: { 'subjects[].dateOfBirth': { op: 'generalise', to: 'month' } } } };
    const b: Rule = { name: 'b', when: 'subject', conditions: always, then: { set: { 'subjects[].dateOfBirth': { op: 'generalise', to: 'decade' } } } };
    expect((await run(makeSet(base, [a, b]))).subjects[0]?.dateOfBirth).toBe('1980s');
    expect((await run(makeSet(base, [b, a]))).subjects[0]?.dateOfBirth).toBe('1980s');
  });

  it('applies dossier rules to every subject and to dossier fields', async () => {
    const rule: Rule = {
      name: 'drugs',
      when: 'dossier',
      conditions: { all: [{ fact: 'crimeTypes', operator: 'contains', value: 'drugs-supply' }] },
      then: { set: { reference: { op: 'replace', with: '[ref]' }, 'subjects[].dateOfBirth': { op: 'generalise', to: 'decade' } } },
    };
    const { out, subjects } = await run(makeSet(base, [rule]));
    expect(out?.reference).toBe('[ref]');
    expect(subjects.map((s) => s.dateOfBirth)).toEqual(['1980s', '1990s', '2000s', '2010s']);
  });
});

describe('Decider: gateway constraints', () => {
  it('strips neverShare paths even if a base allowlist grants them', async () => {
    const { out, subjects } = await run(
      makeSet({ 'originator.officer.name': { op: 'keep' }, 'originator.officer.id': { op: 'keep' }, 'subjects[].identifiers.pnc': { op: 'keep' }, 'subjects[].identifiers.niNumber': { op: 'keep' } }),
    );
    expect(out?.originator).toEqual({ officer: { id: 'WM4412' } });
    expect(subjects[0]?.identifiers).toEqual({ niNumber: 'QQ123456C' });
  });

  it('filters CHIS intelligence out even for a partner with no filter of its own', async () => {
    const { subjects } = await run(makeSet({ 'subjects[].intelligence[].summary': { op: 'keep' } }));
    expect(subjects[0]?.intelligence).toEqual([{ summary: 'Believed to control rentals of three houses on Cedar Road' }]);
  });

  it('ANDs the gateway filter with the partner filter', async () => {
    const graded: Condition = { all: [{ fact: 'grading.source', operator: 'lessThanInclusive', value: 2 }, { fact: 'grading.intelligence', operator: 'in', value: ['A', 'B'] }] };
    const { subjects, decision } = await run(makeSet({ 'subjects[].intelligence[]': { op: 'filter', where: graded }, 'subjects[].intelligence[].summary': { op: 'keep' } }));
    expect(subjects[0]?.intelligence).toHaveLength(1);
    expect(subjects[1]?.intelligence).toBeUndefined(); // graded C
    expect(decision.trace.find((t) => t.path === 'subjects[].intelligence[]')?.rule).toBe('base + gateway + handling-conditions');
  });

  it('never counts CHIS items', async () => {
    const { subjects } = await run(makeSet({ 'subjects[].intelligence[]': { op: 'count' } }));
    expect(subjects[0]?.intelligence).toBe(1);
  });
});

describe('Decider: exclusions', () => {
  const fields: Record<string, Operation> = { 'subjects[].name.family': { op: 'keep' } };
  it('leaves excluded subjects out and traces why', async () => {
    const rule: Rule = { name: 'no-victims', when: 'subject', conditions: { all: [{ fact: 'role', operator: 'equal', value: 'potential-victim' }] }, then: { exclude: true } };
    const { decision, subjects } = await run(makeSet(fields, [rule]));
    expect(decision.plan.subjects.map((s) => s === null)).toEqual([false, false, true, false]);
    expect(subjects.map((s) => s.id)).toEqual(['ref-1', 'ref-2', 'ref-4']);
    expect(decision.trace).toContainEqual({ rule: 'no-victims', scope: 'subject', subject: 'S3', subjectIndex: 2, path: 'subjects[]', op: 'exclude' });
  });

  it('accepts json-rules-engine all / any / not at the top of a rule', async () => {
    const rule: Rule = {
      name: 'only-principals',
      when: 'subject',
      conditions: { not: { any: [{ fact: 'role', operator: 'equal', value: 'principal' }, { fact: 'nationality', operator: 'equal', value: 'RO' }] } },
      then: { exclude: true },
    };
    const { decision } = await run(makeSet(fields, [rule]));
    expect(decision.plan.subjects.map((s) => s === null)).toEqual([false, true, false, true]);
  });

  it('blocks when every subject is excluded', async () => {
    const rule: Rule = { name: 'nobody', when: 'subject', conditions: always, then: { exclude: true } };
    const { decision } = await run(makeSet(fields, [rule]));
    expect(decision.block?.reason).toBe('no_shareable_subjects');
  });

  it('uses isAdult so that an unknown age is never taken for an adult', async () => {
    const rule: Rule = { name: 'adults', when: 'subject', conditions: { all: [{ fact: 'isAdult', operator: 'equal', value: false }] }, then: { exclude: true } };
    const d = dossier();
    delete d.subjects[0]?.dateOfBirth;
    const { decision } = await run(makeSet(fields, [rule]), d);
    expect(decision.plan.subjects.map((s) => s === null)).toEqual([true, false, false, true]);
  });
});

describe('Decider: engines and caches', () => {
  it('refuses an unknown partner', async () => {
    await expect(new Decider(makeSet({})).decide('nobody', dossier(), NOW)).rejects.toBeInstanceOf(GatewayError);
  });

  it('reuses the same plan object for the same outcome (so projections compile once)', async () => {
    const decider = new Decider(await loadPolicySet(SAMPLE, NOW));
    const a = await decider.decide('council-housing', dossier(), NOW);
    const b = await decider.decide('council-housing', dossier(), NOW);
    expect(b.plan.subjects[0]).toBe(a.plan.subjects[0]);
    expect(b.plan.subjects[1]).toBe(a.plan.subjects[0]); // same facts outcome: principal and member
    expect(b).toEqual(a);
  });

  it('gives 50 concurrent decisions the same results as sequential ones, one engine run at a time', async () => {
    const set = await loadPolicySet(SAMPLE, NOW);
    const roles = ['principal', 'member', 'associate', 'facilitator', 'potential-victim', 'victim', 'witness', 'other'] as const;
    const dobs = [undefined, '1950-01-01', '1987-04-12', '2008-11-20', '2008-11-21', '2015-06-01', '2001-02-30'];
    const variants: Dossier[] = [];
    for (let i = 0; i < 50; i++) {
      const d = dossier();
      d.reference = `WMP-OCG-2026-${String(i).padStart(5, '0')}`;
      if (d.group) d.group.threatBand = i % 3 === 0 ? 'A' : 'B';
      d.subjects.forEach((s, j) => {
        s.role = roles[(i + j) % roles.length] as (typeof roles)[number];
        const dob = dobs[(i * 3 + j) % dobs.length];
        if (dob === undefined) delete s.dateOfBirth;
        else s.dateOfBirth = dob;
        s.vulnerabilities = (i + j) % 4 === 0 ? ['debt-bondage'] : [];
      });
      variants.push(d);
    }
    const partners = [...set.partners.keys()];
    const sequential = new Decider(set, { outcomeCacheSize: 1 });
    const expected: unknown[] = [];
    for (const d of variants) for (const p of partners) expected.push(await sequential.decide(p, d, NOW));
    const concurrent = new Decider(set, { outcomeCacheSize: 1 });
    const got = await Promise.all(variants.flatMap((d) => partners.map((p) => concurrent.decide(p, d, NOW))));
    expect(got).toEqual(expected);
    expect(maxConcurrentEngineRuns()).toBe(1);
  });
});
