/**
 * The sample configuration in policies/ must guarantee, for every valid dossier:
 *  - no partner gets CHIS intelligence, the officer's name or email, PNC ids, or the dossier's own subject ids;
 *  - no subject who is not a known adult reaches dvla, dwp-benefits, hmrc or immigration-enforcement;
 *  - no potential victim, victim or witness reaches an enforcement partner (council-housing, dvla,
 *    dwp-benefits, hmrc, immigration-enforcement);
 *  - childrens-services receives only known minors;
 *  - no intelligence graded E reaches anyone, nor graded 3 or D a partner that is not a competent
 *    authority (council-housing, childrens-services);
 *  - an intelligence item reaches a partner only if the partner's agreement honours every condition code
 *    it carries, and a handling-C item without codes only a competent authority;
 * and each partner still gets what its checks need.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import path from 'node:path';
import { Decider } from '../../gateway/policy/decide.js';
import { subjectFacts } from '../../gateway/policy/facts.js';
import { loadPolicyTests } from '../../gateway/governance/policy-tests.js';
import { loadPolicySet } from '../../gateway/policy/load.js';
import { runPolicyTest, runPolicyTests, valuesAt } from '../../gateway/governance/testing.js';
import { redact } from '../../gateway/redact/redact.js';
import { validateDossier } from '../../gateway/dossier/validate.js';
import type { Dossier, Subject } from '../../gateway/dossier/types.js';
import type { PolicySet } from '../../gateway/policy/types.js';
import full from '../../examples/dossier-full.json' with { type: 'json' };

const NOW = new Date('2026-11-21T12:00:00Z');
const SAMPLE = path.resolve(import.meta.dirname, '../../policies');
const PARTNERS = ['council-housing', 'dwp-benefits', 'dvla', 'hmrc', 'immigration-enforcement', 'childrens-services'];
const ADULTS_ONLY = new Set(['dvla', 'dwp-benefits', 'hmrc', 'immigration-enforcement']);
const NOT_COMPETENT = new Set(['council-housing', 'childrens-services']);
const ENFORCEMENT = new Set(['council-housing', 'dvla', 'dwp-benefits', 'hmrc', 'immigration-enforcement']);

let set: PolicySet;
let decider: Decider;
beforeAll(async () => {
  set = await loadPolicySet(SAMPLE, NOW);
  decider = new Decider(set);
});

interface Shared {
  out: Record<string, unknown>;
  text: string;
  /** Input subject index of each output subject. */
  indexes: number[];
  subjects: Array<Record<string, unknown>>;
}

async function share(partner: string, d: Dossier): Promise<Shared | undefined> {
  const decision = await decider.decide(partner, d, NOW);
  if (decision.block) return undefined;
  const refs = new Map(d.subjects.map((s, i) => [s.id, `ref-${i}`]));
  const { dossier: out } = redact(d, decision.plan, { refs, pseudonymKey: Buffer.alloc(32, PARTNERS.indexOf(partner) + 1) });
  const subjects = (out.subjects ?? []) as Array<Record<string, unknown>>;
  return { out, text: JSON.stringify(out), subjects, indexes: subjects.map((s) => Number(String(s.id).slice(4))) };
}

/** Every intelligence item disclosed (found by its unique summary) is one the partner may have under its handling conditions. */
function checkHandling(partner: string, d: Dossier, shared: Shared): void {
  const policy = set.partners.get(partner)!;
  const honoured = new Set(policy.agreement.conditionsHonoured ?? []);
  const bySummary = new Map(d.subjects.flatMap((s) => (s.intelligence ?? []).map((i) => [i.summary, i] as const)));
  for (const summary of valuesAt(shared.out, 'subjects[].intelligence[].summary')) {
    const item = bySummary.get(summary as string)!;
    const codes = item.conditions ?? [];
    for (const c of codes) expect(honoured.has(c), `${partner} got an item with condition ${c}`).toBe(true);
    if (item.grading.handling === 'C' && codes.length === 0) expect(policy.partner.competentAuthority, `${partner} got an uncoded handling-C item`).toBe(true);
  }
}

function checkGuarantees(partner: string, d: Dossier, shared: Shared | undefined, forbidden: string[]): void {
  if (!shared) return;
  for (const value of forbidden) expect(shared.text, `${partner} must not see ${value}`).not.toContain(JSON.stringify(value).slice(1, -1));
  for (const s of d.subjects) expect(shared.text, `${partner} must not see subject id ${s.id}`).not.toContain(JSON.stringify(s.id));
  for (const i of shared.indexes) {
    const facts = subjectFacts(d, d.subjects[i] as Subject);
    if (ADULTS_ONLY.has(partner)) expect(facts.isAdult, `${partner} got a subject who is not a known adult`).toBe(true);
    if (ENFORCEMENT.has(partner)) expect(['potential-victim', 'victim', 'witness'], `${partner} got a victim or witness`).not.toContain(facts.role);
    if (partner === 'childrens-services') expect(facts.isMinor, 'childrens-services got a subject who is not a known minor').toBe(true);
  }
  expect(valuesAt(shared.out, 'originator.officer.name')).toEqual([]);
  expect(valuesAt(shared.out, 'originator.officer.email')).toEqual([]);
  expect(valuesAt(shared.out, 'subjects[].identifiers.pnc')).toEqual([]);
  expect(valuesAt(shared.out, 'subjects[].intelligence[].sourceType')).not.toContain('CHIS');
  for (const g of valuesAt(shared.out, 'subjects[].intelligence[].grading') as Array<{ source: number; intelligence: string }>) {
    expect(g.intelligence, `${partner} got intelligence graded E`).not.toBe('E');
    if (NOT_COMPETENT.has(partner)) expect(`${g.source}${g.intelligence}`, `${partner} is not a competent authority`).toMatch(/^[12][ABC]$/);
  }
}

describe('sample policies on dossier-full.json', () => {
  const d = full as unknown as Dossier;
  const forbidden = [
    'DS Priya Raman',
    'priya.raman@example.police.uk',
    '09/123456X',
    '12/998877K',
    'Stores cash at the business unit overnight', // the CHIS report
  ];

  it.each(PARTNERS)('%s: none of the forbidden values, none of the forbidden subjects', async (partner) => {
    const shared = await share(partner, d);
    expect(shared, `${partner} should receive this dossier`).toBeDefined();
    checkGuarantees(partner, d, shared, forbidden);
    // the handling conditions travel with the dossier
    expect((shared?.out.handling as { conditions?: string }).conditions).toBe(d.handling.conditions);
  });

  it('dvla gets the VRMs, names, dates of birth and licence numbers of adult suspects', async () => {
    const s = (await share('dvla', d)) as Shared;
    expect(s.indexes).toEqual([0, 1]);
    expect(valuesAt(s.out, 'subjects[].vehicles[].vrm')).toEqual(['AB12 CDE', 'KX19 LMN', 'FG65 HJK']);
    expect(valuesAt(s.out, 'subjects[].name.family')).toEqual(['Okafor', 'Okafor']);
    expect(valuesAt(s.out, 'subjects[].dateOfBirth')).toEqual(['1987-04-12', '1991-11-30']);
    expect(valuesAt(s.out, 'subjects[].identifiers.drivingLicence')).toEqual(['OKAFO804127D99XY']);
  });

  it('dwp-benefits gets names, full dates of birth and NI numbers', async () => {
    const s = (await share('dwp-benefits', d)) as Shared;
    expect(s.indexes).toEqual([0, 1]);
    expect(valuesAt(s.out, 'subjects[].name.given')).toEqual(['Daniel', 'Samuel']);
    expect(valuesAt(s.out, 'subjects[].dateOfBirth')).toEqual(['1987-04-12', '1991-11-30']);
    expect(valuesAt(s.out, 'subjects[].identifiers.niNumber')).toEqual(['QQ123456C', 'QQ654321A']);
  });

  it('council-housing gets names, dates of birth and addresses of the adult suspects (not the victim, not the child)', async () => {
    const s = (await share('council-housing', d)) as Shared;
    expect(s.indexes).toEqual([0, 1]);
    expect(valuesAt(s.out, 'subjects[].name.family')).toEqual(['Okafor', 'Okafor']);
    expect(valuesAt(s.out, 'subjects[].dateOfBirth')).toHaveLength(2);
    expect(valuesAt(s.out, 'subjects[].addresses[].line1')).toEqual(['14 Cedar Road', 'Unit 4, Holbrook Trading Estate', 'Flat 3, 88 Stoney Stanton Road']);
    expect(s.text).not.toContain('Popescu');
    // the grade-C item is filtered out, and the handling-C item without condition codes is withheld:
    // housing is not a competent authority (policy/handling.ts)
    expect(valuesAt(s.out, 'subjects[].intelligence[]')).toEqual([]);
    expect(s.text).not.toContain('Housing enforcement only');
    expect(s.text).not.toContain('Collects debts for the group');
  });

  it('hmrc gets businesses and company numbers (with names and NI numbers)', async () => {
    const s = (await share('hmrc', d)) as Shared;
    expect(valuesAt(s.out, 'subjects[].businesses[].name')).toEqual(['Cedar Hand Car Wash Ltd']);
    expect(valuesAt(s.out, 'subjects[].businesses[].companyNumber')).toEqual(['09876543']);
    expect(valuesAt(s.out, 'subjects[].identifiers.niNumber')).toEqual(['QQ123456C', 'QQ654321A']);
    expect(valuesAt(s.out, 'subjects[].name.family')).toEqual(['Okafor', 'Okafor']);
  });

  it('immigration-enforcement gets names, nationality and passport numbers of adults who are not victims', async () => {
    const s = (await share('immigration-enforcement', d)) as Shared;
    expect(s.indexes).toEqual([0, 1]);
    expect(s.text).not.toContain('RO0512345'); // the potential victim's passport
    const withPassport = structuredClone(d);
    (withPassport.subjects[1] as Subject).identifiers = { pnc: '12/998877K', passport: 'X12345678' };
    const p = (await share('immigration-enforcement', withPassport)) as Shared;
    expect(valuesAt(p.out, 'subjects[].identifiers.passport')).toEqual(['X12345678']);
    expect(valuesAt(p.out, 'subjects[].nationality')).toEqual(['GB', 'GB']);
    expect(valuesAt(p.out, 'subjects[].name.given')).toEqual(['Daniel', 'Samuel']);
  });

  it('childrens-services gets only the known child, with name, date of birth, address, vulnerabilities and coded safeguarding intelligence', async () => {
    const s = (await share('childrens-services', d)) as Shared;
    expect(s.indexes).toEqual([3]);
    const child = s.subjects[0] as Record<string, unknown>;
    expect(child.name).toEqual({ given: 'Tyler', family: 'Brooks' });
    expect(child.dateOfBirth).toBe('2010-07-19');
    expect(child.addresses).toEqual([{ type: 'home', line1: '5 Lythalls Lane', town: 'Coventry', postcode: 'CV6 6FP' }]);
    expect(child.vulnerabilities).toEqual(['child-criminal-exploitation']);
    // Handling C with free-text conditions only: competent authorities alone (children's services is not one).
    expect(child.intelligence).toBeUndefined();
    const coded = structuredClone(d);
    (coded.subjects[3]!.intelligence![0] as { conditions?: string[] }).conditions = ['safeguarding-only'];
    const c = (await share('childrens-services', coded)) as Shared;
    expect((c.subjects[0] as Record<string, unknown>).intelligence).toEqual([
      {
        recordedAt: '2026-10-20',
        summary: 'Seen carrying packages between Cedar Road addresses',
        grading: { source: 2, intelligence: 'B', handling: 'C' },
        handlingConditions: 'Safeguarding referral only',
        conditions: ['safeguarding-only'],
      },
    ]);
  });
});

describe('sample policies on any valid dossier (property)', () => {
  const roles = ['principal', 'member', 'associate', 'facilitator', 'potential-victim', 'victim', 'witness', 'other'] as const;
  const sourceTypes = ['CHIS', 'partner-agency', 'public', 'officer', 'neighbourhood-officer', 'open-source', 'technical', 'other'] as const;
  const date = fc.date({ min: new Date('1930-01-01T00:00:00Z'), max: new Date('2026-11-20T00:00:00Z'), noInvalidDate: true }).map((x) => x.toISOString().slice(0, 10));
  const intel = (n: number) =>
    fc.record({
      source: fc.constantFrom(1, 2, 3),
      intelligence: fc.constantFrom('A', 'B', 'C', 'D', 'E'),
      handling: fc.constantFrom('P', 'C'),
      sourceType: fc.constantFrom(...sourceTypes),
      codes: fc.subarray(['safeguarding-only', 'no-onward-disclosure', 'originator-consent-required', 'law-enforcement-only', 'not-in-vocabulary']),
    }).map((g) => ({ g, n }));
  const subject = fc.record({
    role: fc.constantFrom(...roles),
    dob: fc.option(date, { nil: undefined }),
    nationality: fc.option(fc.constantFrom('GB', 'RO', 'AL', 'VN'), { nil: undefined }),
    vulnerable: fc.boolean(),
    intel: fc.array(intel(0), { maxLength: 3 }),
    passport: fc.boolean(),
    associates: fc.array(fc.nat({ max: 6 }), { maxLength: 3 }),
  });
  const dossierArb = fc.record({
    subjects: fc.array(subject, { minLength: 1, maxLength: 5 }),
    createdAt: fc.date({ min: new Date('2025-06-01T00:00:00Z'), max: new Date('2026-11-21T00:00:00Z'), noInvalidDate: true }).map((x) => x.toISOString()),
    classification: fc.constantFrom('OFFICIAL', 'OFFICIAL-SENSITIVE'),
    handlingC: fc.boolean(),
    threatBand: fc.constantFrom('A', 'B', 'C'),
  });

  it('holds every guarantee for every partner', async () => {
    let checked = 0;
    let delivered = 0;
    await fc.assert(
      fc.asyncProperty(dossierArb, async (g) => {
        const markers: string[] = ['Officer Secret-Name', 'secret.officer@example.police.uk'];
        const d = {
          schema: 'cordon.dossier/v1',
          reference: 'WMP-OCG-2026-77777',
          originator: { force: 'west-midlands', officer: { id: 'WM1', name: 'Officer Secret-Name', email: 'secret.officer@example.police.uk' } },
          createdAt: g.createdAt,
          classification: g.classification,
          handling: g.handlingC ? { code: 'C', conditions: 'Conditions apply' } : { code: 'P' },
          purpose: 'Property test',
          group: { ocgmId: 'OCG-1', name: 'Group', threatBand: g.threatBand, crimeTypes: ['drugs-supply'] },
          subjects: g.subjects.map((s, i) => {
            const pnc = `26/${String(100000 + i)}Z`;
            markers.push(pnc);
            const out: Record<string, unknown> = {
              id: `SUBJ-ID-${i}`,
              role: s.role,
              name: { given: `Given${i}`, family: `Family${i}` },
              identifiers: { pnc, niNumber: `QQ${String(100000 + i)}A`, ...(s.passport ? { passport: `P${String(1000000 + i)}` } : {}) },
              addresses: [{ type: 'home', line1: `${i} Test Street`, town: 'Coventry', postcode: 'CV6 5HX' }],
              vehicles: [{ vrm: `AB${i}0 XYZ` }],
              associates: [...new Set(s.associates.map((a) => a % g.subjects.length))]
                .filter((a) => a !== i)
                .map((a) => ({ subject: `SUBJ-ID-${a}`, relationship: 'knows' })),
              intelligence: s.intel.map(({ g: gr }, k) => {
                const summary = gr.sourceType === 'CHIS' ? `CHIS-MARKER-${i}-${k}` : `Intel ${i}-${k}`;
                if (gr.sourceType === 'CHIS') markers.push(summary);
                return {
                  id: `INT-${i}-${k}`,
                  recordedAt: '2026-01-01',
                  summary,
                  grading: { source: gr.source, intelligence: gr.intelligence, handling: gr.handling },
                  sourceType: gr.sourceType,
                  ...(gr.handling === 'C' ? { handlingConditions: 'Conditions' } : {}),
                  ...(gr.handling === 'C' && gr.codes.length > 0 ? { conditions: gr.codes } : {}),
                };
              }),
            };
            if (s.dob !== undefined) out.dateOfBirth = s.dob;
            if (s.nationality !== undefined) out.nationality = s.nationality;
            if (s.vulnerable) out.vulnerabilities = ['debt-bondage'];
            return out;
          }),
        };
        let valid: Dossier;
        try {
          valid = validateDossier(d);
        } catch (err) {
          throw new Error(`the generator made an invalid dossier: ${JSON.stringify((err as { details?: unknown }).details)}`, { cause: err });
        }
        checked++;
        for (const partner of PARTNERS) {
          const shared = await share(partner, valid);
          if (shared) delivered++;
          checkGuarantees(partner, valid, shared, markers);
          if (shared) checkHandling(partner, valid, shared);
        }
      }),
      { numRuns: 150 },
    );
    expect(checked).toBe(150);
    expect(delivered).toBeGreaterThan(100);
  });
});

describe('policies/tests', () => {
  it('all pass', async () => {
    const tests = await loadPolicyTests(SAMPLE);
    const results = await runPolicyTests(decider, tests, NOW);
    for (const r of results) expect(r.failures, `${r.file}: ${r.name}`).toEqual([]);
  });

  it('catch a policy that shares too much', async () => {
    const [t] = (await loadPolicyTests(SAMPLE)).filter((x) => x.partner === 'dvla');
    expect(t).toBeDefined();
    const leaky = { ...t!, expect: { ...t!.expect, absentValues: ['Okafor'], absent: ['subjects[].vehicles[].vrm', '/subjects/0'] } };
    const r = await runPolicyTest(decider, leaky, NOW);
    expect(r.passed).toBe(false);
    expect(r.failures).toHaveLength(3);
  });
});
