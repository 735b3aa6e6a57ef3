/**
 * Unknown is not "no": rules that read a fact the dossier does not establish fire (every rule only
 * tightens), unless they say `unknown: ignore`; childhood flags make a subject a minor; the trace,
 * the block message and lint say so.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { evaluateRuleCondition } from '../../gateway/policy/condition.js';
import { Decider } from '../../gateway/policy/decide.js';
import { subjectFacts } from '../../gateway/policy/facts.js';
import { loadPolicySet } from '../../gateway/policy/load.js';
import { lintPolicies } from '../../gateway/governance/lint.js';
import { buildPreview } from '../../gateway/governance/preview.js';
import type { Dossier, Subject } from '../../gateway/dossier/types.js';
import type { Agreement, Condition, PartnerPolicy, PolicySet, Rule } from '../../gateway/policy/types.js';
import full from '../../examples/dossier-full.json' with { type: 'json' };
import { TEST_AGREEMENT } from '../helpers/policies.js';

const NOW = new Date('2026-11-21T12:00:00Z');
const SAMPLE = path.resolve(import.meta.dirname, '../../policies');
const dossier = (): Dossier => structuredClone(full) as unknown as Dossier;
const c = (fact: string, operator: string, value: unknown): Condition => ({ fact, operator, value });

/** The example dossier with subject i's date of birth (and, when asked, its vulnerabilities) removed. */
function withoutDob(i: number, dropFlags = false): Dossier {
  const d = dossier();
  const s = d.subjects[i] as Subject & { dateOfBirth?: string; vulnerabilities?: string[] };
  delete s.dateOfBirth;
  if (dropFlags) delete s.vulnerabilities;
  return d;
}

function factsOf(d: Dossier, i: number) {
  return subjectFacts(d, d.subjects[i] as Subject);
}

describe('evaluateRuleCondition (three-valued, on rule facts)', () => {
  const unknownAge = factsOf(withoutDob(1), 1);
  const knownAdult = factsOf(dossier(), 1);

  it('is unknown on a null fact, and names it', () => {
    expect(evaluateRuleCondition({ all: [c('isMinor', 'equal', true)] }, unknownAge)).toEqual({ truth: 'unknown', unknownFacts: ['isMinor'] });
    expect(evaluateRuleCondition({ all: [c('isMinor', 'equal', false)] }, unknownAge)).toEqual({ truth: 'unknown', unknownFacts: ['isMinor'] });
    expect(evaluateRuleCondition({ all: [c('ageAtDossier', 'lessThan', 18)] }, unknownAge).truth).toBe('unknown');
    expect(evaluateRuleCondition({ not: c('isAdult', 'equal', true) }, unknownAge).truth).toBe('unknown');
  });

  it('follows Kleene logic: a known false part decides `all`, a known true part decides `any`', () => {
    expect(evaluateRuleCondition({ all: [c('isMinor', 'equal', true), c('role', 'equal', 'witness')] }, unknownAge)).toEqual({ truth: 'false', unknownFacts: [] });
    expect(evaluateRuleCondition({ any: [c('isMinor', 'equal', true), c('role', 'equal', 'member')] }, unknownAge).truth).toBe('true');
    expect(evaluateRuleCondition({ any: [c('isMinor', 'equal', true), c('role', 'equal', 'witness')] }, unknownAge).truth).toBe('unknown');
  });

  it('decides known facts as json-rules-engine does, and `equal null` asks whether a fact is unknown', () => {
    expect(evaluateRuleCondition({ all: [c('isAdult', 'equal', true)] }, knownAdult).truth).toBe('true');
    expect(evaluateRuleCondition({ all: [c('isMinor', 'equal', true)] }, knownAdult).truth).toBe('false');
    expect(evaluateRuleCondition({ all: [c('isMinor', 'equal', null)] }, unknownAge).truth).toBe('true');
    expect(evaluateRuleCondition({ all: [c('isMinor', 'equal', null)] }, knownAdult).truth).toBe('false');
    expect(evaluateRuleCondition({ all: [c('nationality', 'notEqual', null)] }, knownAdult).truth).toBe('true');
  });

  it('reads the age of a child known only from a flag as 0 to 17', () => {
    const flagged = factsOf(withoutDob(3), 3);
    expect(flagged).toMatchObject({ ageAtDossier: null, isMinor: true, isAdult: false });
    expect(evaluateRuleCondition({ all: [c('ageAtDossier', 'lessThan', 18)] }, flagged)).toEqual({ truth: 'true', unknownFacts: [] });
    expect(evaluateRuleCondition({ all: [c('ageAtDossier', 'greaterThanInclusive', 18)] }, flagged).truth).toBe('false');
    expect(evaluateRuleCondition({ all: [c('ageAtDossier', 'lessThan', 16)] }, flagged)).toEqual({ truth: 'unknown', unknownFacts: ['ageAtDossier'] });
  });
});

function makeSet(rules: Rule[], over: Partial<Agreement> = {}): PolicySet {
  const p: PartnerPolicy = {
    file: 'partners/t.yaml',
    partner: { id: 't', name: 'Test', kind: 'x', key: { file: 'keys/t.asc', fingerprint: 'A'.repeat(40) }, checks: [] },
    agreement: { ...TEST_AGREEMENT, ...over },
    fields: { 'subjects[].name.given': { op: 'keep' }, 'subjects[].name.family': { op: 'keep' }, 'subjects[].dateOfBirth': { op: 'keep' } },
    rules,
  };
  return { dir: '/x', revision: 'r1', loadedAt: NOW.toISOString(), gateway: { neverShare: [], alwaysFilter: {} }, partners: new Map([['t', p]]), sources: new Map() };
}

const minorsOut: Rule = { name: 'minors-out', when: 'subject', conditions: { all: [c('isMinor', 'equal', true)] }, then: { exclude: true } };
const adultsOut: Rule = { name: 'adults-out', when: 'subject', conditions: { all: [c('isMinor', 'equal', false)] }, then: { exclude: true } };
const included = (decision: { plan: { subjects: unknown[] } }) => decision.plan.subjects.map((s) => s !== null);

describe('Decider on unknown facts', () => {
  it('excludes a subject of unknown age under "exclude minors" and under "exclude adults", and traces why', async () => {
    const d = withoutDob(1);
    const a = await new Decider(makeSet([minorsOut])).decide('t', d, NOW);
    expect(included(a)).toEqual([true, false, true, false]);
    expect(a.trace).toContainEqual({ rule: 'minors-out', scope: 'subject', subject: 'S2', subjectIndex: 1, path: 'subjects[]', op: 'exclude', note: 'excluded: age unknown (isMinor)' });
    // Tyler's exclusion is known (his date of birth): no note.
    expect(a.trace).toContainEqual({ rule: 'minors-out', scope: 'subject', subject: 'S4', subjectIndex: 3, path: 'subjects[]', op: 'exclude' });
    const b = await new Decider(makeSet([adultsOut])).decide('t', d, NOW);
    expect(included(b)).toEqual([false, false, false, true]);
    expect(a.fired).toEqual(['minors-out']);
  });

  it('does not fire an `unknown: ignore` rule on unknown, but still on what is known', async () => {
    const d = withoutDob(1);
    const decision = await new Decider(makeSet([{ ...minorsOut, unknown: 'ignore' }])).decide('t', d, NOW);
    expect(included(decision)).toEqual([true, true, true, false]);
    // A child known only from a flag is still a minor (TRUE, not unknown).
    const t = await new Decider(makeSet([{ ...minorsOut, conditions: { all: [c('ageAtDossier', 'lessThan', 18)] }, unknown: 'ignore' }])).decide('t', withoutDob(3), NOW);
    expect(included(t)).toEqual([true, true, true, false]);
  });

  it('makes a subject with a childhood flag a minor whatever the role or date of birth says, with a note', async () => {
    const d = dossier();
    const s = d.subjects[0] as Subject & { vulnerabilities?: string[] };
    s.vulnerabilities = ['child-sexual-exploitation']; // a "principal" born in 1987
    const decision = await new Decider(makeSet([adultsOut])).decide('t', d, NOW);
    expect(included(decision)).toEqual([true, false, false, true]);
    expect(decision.trace).toContainEqual({
      rule: 'facts',
      scope: 'subject',
      subject: 'S1',
      subjectIndex: 0,
      path: 'subjects[]',
      op: 'note',
      note: 'treated as a minor: flag child-sexual-exploitation (date of birth "1987-04-12" overruled)',
    });
    const tyler = await new Decider(makeSet([adultsOut])).decide('t', withoutDob(3), NOW);
    expect(tyler.trace).toContainEqual(expect.objectContaining({ subject: 'S4', op: 'note', note: 'treated as a minor: flag child-criminal-exploitation (no date of birth)' }));
  });

  it('notes set rules that fired on unknown facts, dossier scope included', async () => {
    const d = dossier() as Dossier & { group?: unknown };
    delete d.group;
    const rule: Rule = { name: 'threat-a', when: 'dossier', conditions: { all: [c('threatBand', 'equal', 'A')] }, then: { set: { 'subjects[].dateOfBirth': { op: 'generalise', to: 'year' } } } };
    const decision = await new Decider(makeSet([rule])).decide('t', d, NOW);
    expect(decision.trace).toContainEqual(expect.objectContaining({ rule: 'threat-a', subject: 'S1', path: 'subjects[].dateOfBirth', note: 'applied: threat band unknown (threatBand)' }));
  });

  it('names the unknown facts in the block message when they are why nothing is shared', async () => {
    const d = dossier();
    d.subjects = [d.subjects[1] as Subject];
    delete (d.subjects[0] as { dateOfBirth?: string }).dateOfBirth;
    const decision = await new Decider(makeSet([adultsOut])).decide('t', d, NOW);
    expect(decision.block).toEqual({ reason: 'no_shareable_subjects', message: 'No subject of this dossier may be shared with Test under its policy: 1 of 1 subject excluded because age unknown (isMinor)' });
    const known = await new Decider(makeSet([adultsOut])).decide('t', dossier(), NOW);
    expect(known.block).toBeUndefined();
    const adults = dossier();
    adults.subjects = [adults.subjects[0] as Subject];
    expect((await new Decider(makeSet([adultsOut])).decide('t', adults, NOW)).block?.message).toBe('No subject of this dossier may be shared with Test under its policy');
  });

  it('keeps unknown apart from known in the decision cache', async () => {
    const decider = new Decider(makeSet([minorsOut]));
    expect(included(await decider.decide('t', dossier(), NOW))).toEqual([true, true, true, false]);
    expect(included(await decider.decide('t', withoutDob(1), NOW))).toEqual([true, false, true, false]);
    expect(included(await decider.decide('t', dossier(), NOW))).toEqual([true, true, true, false]);
    // A flag alone changes the outcome too.
    const flagged = dossier();
    (flagged.subjects[1] as Subject & { vulnerabilities?: string[] }).vulnerabilities = ['child-criminal-exploitation'];
    expect(included(await decider.decide('t', flagged, NOW))).toEqual([true, false, true, false]);
  });
});

describe('the sample policies on unknown ages', () => {
  let set: PolicySet;
  let decider: Decider;
  beforeAll(async () => {
    set = await loadPolicySet(SAMPLE, NOW);
    decider = new Decider(set);
  });

  it('Tyler without a date of birth (flagged child-criminal-exploitation) reaches children\'s services and nobody else', async () => {
    const d = withoutDob(3);
    for (const partner of set.partners.keys()) {
      const decision = await decider.decide(partner, d, NOW);
      expect(decision.plan.subjects[3] !== null, partner).toBe(partner === 'childrens-services');
    }
  });

  it('the same for any subject with a childhood flag and no date of birth', async () => {
    for (const flag of ['child-criminal-exploitation', 'child-sexual-exploitation']) {
      const d = withoutDob(1);
      (d.subjects[1] as Subject & { vulnerabilities?: string[] }).vulnerabilities = [flag];
      for (const partner of set.partners.keys()) {
        const decision = await decider.decide(partner, d, NOW);
        expect(decision.plan.subjects[1] !== null, `${flag} → ${partner}`).toBe(partner === 'childrens-services');
      }
    }
  });

  it('a subject of unknown age without a flag reaches neither housing nor children\'s services, and the preview says why', async () => {
    const d = withoutDob(3, true);
    expect((await decider.decide('council-housing', d, NOW)).plan.subjects[3]).toBeNull();
    const preview = await buildPreview({ set, decider, dossier: d, partner: 'childrens-services', now: NOW });
    expect(preview.blocked?.reason).toBe('no_shareable_subjects');
    expect(preview.blocked?.message).toMatch(/1 of 4 subjects excluded because age unknown \(isMinor\)$/);
    expect(preview.trace).toContainEqual(expect.objectContaining({ rule: 'known-children-only', subject: 'S4', op: 'exclude', note: 'excluded: age unknown (isMinor)' }));
    const housing = await buildPreview({ set, decider, dossier: d, partner: 'council-housing', now: NOW });
    expect(housing.trace).toContainEqual(expect.objectContaining({ rule: 'minors-go-to-childrens-services', subject: 'S4', op: 'exclude', note: 'excluded: age unknown (isMinor)' }));
  });
});

describe('unknown: ignore in policy files', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('loads, and lint warns on it naming the rule and the file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'cordon-unknown-'));
    dirs.push(dir);
    await cp(SAMPLE, dir, { recursive: true });
    const file = path.join(dir, 'partners/council-housing.yaml');
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.replace('    description: Known children are referred', '    unknown: ignore\n    description: Known children are referred'));
    const loaded = await loadPolicySet(dir, NOW);
    expect(loaded.partners.get('council-housing')?.rules[0]).toMatchObject({ name: 'minors-go-to-childrens-services', unknown: 'ignore' });
    const r = await lintPolicies(dir, { now: NOW });
    const warning = r.findings.find((f) => /unknown: ignore/.test(f.message));
    expect(warning).toMatchObject({ severity: 'warning', file: 'partners/council-housing.yaml', location: 'rules[0].unknown' });
    expect(warning?.message).toContain('"minors-go-to-childrens-services"');
    expect(r.findings.filter((f) => /unknown: ignore/.test(f.message))).toHaveLength(1);
  });

  it('refuses any other value', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'cordon-unknown-'));
    dirs.push(dir);
    await cp(SAMPLE, dir, { recursive: true });
    const file = path.join(dir, 'partners/council-housing.yaml');
    await writeFile(file, (await readFile(file, 'utf8')).replace('    description: Known children are referred', '    unknown: false\n    description: Known children are referred'));
    await expect(loadPolicySet(dir, NOW)).rejects.toMatchObject({ code: 'policy_invalid' });
  });
});
