import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { ProjectionEnv } from '../../gateway/redact/disclosures.js';
import { compileProjection } from '../../gateway/redact/projection.js';
import { redact } from '../../gateway/redact/redact.js';
import { parseDateTimeUtc } from '../../gateway/policy/dates.js';
import type { Dossier } from '../../gateway/dossier/types.js';
import type { Operation, Plan } from '../../gateway/policy/types.js';
import full from '../../examples/dossier-full.json' with { type: 'json' };

const key = Buffer.alloc(32, 9);
const env = (): ProjectionEnv => ({ pseudonymKey: key, at: parseDateTimeUtc('2026-11-20T09:15:00Z'), disclosed: new Map() });
const project = (ops: Record<string, Operation>, input: unknown) => compileProjection(ops)(input, env());

const notChis = { all: [{ fact: 'sourceType', operator: 'notEqual', value: 'CHIS' }] };

describe('compileProjection', () => {
  it('copies only allowlisted leaves and never an object at a leaf', () => {
    const input = { a: 'x', b: { c: 1, secret: 's' }, d: { nested: 'obj' }, e: ['p', { o: 1 }, 'q'], f: 'hidden' };
    expect(project({ a: { op: 'keep' }, 'b.c': { op: 'keep' }, d: { op: 'keep' }, 'e[]': { op: 'keep' } }, input)).toEqual({ a: 'x', b: { c: 1 }, e: ['p', 'q'] });
  });

  it('drops missing values, wrong shapes, empty objects and empty arrays', () => {
    const ops: Record<string, Operation> = { 'x.y': { op: 'keep' }, 'list[].v': { op: 'keep' }, 'tags[]': { op: 'keep' }, n: { op: 'keep' } };
    expect(project(ops, {})).toBeUndefined();
    expect(project(ops, { x: {}, list: [], tags: [], n: null })).toBeUndefined();
    expect(project(ops, { x: 'not-an-object', list: { v: 1 }, tags: 'a' })).toBeUndefined();
    expect(project(ops, { list: [{ w: 1 }, 'str', { v: 2 }] })).toEqual({ list: [{ v: 2 }] });
  });

  it('reads own properties only', () => {
    const input = Object.create({ inherited: 'leak' }) as Record<string, unknown>;
    expect(project({ inherited: { op: 'keep' } }, input)).toBeUndefined();
  });

  it('filters array items, with missing facts failing the condition', () => {
    const ops: Record<string, Operation> = { 'intel[]': { op: 'filter', where: notChis }, 'intel[].summary': { op: 'keep' } };
    const input = { intel: [{ summary: 'a', sourceType: 'CHIS' }, { summary: 'b', sourceType: 'public' }, { summary: 'c' }] };
    expect(project(ops, input)).toEqual({ intel: [{ summary: 'b' }] });
    expect(project(ops, { intel: [{ summary: 'a', sourceType: 'CHIS' }] })).toBeUndefined();
  });

  it('counts arrays (only items passing where), and a count of 0 is absent', () => {
    expect(project({ 'v[]': { op: 'count' } }, { v: [1, 2, 3] })).toEqual({ v: 3 });
    expect(project({ 'v[]': { op: 'count' } }, { v: [] })).toBeUndefined();
    expect(project({ 'v[]': { op: 'count' } }, { v: 'abc' })).toBeUndefined();
    const counted = { 'i[]': { op: 'count', where: notChis } as Operation };
    expect(project(counted, { i: [{ sourceType: 'CHIS' }, { sourceType: 'public' }] })).toEqual({ i: 1 });
    expect(project(counted, { i: [{ sourceType: 'CHIS' }] })).toBeUndefined();
  });

  it('replaces present values only', () => {
    expect(project({ a: { op: 'replace', with: '[withheld]' } }, { a: { deep: 1 } })).toEqual({ a: '[withheld]' });
    expect(project({ a: { op: 'replace', with: '[withheld]' } }, {})).toBeUndefined();
  });

  it('generalises address items to town or postcode (with the chosen field’s own operation)', () => {
    const input = { addr: [{ line1: '1 A St', town: 'Coventry', postcode: 'CV6 5HX' }, { line1: 'x' }, 'junk'] };
    expect(project({ 'addr[]': { op: 'generalise', to: 'town' } }, input)).toEqual({ addr: [{ town: 'Coventry' }] });
    expect(project({ 'addr[]': { op: 'generalise', to: 'postcode' } }, input)).toEqual({ addr: [{ postcode: 'CV6 5HX' }] });
    expect(project({ 'addr[]': { op: 'generalise', to: 'postcode' }, 'addr[].postcode': { op: 'generalise', to: 'district' } }, input)).toEqual({ addr: [{ postcode: 'CV6' }] });
    expect(project({ 'addr[]': { op: 'generalise', to: 'town' }, 'addr[].town': { op: 'strip' } }, input)).toBeUndefined();
    expect(() => project({ 'addr[]': { op: 'generalise', to: 'town' }, 'addr[].line1': { op: 'keep' } }, input)).toThrow();
  });

  it('applies leaf operations to each item of an array of scalars', () => {
    expect(project({ 'phones[]': { op: 'mask', show: 'last', chars: 3 } }, { phones: ['07700 900123', 5] })).toEqual({ phones: ['*********123'] });
    const r = project({ 'd[]': { op: 'generalise', to: 'year' } }, { d: ['1987-04-12', 'bad'] });
    expect(r).toEqual({ d: ['1987'] });
  });

  it('throws on an unknown operation, and on a leaf operation with paths below it', () => {
    expect(() => compileProjection({ a: { op: 'publish' } as unknown as Operation })).toThrow();
    expect(() => compileProjection({ a: { op: 'generalise', to: 'fortnight' } as unknown as Operation })).toThrow();
    expect(() => compileProjection({ a: { op: 'keep' }, 'a.b': { op: 'keep' } })).toThrow();
    expect(() => compileProjection({ 'a..b': { op: 'keep' } })).toThrow();
  });

  it('compiles once per distinct operation set', () => {
    const ops: Record<string, Operation> = { a: { op: 'keep' } };
    expect(compileProjection(ops)).toBe(compileProjection(ops));
    expect(compileProjection({ a: { op: 'keep' } })).toBe(compileProjection(ops));
  });

  it('never emits a path that is not in the plan (property)', () => {
    const leafPaths = ['a', 'b.c', 'b.d', 'list[].x', 'list[].y.z', 'tags[]', 'items[].p', 'items[].q', 'addr[].town'];
    const leafOp = fc.constantFrom<Operation>(
      { op: 'keep' },
      { op: 'strip' },
      { op: 'pseudonymise' },
      { op: 'mask', show: 'first', chars: 2 },
      { op: 'replace', with: 'R' },
      { op: 'generalise', to: 'year' },
      { op: 'generalise', to: 'sector' },
      { op: 'generalise', to: 'band', width: 10 },
    );
    const containerOp = fc.constantFrom<Operation | undefined>(
      undefined,
      { op: 'filter', where: notChis },
      { op: 'count' },
      { op: 'count', where: notChis },
      { op: 'strip' },
      { op: 'replace', with: 'R' },
    );
    const plan = fc
      .record({
        leaves: fc.dictionary(fc.constantFrom(...leafPaths), leafOp),
        items: containerOp,
        list: containerOp,
        addr: fc.constantFrom<Operation | undefined>(undefined, { op: 'generalise', to: 'town' }, { op: 'generalise', to: 'postcode' }),
      })
      .map(({ leaves, items, list, addr }) => {
        const ops: Record<string, Operation> = { ...leaves };
        if (items) ops['items[]'] = items;
        if (list) ops['list[]'] = list;
        if (addr) {
          ops['addr[]'] = addr;
          delete ops['addr[].town'];
        }
        return ops;
      });
    const keyArb = fc.oneof(fc.constantFrom('a', 'b', 'c', 'd', 'list', 'x', 'y', 'z', 'tags', 'items', 'p', 'q', 'addr', 'town', 'postcode', 'line1', 'sourceType', 'secret'), fc.string({ maxLength: 6 }));
    const leafValue = fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean(), fc.constant(null), fc.constantFrom('CHIS', 'public', '1987-04-12', 'CV6 5HX'));
    const { value: input } = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leafValue, tie('object'), tie('array')),
      object: fc.dictionary(keyArb, tie('value'), { maxKeys: 8 }),
      array: fc.array(tie('value'), { maxLength: 4 }),
    }));

    const allowed = (ops: Record<string, Operation>, path: string): boolean => {
      for (const p of [path, `${path}[]`]) {
        const op = ops[p];
        if (op !== undefined && op.op !== 'strip' && op.op !== 'filter') return true;
      }
      const dot = path.lastIndexOf('.');
      if (dot > 0) {
        const parent = ops[path.slice(0, dot)];
        if (parent?.op === 'generalise' && (parent.to === 'town' || parent.to === 'postcode') && path.slice(dot + 1) === parent.to) return true;
      }
      return false;
    };
    const isScalar = (v: unknown) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';

    let emitted = 0;
    fc.assert(
      fc.property(plan, fc.dictionary(keyArb, input, { maxKeys: 10 }), (ops, doc) => {
        const out = compileProjection(ops)(doc, env());
        if (out !== undefined) emitted++;
        const walk = (v: unknown, path: string): void => {
          if (Array.isArray(v)) {
            expect(v.length).toBeGreaterThan(0);
            if (v.every(isScalar)) {
              expect(allowed(ops, path), `array of scalars at ${path}`).toBe(true);
              return;
            }
            for (const item of v) {
              expect(item !== null && typeof item === 'object' && !Array.isArray(item)).toBe(true);
              walk(item, `${path}[]`);
            }
            return;
          }
          if (v !== null && typeof v === 'object') {
            expect(Object.keys(v).length).toBeGreaterThan(0);
            for (const [k, child] of Object.entries(v)) walk(child, path === '' ? k : `${path}.${k}`);
            return;
          }
          expect(isScalar(v)).toBe(true);
          expect(allowed(ops, path), `value at ${path}`).toBe(true);
        };
        if (out !== undefined) walk(out, '');
      }),
      { numRuns: 500 },
    );
    expect(emitted).toBeGreaterThan(20); // the property was exercised, not vacuously true
  });
});

describe('redact', () => {
  const dossier = full as unknown as Dossier;
  const refs = new Map([
    ['S1', 'ref-a'],
    ['S2', 'ref-b'],
    ['S3', 'ref-c'],
    ['S4', 'ref-d'],
  ]);
  const subjectOps: Record<string, Operation> = {
    'subjects[].name.family': { op: 'keep' },
    'subjects[].associates[].subject': { op: 'keep' },
    'subjects[].associates[].relationship': { op: 'keep' },
  };
  const plan = (subjects: Plan['subjects'], top: Record<string, Operation> = { reference: { op: 'keep' } }): Plan => ({ dossier: top, subjects });

  it('always copies schema, replaces subject ids by refs and leaves excluded subjects out', () => {
    const { dossier: out } = redact(dossier, plan([subjectOps, null, subjectOps, null]), { refs, pseudonymKey: key });
    expect(out.schema).toBe('cordon.dossier/v1');
    expect(out.reference).toBe('WMP-OCG-2026-00412');
    const subjects = out.subjects as Array<Record<string, unknown>>;
    expect(subjects.map((s) => s.id)).toEqual(['ref-a', 'ref-c']);
    expect(JSON.stringify(out)).not.toMatch(/"S[1-4]"/);
  });

  it('maps associates to refs and drops those pointing at excluded or unknown subjects', () => {
    const d = structuredClone(dossier);
    (d.subjects[0] as { associates: unknown[] }).associates.push({ subject: 'S99', relationship: 'cousin' });
    const { dossier: out } = redact(d, plan([subjectOps, null, subjectOps, null]), { refs, pseudonymKey: key });
    const s1 = (out.subjects as Array<Record<string, unknown>>)[0] as { associates: unknown[] };
    expect(s1.associates).toEqual([{ subject: 'ref-c', relationship: 'employee' }]);
    const s3 = (out.subjects as Array<Record<string, unknown>>)[1] as { associates: unknown[] };
    expect(s3.associates).toEqual([{ subject: 'ref-a', relationship: 'employer' }]);
  });

  it('drops associates of excluded subjects even when their subject field is stripped', () => {
    const ops = { ...subjectOps, 'subjects[].associates[].subject': { op: 'strip' } as Operation };
    const { dossier: out } = redact(dossier, plan([ops, null, null, null]), { refs, pseudonymKey: key });
    expect((out.subjects as Array<Record<string, unknown>>)[0]).toEqual({ id: 'ref-a', name: { family: 'Okafor' } });
  });

  it('never lets subjects[].id through the projection, and refuses anything but keep/strip on associate refs', () => {
    const withId = { ...subjectOps, 'subjects[].id': { op: 'keep' } as Operation };
    const { dossier: out } = redact(dossier, plan([withId, null, null, null]), { refs, pseudonymKey: key });
    expect((out.subjects as Array<Record<string, unknown>>)[0]?.id).toBe('ref-a');
    const pseud = { ...subjectOps, 'subjects[].associates[].subject': { op: 'pseudonymise' } as Operation };
    expect(() => redact(dossier, plan([pseud, null, null, null]), { refs, pseudonymKey: key })).toThrow();
  });

  it('throws when an included subject has no ref, or the pseudonym key is too short', () => {
    expect(() => redact(dossier, plan([subjectOps, null, null, null]), { refs: new Map(), pseudonymKey: key })).toThrow();
    expect(() => redact(dossier, plan([subjectOps, null, null, null]), { refs, pseudonymKey: Buffer.alloc(3) })).toThrow();
  });

  it('treats missing plan entries as excluded', () => {
    const { dossier: out } = redact(dossier, plan([subjectOps]), { refs, pseudonymKey: key });
    expect((out.subjects as unknown[]).length).toBe(1);
  });

  it('refuses subject paths in the dossier part of a plan', () => {
    expect(() => redact(dossier, plan([null], { 'subjects[].name.given': { op: 'keep' } }), { refs, pseudonymKey: key })).toThrow();
  });

  it('lists the distinct paths and operations disclosed, never values', () => {
    const ops: Record<string, Operation> = {
      ...subjectOps,
      'subjects[].dateOfBirth': { op: 'generalise', to: 'ageBand' },
      'subjects[].identifiers.niNumber': { op: 'pseudonymise' },
    };
    const { dossier: out, disclosed } = redact(dossier, plan([ops, ops, null, null]), { refs, pseudonymKey: key });
    expect(disclosed).toEqual(
      expect.arrayContaining([
        { path: 'schema', op: 'keep' },
        { path: 'reference', op: 'keep' },
        { path: 'subjects[].id', op: 'ref' },
        { path: 'subjects[].name.family', op: 'keep' },
        { path: 'subjects[].dateOfBirth', op: 'generalise:ageBand' },
        { path: 'subjects[].identifiers.niNumber', op: 'pseudonymise' },
        { path: 'subjects[].associates[].subject', op: 'ref' },
      ]),
    );
    expect(new Set(disclosed.map((d) => `${d.path} ${d.op}`)).size).toBe(disclosed.length);
    const s = out.subjects as Array<{ dateOfBirth: string; identifiers: { niNumber: string } }>;
    expect(s[0]?.dateOfBirth).toBe('35-44');
    expect(s[0]?.identifiers.niNumber).toMatch(/^ps_[a-z2-7]{16}$/);
    expect(JSON.stringify(disclosed)).not.toContain('Okafor');
  });

  it('gives unlinkable pseudonyms to different recipients, stable ones across dossiers', () => {
    const ops: Record<string, Operation> = { 'subjects[].identifiers.niNumber': { op: 'pseudonymise' } };
    const p = plan([ops, null, null, null], {});
    const ni = (k: Buffer, d: Dossier) => ((redact(d, p, { refs, pseudonymKey: k }).dossier.subjects as Array<{ identifiers: { niNumber: string } }>)[0] as { identifiers: { niNumber: string } }).identifiers.niNumber;
    const other = structuredClone(dossier);
    other.reference = 'WMP-OCG-2026-00999';
    expect(ni(key, dossier)).toBe(ni(key, other));
    expect(ni(key, dossier)).not.toBe(ni(Buffer.alloc(32, 10), dossier));
  });
});
