import { describe, expect, it } from 'vitest';
import { andConditions, evaluateCondition } from '../../gateway/policy/condition.js';
import type { Condition } from '../../gateway/policy/types.js';

const c = (fact: string, operator: string, value: unknown): Condition => ({ fact, operator, value });
const item = { sourceType: 'public', grading: { source: 2, intelligence: 'B', handling: 'P' }, tags: ['a', 'b'], relationship: 'brother' };

describe('evaluateCondition (item filters)', () => {
  it.each([
    [c('sourceType', 'equal', 'public'), true],
    [c('sourceType', 'notEqual', 'CHIS'), true],
    [c('grading.intelligence', 'in', ['A', 'B']), true],
    [c('grading.intelligence', 'notIn', ['A', 'B']), false],
    [c('grading.source', 'lessThan', 2), false],
    [c('grading.source', 'lessThanInclusive', 2), true],
    [c('grading.source', 'greaterThan', 1), true],
    [c('grading.source', 'greaterThanInclusive', 3), false],
    [c('tags', 'contains', 'a'), true],
    [c('tags', 'doesNotContain', 'a'), false],
  ])('%j → %s', (cond, want) => {
    expect(evaluateCondition({ all: [cond] }, item)).toBe(want);
  });

  it('supports all / any / not', () => {
    expect(evaluateCondition({ any: [c('sourceType', 'equal', 'x'), c('relationship', 'equal', 'brother')] }, item)).toBe(true);
    expect(evaluateCondition({ not: c('sourceType', 'equal', 'CHIS') }, item)).toBe(true);
    expect(evaluateCondition({ all: [c('sourceType', 'equal', 'public'), { not: c('relationship', 'equal', 'brother') }] }, item)).toBe(false);
  });

  it('never lets an item without the fact through, not even under a not', () => {
    const noSource = { grading: { source: 1 } };
    expect(evaluateCondition({ all: [c('sourceType', 'notEqual', 'CHIS')] }, noSource)).toBe(false);
    expect(evaluateCondition({ not: c('sourceType', 'equal', 'CHIS') }, noSource)).toBe(false);
    expect(evaluateCondition({ not: { not: c('sourceType', 'notEqual', 'CHIS') } }, noSource)).toBe(false);
    expect(evaluateCondition({ all: [c('grading.handling', 'in', ['P'])] }, noSource)).toBe(false);
    // any: an unknown part does not block another part that holds
    expect(evaluateCondition({ any: [c('sourceType', 'equal', 'x'), c('grading.source', 'equal', 1)] }, noSource)).toBe(true);
  });

  it('treats wrong types and non-scalar facts as not holding', () => {
    expect(evaluateCondition({ all: [c('grading.source', 'lessThan', 3)] }, { grading: { source: '1' } })).toBe(false);
    expect(evaluateCondition({ not: c('grading.source', 'lessThan', 3) }, { grading: { source: '1' } })).toBe(false);
    expect(evaluateCondition({ all: [c('grading', 'equal', 'x')] }, item)).toBe(false);
    expect(evaluateCondition({ all: [c('sourceType', 'in', 'public')] }, item)).toBe(false);
    expect(evaluateCondition({ all: [c('sourceType', 'bogus', 'public')] }, item)).toBe(false);
  });

  it('reads own properties only', () => {
    expect(evaluateCondition({ all: [c('constructor', 'notEqual', 'x')] }, {})).toBe(false);
    expect(evaluateCondition({ all: [c('toString', 'notEqual', 'x')] }, {})).toBe(false);
  });

  it('refuses malformed conditions', () => {
    expect(evaluateCondition({ all: [] }, item)).toBe(false);
    expect(evaluateCondition({} as Condition, item)).toBe(false);
  });

  it('andConditions requires both', () => {
    const both = andConditions({ all: [c('sourceType', 'notEqual', 'CHIS')] }, c('grading.source', 'equal', 1));
    expect(evaluateCondition(both, { sourceType: 'public', grading: { source: 1 } })).toBe(true);
    expect(evaluateCondition(both, { sourceType: 'public', grading: { source: 2 } })).toBe(false);
    expect(evaluateCondition(both, { sourceType: 'CHIS', grading: { source: 1 } })).toBe(false);
  });
});
