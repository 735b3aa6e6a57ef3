import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { describeOp, mostRestrictive, rank } from '../../gateway/policy/restrictiveness.js';
import { evaluateCondition } from '../../gateway/policy/condition.js';
import type { Condition, Operation } from '../../gateway/policy/types.js';

const chis: Condition = { all: [{ fact: 'sourceType', operator: 'notEqual', value: 'CHIS' }] };
const graded: Condition = { all: [{ fact: 'grading.source', operator: 'lessThanInclusive', value: 2 }] };

// Most restrictive first.
const ORDER: Operation[] = [
  { op: 'strip' },
  { op: 'count' },
  { op: 'replace', with: '[withheld]' },
  { op: 'pseudonymise' },
  { op: 'generalise', to: 'year' },
  { op: 'mask', show: 'last', chars: 3 },
  { op: 'filter', where: chis },
  { op: 'keep' },
];

describe('mostRestrictive', () => {
  it('follows strip > count > replace > pseudonymise > generalise > mask > filter > keep, in either argument order', () => {
    for (let i = 0; i < ORDER.length; i++) {
      for (let j = i + 1; j < ORDER.length; j++) {
        const a = ORDER[i] as Operation;
        const b = ORDER[j] as Operation;
        expect(mostRestrictive(a, b).op).toBe(a.op);
        expect(mostRestrictive(b, a).op).toBe(a.op);
      }
    }
    expect(ORDER.map(rank)).toEqual([...ORDER.map(rank)].sort((x, y) => y - x));
  });

  it('prefers the coarser date: ageBand > decade > year > month', () => {
    const levels = ['ageBand', 'decade', 'year', 'month'] as const;
    for (let i = 0; i < levels.length; i++) {
      for (let j = i + 1; j < levels.length; j++) {
        const a: Operation = { op: 'generalise', to: levels[i] as 'year' };
        const b: Operation = { op: 'generalise', to: levels[j] as 'year' };
        expect(mostRestrictive(a, b)).toEqual(a);
        expect(mostRestrictive(b, a)).toEqual(a);
      }
    }
  });

  it('prefers the coarser postcode: area > district > sector; and town over postcode for addresses', () => {
    expect(mostRestrictive({ op: 'generalise', to: 'sector' }, { op: 'generalise', to: 'area' })).toEqual({ op: 'generalise', to: 'area' });
    expect(mostRestrictive({ op: 'generalise', to: 'district' }, { op: 'generalise', to: 'sector' })).toEqual({ op: 'generalise', to: 'district' });
    expect(mostRestrictive({ op: 'generalise', to: 'postcode' }, { op: 'generalise', to: 'town' })).toEqual({ op: 'generalise', to: 'town' });
  });

  it('prefers the wider band', () => {
    expect(mostRestrictive({ op: 'generalise', to: 'band', width: 10 }, { op: 'generalise', to: 'band', width: 25 })).toEqual({ op: 'generalise', to: 'band', width: 25 });
  });

  it('fails closed (strip) when generalisations of different families meet, or an operation is unknown', () => {
    expect(mostRestrictive({ op: 'generalise', to: 'year' }, { op: 'generalise', to: 'sector' })).toEqual({ op: 'strip' });
    expect(mostRestrictive({ op: 'keep' }, { op: 'publish' } as unknown as Operation)).toEqual({ op: 'strip' });
  });

  it('prefers the mask that shows fewer characters; equal counts from different ends show nothing', () => {
    expect(mostRestrictive({ op: 'mask', show: 'first', chars: 4 }, { op: 'mask', show: 'last', chars: 2 })).toEqual({ op: 'mask', show: 'last', chars: 2 });
    expect(mostRestrictive({ op: 'mask', show: 'first', chars: 2 }, { op: 'mask', show: 'last', chars: 2 })).toEqual({ op: 'mask', show: 'last', chars: 0 });
  });

  it('ANDs two filters', () => {
    const r = mostRestrictive({ op: 'filter', where: chis }, { op: 'filter', where: graded });
    expect(r.op).toBe('filter');
    const where = (r as { where: Condition }).where;
    expect(evaluateCondition(where, { sourceType: 'public', grading: { source: 1 } })).toBe(true);
    expect(evaluateCondition(where, { sourceType: 'CHIS', grading: { source: 1 } })).toBe(false);
    expect(evaluateCondition(where, { sourceType: 'public', grading: { source: 3 } })).toBe(false);
  });

  it('never loses a filter: count and town carry it as their where', () => {
    const c = mostRestrictive({ op: 'filter', where: chis }, { op: 'count' });
    expect(c).toEqual({ op: 'count', where: chis });
    const t = mostRestrictive({ op: 'generalise', to: 'town' }, { op: 'filter', where: graded });
    expect(t.op).toBe('generalise');
    expect((t as { where?: Condition }).where).toBeDefined();
    const both = mostRestrictive({ op: 'count', where: graded }, { op: 'filter', where: chis });
    expect(evaluateCondition((both as { where: Condition }).where, { sourceType: 'CHIS', grading: { source: 1 } })).toBe(false);
  });

  it('is commutative', () => {
    const op = fc.oneof(
      ...ORDER.map((o) => fc.constant(o)),
      fc.constantFrom('month', 'year', 'decade', 'ageBand', 'sector', 'district', 'area', 'town', 'postcode').map((to) => ({ op: 'generalise', to }) as Operation),
      fc.integer({ min: 1, max: 50 }).map((width) => ({ op: 'generalise', to: 'band', width }) as Operation),
      fc.record({ show: fc.constantFrom('first' as const, 'last' as const), chars: fc.integer({ min: 0, max: 6 }) }).map((m) => ({ op: 'mask', ...m }) as Operation),
      fc.string({ maxLength: 5 }).map((w) => ({ op: 'replace', with: w }) as Operation),
      fc.constant({ op: 'filter', where: graded } as Operation),
      fc.constant({ op: 'count', where: graded } as Operation),
    );
    fc.assert(
      fc.property(op, op, (a, b) => {
        expect(mostRestrictive(a, b)).toEqual(mostRestrictive(b, a));
      }),
    );
  });

  it('labels operations for traces', () => {
    expect(describeOp({ op: 'generalise', to: 'band', width: 10 })).toBe('generalise:band:10');
    expect(describeOp({ op: 'mask', show: 'last', chars: 3 })).toBe('mask:last:3');
    expect(describeOp({ op: 'keep' })).toBe('keep');
  });
});
