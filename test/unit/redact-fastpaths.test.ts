/**
 * What the redactor's shortcuts must not change (redact.ts, projection.ts): the disclosure list (each
 * (path, operation) pair once, in first-emitted order, whichever projection or packet emitted it), the
 * packet ref in a subject's `id`, createdAt read only when an age band needs it, and the plan checks on
 * every call.
 */
import { describe, expect, it } from 'vitest';
import { disclosureKey, type Disclosed, type ProjectionEnv } from '../../gateway/redact/disclosures.js';
import { compileProjection } from '../../gateway/redact/projection.js';
import { redact } from '../../gateway/redact/redact.js';
import { parseDateTimeUtc } from '../../gateway/policy/dates.js';
import { resolveFact } from '../../gateway/policy/condition.js';
import { ASSOCIATE_SUBJECT, SUBJECT_ID, SUBJECTS } from '../../gateway/policy/paths.js';
import type { Dossier } from '../../gateway/dossier/types.js';
import type { Operation, Plan } from '../../gateway/policy/types.js';
import full from '../../examples/dossier-full.json' with { type: 'json' };

const key = Buffer.alloc(32, 9);
const dossier = (): Dossier => structuredClone(full) as unknown as Dossier;
const refs = new Map([
  ['S1', 'ref-a'],
  ['S2', 'ref-b'],
  ['S3', 'ref-c'],
  ['S4', 'ref-d'],
]);

const top: Record<string, Operation> = { reference: { op: 'keep' }, 'group.name': { op: 'keep' }, 'group.crimeTypes[]': { op: 'keep' } };
const adults: Record<string, Operation> = {
  'subjects[].name.family': { op: 'keep' },
  'subjects[].dateOfBirth': { op: 'generalise', to: 'ageBand' },
  'subjects[].addresses[].postcode': { op: 'generalise', to: 'district' },
  'subjects[].associates[].subject': { op: 'keep' },
  'subjects[].phones[]': { op: 'mask', show: 'last', chars: 3 },
};
// Another plan sharing some pairs with `adults` (name.family keep, associates) and adding its own.
const victims: Record<string, Operation> = {
  'subjects[].vulnerabilities[]': { op: 'keep' },
  'subjects[].name.family': { op: 'keep' },
  'subjects[].associates[].subject': { op: 'keep' },
  'subjects[].nationality': { op: 'pseudonymise' },
};

/** The disclosure list as the documented Map sink would give it: each pair once, in first-emitted order. */
function viaMap(d: Dossier, plan: Plan): Disclosed[] {
  const disclosed = new Map<string, Disclosed>();
  const subjects = d.subjects.map((s, i) => ({ s, ops: plan.subjects[i] }));
  const included = new Map(subjects.filter(({ ops }) => ops).map(({ s }) => [s.id, refs.get(s.id) as string]));
  const env: ProjectionEnv = { pseudonymKey: key, at: parseDateTimeUtc(d.createdAt), disclosed, refs: included };
  disclosed.set(disclosureKey('schema', 'keep'), { path: 'schema', op: 'keep' });
  compileProjection(plan.dossier)(d, env);
  for (const { s, ops } of subjects) if (ops) compileProjection(ops, SUBJECTS)(s, env, { id: 'x' });
  disclosed.set(disclosureKey(SUBJECT_ID, 'ref'), { path: SUBJECT_ID, op: 'ref' });
  return [...disclosed.values()].map(({ path, op }) => ({ path, op: path === ASSOCIATE_SUBJECT && op === 'keep' ? 'ref' : op }));
}

describe('redact: disclosures', () => {
  const plan: Plan = { dossier: top, subjects: [adults, victims, adults, victims] };

  it('lists each pair once, in first-emitted order, across subjects with different plans', () => {
    const d = dossier();
    const { disclosed } = redact(d, plan, { refs, pseudonymKey: key });
    expect(disclosed).toEqual(viaMap(d, plan));
    expect(new Set(disclosed.map((x) => `${x.path} ${x.op}`)).size).toBe(disclosed.length);
    expect(disclosed.slice(0, 4)).toEqual([
      { path: 'schema', op: 'keep' },
      { path: 'reference', op: 'keep' },
      { path: 'group.name', op: 'keep' },
      { path: 'group.crimeTypes[]', op: 'keep' },
    ]);
    expect(disclosed).toContainEqual({ path: ASSOCIATE_SUBJECT, op: 'ref' });
    expect(disclosed.at(-1)).toEqual({ path: SUBJECT_ID, op: 'ref' });
  });

  it('gives the same list for the same packet, however packets and plans alternate', () => {
    const d = dossier();
    const other: Plan = { dossier: { purpose: { op: 'keep' } }, subjects: [victims, null, null, adults] };
    const first = redact(d, plan, { refs, pseudonymKey: key });
    const a = redact(d, other, { refs, pseudonymKey: key });
    const second = redact(d, plan, { refs, pseudonymKey: key });
    const b = redact(dossier(), other, { refs, pseudonymKey: key });
    expect(second).toEqual(first);
    expect(b).toEqual(a);
    expect(a.disclosed).toEqual(viaMap(d, other));
  });

  it('hands out disclosure objects of its own to each caller', () => {
    const first = redact(dossier(), plan, { refs, pseudonymKey: key });
    (first.disclosed[1] as Disclosed).op = 'tampered';
    first.disclosed.length = 0;
    expect(redact(dossier(), plan, { refs, pseudonymKey: key }).disclosed[1]).toEqual({ path: 'reference', op: 'keep' });
  });

  it('records into a Map sink, each pair once', () => {
    const disclosed = new Map<string, Disclosed>();
    const env: ProjectionEnv = { pseudonymKey: key, at: undefined, disclosed };
    const project = compileProjection({ 'a[].b': { op: 'keep' }, c: { op: 'keep' } });
    project({ a: [{ b: 1 }, { b: 2 }], c: 'x' }, env);
    project({ a: [{ b: 3 }] }, env);
    expect([...disclosed.keys()]).toEqual([disclosureKey('a[].b', 'keep'), disclosureKey('c', 'keep')]);
  });
});

describe('redact: subjects', () => {
  it('keeps the packet ref in id even when a plan names paths below subjects[].id', () => {
    const ops = { 'subjects[].name.family': { op: 'keep' }, 'subjects[].id[]': { op: 'replace', with: 'OVERWRITTEN' } } as Record<string, Operation>;
    const { dossier: out } = redact(dossier(), { dossier: {}, subjects: [ops, null, null, null] }, { refs, pseudonymKey: key });
    expect(out.subjects).toEqual([{ id: 'ref-a', name: { family: 'Okafor' } }]);
  });

  it('puts the ref first, then the subject fields in plan order, and a subject with nothing else as its ref alone', () => {
    const ops = { 'subjects[].role': { op: 'keep' }, 'subjects[].name.given': { op: 'keep' } } as Record<string, Operation>;
    const { dossier: out } = redact(dossier(), { dossier: {}, subjects: [ops, { 'subjects[].emails[]': { op: 'keep' } }, null, null] }, { refs, pseudonymKey: key });
    const subjects = out.subjects as Array<Record<string, unknown>>;
    expect(Object.keys(subjects[0] as object)).toEqual(['id', 'role', 'name']);
    expect(subjects[1]).toEqual({ id: 'ref-b' });
  });
});

describe('redact: createdAt, read only for age bands', () => {
  const ageBand: Record<string, Operation> = { 'subjects[].dateOfBirth': { op: 'generalise', to: 'ageBand' } };
  const band = (createdAt: unknown) => {
    const d = dossier();
    (d as unknown as Record<string, unknown>).createdAt = createdAt;
    const { dossier: out } = redact(d, { dossier: {}, subjects: [ageBand, null, null, ageBand] }, { refs, pseudonymKey: key });
    return (out.subjects as Array<{ dateOfBirth?: string }>).map((s) => s.dateOfBirth);
  };

  it('bands ages at the dossier date, in UTC', () => {
    expect(band('2026-11-20T09:15:00Z')).toEqual(['35-44', 'under-18']);
    expect(band('2028-07-19T00:30:00+02:00')).toEqual(['35-44', 'under-18']); // 18 on the 19th, but that is still the 18th in UTC
    expect(band('2028-07-19T00:30:00Z')).toEqual(['35-44', '18-24']);
  });

  it('leaves the band out when createdAt is not a date-time', () => {
    expect(band('20 Nov 2026')).toEqual([undefined, undefined]);
    expect(band(undefined)).toEqual([undefined, undefined]);
  });
});

describe('redact: plan checks on every call', () => {
  it('refuses a frozen plan with a subject path in its dossier part every time', () => {
    const bad: Plan = Object.freeze({ dossier: Object.freeze({ 'subjects[].name.given': Object.freeze({ op: 'keep' }) as Operation }), subjects: [] }) as Plan;
    expect(() => redact(dossier(), bad, { refs, pseudonymKey: key })).toThrow(/subject path/);
    expect(() => redact(dossier(), bad, { refs, pseudonymKey: key })).toThrow(/subject path/);
  });

  it('checks a plan that is not frozen again after it changes', () => {
    const plan: Plan = { dossier: { reference: { op: 'keep' } }, subjects: [] };
    expect(redact(dossier(), plan, { refs, pseudonymKey: key }).dossier.reference).toBe('WMP-OCG-2026-00412');
    plan.dossier['subjects[].name.given'] = { op: 'keep' };
    expect(() => redact(dossier(), plan, { refs, pseudonymKey: key })).toThrow(/subject path/);
  });
});

describe('item filters: fact names', () => {
  it('resolves dotted and plain facts the same on every call, however many fact names there are', () => {
    const item = { grading: { source: 2, intelligence: 'B' }, sourceType: 'CHIS', 'a.b': 'not a path' };
    for (let i = 0; i < 1100; i++) expect(resolveFact({ [`f${i}`]: i }, `f${i}`)).toBe(i);
    for (let round = 0; round < 2; round++) {
      expect(resolveFact(item, 'grading.source')).toBe(2);
      expect(resolveFact(item, 'grading.intelligence')).toBe('B');
      expect(resolveFact(item, 'sourceType')).toBe('CHIS');
      expect(resolveFact(item, 'a.b')).toBeUndefined();
      expect(resolveFact(item, 'grading')).toBeUndefined();
    }
  });
});
