/**
 * The Decider's whole-dossier outcome cache (decide.ts, Decider.outcome) and the fact helpers it keys on:
 * a cached outcome is reused only for the same policy set, the same partner and the very same facts (of
 * the dossier and of every subject, ages included) and subject ids present; the agreement is checked
 * against `now` on every decision; and a cached decision equals one worked out afresh.
 */
import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { Decider } from '../../gateway/policy/decide.js';
import { dossierDate, dossierFacts, factValues, SUBJECT_FACT_TYPES, subjectOwnFacts, DOSSIER_FACT_TYPES, type SubjectOwnFacts } from '../../gateway/policy/facts.js';
import { parseDate } from '../../gateway/policy/dates.js';
import { loadPolicySet } from '../../gateway/policy/load.js';
import type { Dossier, Subject } from '../../gateway/dossier/types.js';
import type { Agreement, Operation, PartnerPolicy, PolicySet, Rule } from '../../gateway/policy/types.js';
import full from '../../examples/dossier-full.json' with { type: 'json' };
import fc from 'fast-check';
import { TEST_AGREEMENT } from '../helpers/policies.js';

const NOW = new Date('2026-11-21T12:00:00Z');
const SAMPLE = path.resolve(import.meta.dirname, '../../policies');
const dossier = (): Dossier => structuredClone(full) as unknown as Dossier;

const agreement: Agreement = TEST_AGREEMENT;

const fields: Record<string, Operation> = {
  reference: { op: 'keep' },
  'subjects[].name.family': { op: 'keep' },
  'subjects[].dateOfBirth': { op: 'keep' },
  'subjects[].nationality': { op: 'keep' },
};

function makeSet(revision: string, rules: Rule[], over: Partial<Agreement> = {}, base: Record<string, Operation> = fields): PolicySet {
  const p: PartnerPolicy = {
    file: 'partners/t.yaml',
    partner: { id: 't', name: 'Test', kind: 'x', key: { file: 'keys/t.asc', fingerprint: 'A'.repeat(40) }, checks: [] },
    agreement: { ...agreement, ...over },
    fields: base,
    rules,
  };
  return { dir: '/x', revision, loadedAt: NOW.toISOString(), gateway: { neverShare: [], alwaysFilter: {} }, partners: new Map([['t', p]]), sources: new Map() };
}

const minorsOut: Rule = { name: 'minors-out', when: 'subject', conditions: { all: [{ fact: 'isAdult', operator: 'equal', value: false }] }, then: { exclude: true } };
const excludeNationality = (value: string): Rule => ({
  name: `not-${value}`,
  when: 'subject',
  conditions: { all: [{ fact: 'nationality', operator: 'equal', value }] },
  then: { exclude: true },
});
const hideVulnerableNames: Rule = {
  name: 'vulnerable',
  when: 'subject',
  conditions: { all: [{ fact: 'isVulnerable', operator: 'equal', value: true }] },
  then: { set: { 'subjects[].name.family': { op: 'strip' } } },
};
const generaliseIfThreatA: Rule = {
  name: 'threat-a',
  when: 'dossier',
  conditions: { all: [{ fact: 'threatBand', operator: 'equal', value: 'A' }] },
  then: { set: { 'subjects[].dateOfBirth': { op: 'generalise', to: 'year' } } },
};

/** Which subjects are included (by index). */
const included = (d: { plan: { subjects: unknown[] } }) => d.plan.subjects.map((s) => s !== null);

describe('Decider: whole-dossier outcome cache', () => {
  it('never reuses an outcome across policy revisions: a new set is decided afresh', async () => {
    const d = dossier();
    const r1 = new Decider(makeSet('r1', []));
    const r2 = new Decider(makeSet('r2', [minorsOut]));
    const first = await r1.decide('t', d, NOW);
    await r1.decide('t', d, NOW); // warm
    const second = await r2.decide('t', d, NOW);
    expect(included(first)).toEqual([true, true, true, true]);
    // S4 is a child in the fixture: the new revision's rule excludes it although r1 has the dossier cached.
    expect(included(second)).toEqual([true, true, true, false]);
    expect(second.revision).toBe('r2');
    expect((await r1.decide('t', d, NOW)).plan).toEqual(first.plan);
  });

  it('gives dossiers that differ in any one fact their own outcomes, in any order', async () => {
    const rules = [minorsOut, excludeNationality('ABC'), hideVulnerableNames, generaliseIfThreatA];
    const decider = new Decider(makeSet('r1', rules));
    const variants: Array<[string, (d: Dossier) => void]> = [
      ['as is', () => undefined],
      ['a minor becomes an adult', (d) => ((d.subjects[3] as Subject).dateOfBirth = '1990-01-01')],
      ['an unknown age', (d) => delete (d.subjects[0] as Subject).dateOfBirth],
      // Same length and end characters as "AXC": the same digest, told apart by the full comparison.
      ['a nationality the rule excludes', (d) => ((d.subjects[1] as Subject).nationality = 'ABC')],
      ['another nationality, same digest', (d) => ((d.subjects[1] as Subject).nationality = 'AXC')],
      ['a dossier fact', (d) => d.group && (d.group.threatBand = 'A')],
      ['a subject without an id', (d) => delete (d.subjects[2] as { id?: string }).id],
      ['subjects in another order', (d) => d.subjects.reverse()],
      ['a vulnerability', (d) => ((d.subjects[0] as Subject).vulnerabilities = ['debt-bondage'])],
    ];
    const fresh = async (d: Dossier) => JSON.stringify(await new Decider(makeSet('r1', rules), { dossierCacheSize: 0 }).decide('t', d, NOW));
    const expected = new Map<string, string>();
    for (const [name, change] of variants) {
      const d = dossier();
      change(d);
      expected.set(name, await fresh(d));
    }
    // Every change but the harmless nationality decides differently; the two nationalities too.
    for (const [name] of variants.slice(1)) if (name !== 'another nationality, same digest') expect(expected.get(name), name).not.toBe(expected.get('as is'));
    expect(expected.get('a nationality the rule excludes')).not.toBe(expected.get('another nationality, same digest'));
    // Twice round, so that every decision after the first round could come from the cache.
    for (let round = 0; round < 2; round++) {
      for (const [name, change] of variants) {
        const d = dossier();
        change(d);
        expect(JSON.stringify(await decider.decide('t', d, NOW)), name).toBe(expected.get(name));
      }
    }
  });

  it('computes ages at the dossier date, so a later createdAt is another outcome', async () => {
    const decider = new Decider(makeSet('r1', [minorsOut]));
    const child = (createdAt: string) => {
      const d = dossier();
      d.createdAt = createdAt;
      (d.subjects[3] as Subject).dateOfBirth = '2008-11-20';
      // Without its childhood flag (which makes a subject a minor whatever the date of birth says).
      (d.subjects[3] as Subject).vulnerabilities = [];
      return d;
    };
    expect(included(await decider.decide('t', child('2026-11-19T09:00:00Z'), NOW))[3]).toBe(false); // 17 that day
    expect(included(await decider.decide('t', child('2026-11-20T09:00:00Z'), NOW))[3]).toBe(true); // 18 that day
    expect(included(await decider.decide('t', child('2026-11-19T09:00:00Z'), NOW))[3]).toBe(false);
    // `now` does not change an age: it is the dossier's date that counts.
    expect(included(await decider.decide('t', child('2026-11-19T09:00:00Z'), new Date('2026-12-31T00:00:00Z')))[3]).toBe(false);
  });

  it('checks the agreement against `now` on every decision, warm or not', async () => {
    const decider = new Decider(makeSet('r1', [], { inForceFrom: '2026-01-01', reviewBy: '2026-12-31' }));
    const d = dossier();
    expect((await decider.decide('t', d, NOW)).block).toBeUndefined();
    expect((await decider.decide('t', d, NOW)).block).toBeUndefined(); // warm
    expect((await decider.decide('t', d, new Date('2027-01-01T00:00:00Z'))).block?.reason).toBe('agreement_expired');
    expect((await decider.decide('t', d, new Date('2025-12-31T23:59:59Z'))).block?.reason).toBe('agreement_not_in_force');
    expect((await decider.decide('t', d, NOW)).block).toBeUndefined();
  });

  it('traces the ids of the dossier decided, not those of the dossier that filled the cache', async () => {
    const decider = new Decider(makeSet('r1', [minorsOut]));
    const a = dossier();
    const b = dossier();
    b.subjects.forEach((s, i) => (s.id = `OTHER-${i}`));
    const da = await decider.decide('t', a, NOW);
    const db = await decider.decide('t', b, NOW);
    expect(db.plan).toEqual(da.plan);
    expect(new Set(db.trace.map((t) => t.subject).filter((s) => s !== undefined))).toEqual(new Set(['OTHER-0', 'OTHER-1', 'OTHER-2', 'OTHER-3']));
    expect(da.trace.some((t) => t.subject === 'S4' && t.op === 'exclude')).toBe(true);
  });

  it('hands out decisions that do not share what a caller may change', async () => {
    const decider = new Decider(makeSet('r1', [minorsOut]));
    const first = await decider.decide('t', dossier(), NOW);
    first.plan.subjects[0] = null;
    first.fired?.push('tampered');
    first.trace.length = 0;
    const second = await decider.decide('t', dossier(), NOW);
    expect(included(second)).toEqual([true, true, true, false]);
    expect(second.fired).toEqual(['minors-out']);
    expect(second.trace.length).toBeGreaterThan(0);
  });

  it('decides the sample policies exactly as without the cache, warm or cold', async () => {
    const set = await loadPolicySet(SAMPLE, NOW);
    const cached = new Decider(set);
    const uncached = new Decider(set, { dossierCacheSize: 0, outcomeCacheSize: 1 });
    const dobs = ['1950-01-01', '2008-11-21', '2015-06-01', 'not a date'];
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 12; i++) {
        const d = dossier();
        d.subjects.forEach((s, j) => (s.dateOfBirth = dobs[(i + j) % dobs.length]));
        if (i % 3 === 0 && d.group) d.group.threatBand = 'A';
        for (const partner of set.partners.keys()) {
          expect(JSON.stringify(await cached.decide(partner, d, NOW))).toBe(JSON.stringify(await uncached.decide(partner, d, NOW)));
        }
      }
    }
  });
});

describe('fact helpers for cache keys', () => {
  const d = dossier();
  const at = dossierDate(d);
  const own = subjectOwnFacts(d.subjects[0] as Subject, at);

  it('lists every dossier and subject fact, so that each one changes the values', () => {
    const dFacts = dossierFacts(d);
    const base: unknown[] = [];
    factValues(dFacts, base);
    for (const k of Object.keys(DOSSIER_FACT_TYPES)) {
      const changed: unknown[] = [];
      factValues({ ...dFacts, [k]: k === 'crimeTypes' ? ['other'] : k === 'subjectCount' ? 99 : 'other' }, changed);
      expect(changed, k).not.toEqual(base);
    }
    const ownKeys = Object.keys(SUBJECT_FACT_TYPES).filter((k) => !Object.hasOwn(DOSSIER_FACT_TYPES, k));
    expect(Object.keys(own).sort()).toEqual(ownKeys.sort());
    const ownBase: unknown[] = [];
    factValues(own, ownBase);
    for (const k of ownKeys) {
      const v = (own as unknown as Record<string, unknown>)[k];
      const other = Array.isArray(v) ? [...v, 'x'] : typeof v === 'boolean' ? !v : typeof v === 'number' ? v + 1 : 'other';
      const changed: unknown[] = [];
      factValues({ ...own, [k]: other } as SubjectOwnFacts, changed);
      expect(changed, k).not.toEqual(ownBase);
    }
  });

  it('lists array items and keeps array boundaries', () => {
    const values = (o: Partial<SubjectOwnFacts>) => {
      const out: unknown[] = [];
      factValues({ ...own, ...o }, out);
      return out;
    };
    expect(values({ vulnerabilities: ['a'] })).not.toEqual(values({ vulnerabilities: ['b'] }));
    expect(values({ vulnerabilities: ['a', 'b'], nationality: null })).not.toEqual(values({ vulnerabilities: ['a'], nationality: 'b' }));
    expect(values({ vulnerabilities: ['a', 'b'] })).toEqual(values({ vulnerabilities: ['a', 'b'] }));
  });

  it('parses dates exactly as /^(\\d{4})-(\\d{2})-(\\d{2})$/ and the calendar allow', () => {
    const reference = (v: unknown) => {
      if (typeof v !== 'string' || v.length !== 10) return undefined;
      const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(v);
      if (!m) return undefined;
      const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
      const probe = new Date(Date.UTC(2000, month - 1, day));
      probe.setUTCFullYear(year);
      return year >= 1 && probe.getUTCFullYear() === year && probe.getUTCMonth() === month - 1 && probe.getUTCDate() === day ? { year, month, day } : undefined;
    };
    const chars = fc.constantFrom('0', '1', '2', '9', '-', '/', ' ', '٣', '０', 'a', '+', '.');
    fc.assert(
      fc.property(fc.oneof(fc.array(chars, { minLength: 8, maxLength: 11 }).map((c) => c.join('')), fc.date({ noInvalidDate: true }).map((x) => x.toISOString().slice(0, 10))), (v) => {
        expect(parseDate(v)).toEqual(reference(v));
      }),
      { numRuns: 2000 },
    );
    for (const v of ['2024-02-29', '2023-02-29', '1900-02-29', '2000-02-29', '0000-01-01', '9999-12-31', '2026-13-01', '2026-00-10', '2026-04-31', '٢٠٢٤-01-01', '2026-1-011', null, 20260101]) {
      expect(parseDate(v), String(v)).toEqual(reference(v));
    }
  });
});
