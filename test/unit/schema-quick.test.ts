/**
 * The quick check of the dossier schema (dossier/quick-check.ts) against the full validator: on the
 * example dossiers, generated ones, and every kind of bad input the schema tests use (applied at every
 * place in the full example), the two give the same answer. The quick check must never accept what the
 * full one refuses; it is built to refuse nothing the full one accepts either.
 */
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { quickCheck } from '../../gateway/dossier/quick-check.js';
import { dossierSchema } from '../../gateway/dossier/schemas.js';
import { makeDossiers } from '../../scripts/bench/dossiers.js';

type Json = Record<string, unknown>;
const example = (name: string) => JSON.parse(readFileSync(new URL(`../../examples/${name}`, import.meta.url), 'utf8')) as Json;

// The full validator as validate.ts builds it.
const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
addFormats.default(ajv);
ajv.addKeyword({ keyword: 'x-kind', schemaType: 'string' });
const fullCheck = ajv.compile(dossierSchema);
const quick = quickCheck(dossierSchema);

let accepted = 0;
let refused = 0;
function agree(body: unknown, what: string): void {
  const full = fullCheck(body) === true;
  expect(quick(body), what).toBe(full);
  if (full) accepted++;
  else refused++;
}

/** Every place in a document: [parent, key] pairs, leaves and containers. */
function places(value: unknown, out: Array<[Json | unknown[], string | number, string]> = [], path = ''): typeof out {
  const entries: Array<[string | number, unknown]> = Array.isArray(value) ? value.map((v, i) => [i, v]) : value && typeof value === 'object' ? Object.entries(value) : [];
  for (const [key, child] of entries) {
    out.push([value as Json | unknown[], key, `${path}/${key}`]);
    places(child, out, `${path}/${key}`);
  }
  return out;
}

/** Length bounds the schema uses, and either side of them. */
const LENGTHS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 17, 20, 21, 24, 25, 64, 65, 100, 101, 200, 201, 254, 255, 1000, 1001, 2000, 2001];
const STRINGS: string[] = [
  ...LENGTHS.flatMap((n) => ['x'.repeat(n), 'X'.repeat(n), '7'.repeat(n), '😀'.repeat(n), `${'😀'.repeat(Math.max(0, n - 1))}x`, `${'é'.repeat(n)}`]),
  '\ud800', 'a\udc00b', '😀', 'ab\u0000', 'Daniel\u001b[31m', 'line one\nline two', 'tab\there', '\u007f', '\u2028',
  '1987-13-01', '1987-02-30', '2024-02-29', '2023-02-29', '12/04/1987', '1987-4-12', '1987-04-12T00:00:00Z', '1987-04-12',
  '2026-11-21 08:00', '2026-11-21T08:00:00', '2026-11-21T08:00:00Z', '2026-11-21T08:00:00+01:00', '2026-11-21T25:00:00Z', '2016-12-31T23:59:60Z',
  'not an email', 'a@b', 'a@b.co', 'd.okafor@example.com', '@example.com', 'a@😀.com',
  'cv6 5hx', 'CV6  5HX', 'CV6 5HX', 'CV6 5HXX', '12345', 'gb', 'GB', 'QQ 12 34 56 C', 'QQ123456C', '09/123456X', '123456', 'ab12 cde', 'AB12 CDE',
  '123456789', '12-34-56', 'S 1', 'S1', 'suspect', 'principal', 'cordon.dossier/v2', 'cordon.dossier/v1', 'OFFICIAL', 'C', 'F', 'B', 'P',
];
const OTHERS: unknown[] = [null, 0, 1, 2, 6, -1, 1.5, true, false, [], {}, ['x'], { x: 1 }];

describe('the quick dossier check agrees with the full validator', () => {
  it('on the examples and generated dossiers', () => {
    agree(example('dossier-full.json'), 'full example');
    agree(example('dossier-minimal.json'), 'minimal example');
    for (const size of ['S', 'M', 'L'] as const) for (const [i, d] of makeDossiers(size, 20, 7).entries()) agree(JSON.parse(JSON.stringify(d)), `${size} ${i}`);
    expect(refused).toBe(0);
  });

  it('on every value swapped in at every place of the full example', () => {
    for (const base of [example('dossier-full.json')]) {
      for (const [parent, key, path] of places(base)) {
        const original = (parent as Json)[key as string];
        const swaps = typeof original === 'string' ? [...STRINGS, ...OTHERS] : typeof original === 'number' ? [...OTHERS, 'x', 3, 4, 5, 100] : OTHERS;
        for (const value of swaps) {
          (parent as Json)[key as string] = value;
          agree(base, `${path} = ${JSON.stringify(value)}`);
        }
        (parent as Json)[key as string] = original;
      }
    }
    expect(accepted).toBeGreaterThan(100);
    expect(refused).toBeGreaterThan(1000);
  });

  it('on missing, extra and repeated members, and conditional requirements', () => {
    for (const base of [example('dossier-full.json'), example('dossier-minimal.json')]) {
      for (const [parent, key, path] of places(base)) {
        const original = (parent as Json)[key as string];
        if (Array.isArray(parent)) {
          parent.splice(key as number, 1);
          agree(base, `without ${path}`);
          parent.splice(key as number, 0, original);
          const many = parent.length;
          parent.push(...Array.from({ length: 201 - many }, () => structuredClone(original)));
          agree(base, `${path} repeated to 201 items`);
          parent.length = many;
        } else {
          delete (parent as Json)[key as string];
          agree(base, `without ${path}`);
          (parent as Json)[key as string] = original;
        }
        if (original && typeof original === 'object' && !Array.isArray(original)) {
          (original as Json)['a/b~c'] = 1;
          agree(base, `extra property in ${path}`);
          delete (original as Json)['a/b~c'];
        }
      }
      agree({ ...base, extra: true }, 'extra top-level property');
      agree({ ...base, handling: { code: 'C' } }, 'handling C without conditions');
      agree({ ...base, handling: { code: 'C', conditions: 'Safeguarding only' } }, 'handling C with conditions');
    }
    agree([], 'an array');
    agree('dossier', 'a string');
    agree(null, 'null');
  });
});

describe('the quick check, keyword by keyword', () => {
  const strings = ['', 'a', 'ab', 'abc', 'abcd', 'abcde', '😀', '😀😀', '😀😀😀', '😀😀😀😀', '😀😀😀😀😀', 'a😀', '😀ab', '\ud800', '\ud800\ud800\ud800', '\udc00\ud800'];
  it('counts string lengths in code points, as the full validator does', () => {
    for (const schema of [{ type: 'string', minLength: 3 }, { type: 'string', maxLength: 3 }, { type: 'string', minLength: 2, maxLength: 4 }, { type: 'string', minLength: 1 }]) {
      const full = ajv.compile(schema);
      const q = quickCheck(schema);
      for (const s of strings) expect(q(s), `${JSON.stringify(schema)} ${JSON.stringify(s)}`).toBe(full(s));
    }
  });

  it('compiles patterns without the u flag only where that cannot change a match', () => {
    for (const pattern of ['^.{1,3}$', '^[^a]{2}$', '^\\S$', '^\\u{41}$', '^\\p{L}+$', '^[A-Z]\\W$']) {
      expect(() => quickCheck({ type: 'string', pattern }), pattern).toThrow(/may depend on the u flag/);
    }
    for (const pattern of ['^[^\\u0000-\\u001F\\u007F]*$', '^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$', '^[^a]+$']) {
      const full = ajv.compile({ type: 'string', pattern });
      const q = quickCheck({ type: 'string', pattern });
      for (const s of [...strings, 'CV6 5HX', 'A\u0000', 'Ab']) expect(q(s), `${pattern} ${JSON.stringify(s)}`).toBe(full(s));
    }
  });
});
