/**
 * The matches schema (schemas/matches.schema.json): compiles under ajv strict, accepts the contract's
 * example unchanged, is bounded, and the validator names every problem by its JSON Pointer.
 */
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { validateMatches } from '../../gateway/hits/matches.js';
import { GatewayError } from '../../gateway/errors/index.js';

const schema = JSON.parse(readFileSync(new URL('../../schemas/matches.schema.json', import.meta.url), 'utf8')) as Record<string, any>;

/** contract/examples/matches-dwp-benefits.json, verbatim. */
const CONTRACT_EXAMPLE = {
  schema: 'cordon.matches/v1',
  packet: "<the match request's packet id>",
  results: [
    { subject: '<a subject ref exactly as it appears in the match request>', result: 'hit' },
    { subject: '<another subject ref from the same match request>', result: 'no_trace' },
  ],
};

function problems(body: unknown): Array<{ path?: string; keyword?: unknown }> {
  try {
    validateMatches(body);
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe('schema_violation');
    return (err as GatewayError).details ?? [];
  }
  return [];
}

describe('the matches schema', () => {
  it('compiles under ajv strict, 2020-12, closed and bounded', () => {
    const ajv = new Ajv2020({ strict: true, allErrors: true });
    expect(() => ajv.compile(schema)).not.toThrow();
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.additionalProperties).toBe(false);
    expect(schema.properties.results.maxItems).toBeGreaterThan(0);
    expect(schema.properties.results.items.additionalProperties).toBe(false);
    expect(schema.properties.results.items.properties.subject.maxLength).toBeGreaterThan(0);
    expect(schema.properties.packet.maxLength).toBeGreaterThan(0);
  });

  it('accepts the contract example unchanged', () => {
    expect(validateMatches(structuredClone(CONTRACT_EXAMPLE))).toEqual(CONTRACT_EXAMPLE);
  });

  it('takes withdrawn as a result', () => {
    expect(() => validateMatches({ ...CONTRACT_EXAMPLE, results: [{ subject: 'r', result: 'withdrawn' }] })).not.toThrow();
  });

  it('names every problem by its path', () => {
    const found = problems({ schema: 'cordon.matches/v2', packet: 'p', results: [{ subject: 'a', result: 'maybe' }, { result: 'hit', extra: 1 }], more: true });
    expect(found.map((d) => d.path).sort()).toEqual(['/more', '/results/0/result', '/results/1/extra', '/results/1/subject', '/schema'].sort());
  });

  it('refuses an empty or oversized list, a non-object, a subject answered twice and control characters', () => {
    expect(problems({ ...CONTRACT_EXAMPLE, results: [] }).map((d) => d.path)).toEqual(['/results']);
    const many = Array.from({ length: schema.properties.results.maxItems + 1 }, (_, i) => ({ subject: `r${i}`, result: 'hit' }));
    expect(problems({ ...CONTRACT_EXAMPLE, results: many }).map((d) => d.path)).toEqual(['/results']);
    expect(problems([]).map((d) => d.path)).toEqual(['']);
    expect(problems({ ...CONTRACT_EXAMPLE, results: [{ subject: 'a', result: 'hit' }, { subject: 'a', result: 'no_trace' }] })).toEqual([
      expect.objectContaining({ path: '/results/1/subject', keyword: 'uniqueSubject' }),
    ]);
    expect(problems({ ...CONTRACT_EXAMPLE, results: [{ subject: 'a\u001b[2J', result: 'hit' }] }).map((d) => d.path)).toEqual(['/results/0/subject']);
  });
});
