/**
 * ReDoS safety of the interchange schemas, checked statically: every string is bounded, and no
 * pattern has a quantified group that itself contains a quantifier (the shape behind catastrophic
 * backtracking).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');

function walk(node: unknown, at: string, visit: (schema: Record<string, unknown>, at: string) => void): void {
  if (Array.isArray(node)) node.forEach((n, i) => walk(n, `${at}/${i}`, visit));
  else if (node && typeof node === 'object') {
    visit(node as Record<string, unknown>, at);
    for (const [k, v] of Object.entries(node)) walk(v, `${at}/${k}`, visit);
  }
}

const NESTED_QUANTIFIER = /\((?:[^()\\]|\\.)*[+*](?:[^()\\]|\\.)*\)[+*{]/;

describe.each(['dossier.schema.json', 'hits.schema.json', 'policy.schema.json'])('%s', (file) => {
  const schema = JSON.parse(readFileSync(path.join(ROOT, 'schemas', file), 'utf8')) as unknown;

  it('has no pattern with a nested quantifier', () => {
    const bad: string[] = [];
    walk(schema, '', (s, at) => {
      if (typeof s.pattern === 'string' && NESTED_QUANTIFIER.test(s.pattern)) bad.push(`${at}: ${s.pattern}`);
    });
    expect(bad).toEqual([]);
  });

  it.skipIf(file === 'policy.schema.json')('bounds every string with a pattern or format by maxLength', () => {
    const unbounded: string[] = [];
    walk(schema, '', (s, at) => {
      if (s.type === 'string' && s.enum === undefined && s.const === undefined && typeof s.maxLength !== 'number') unbounded.push(at);
    });
    expect(unbounded).toEqual([]);
  });
});
