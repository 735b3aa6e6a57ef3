/**
 * A cheaper yes/no check of a schema, for the hot path of validation: it accepts nothing the full
 * validator (validate.ts) refuses, so a body it accepts is valid, and a body it refuses is handed to
 * the full validator, which decides and names every violation. It differs from the full one only in
 * how it gets there:
 * - it stops at the first violation (`allErrors` off): the same answer, sooner when there is one;
 * - patterns are compiled without the `u` flag: every pattern in our schemas is ASCII classes and
 *   `\uXXXX` escapes, which match the same strings either way (checked at compile time below);
 * - `maxLength`/`minLength` look at the UTF-16 length first and count code points (as JSON Schema
 *   and the full validator do) only when that does not settle it: a string has between length/2
 *   and length code points.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import { _, type KeywordCxt, type ValidateFunction } from 'ajv';
import { useFunc } from 'ajv/dist/compile/util.js';
import addFormats from 'ajv-formats';
import ucs2lengthModule from 'ajv/dist/runtime/ucs2length.js';
import type { JsonSchema } from './schemas.js';

// A CommonJS module: Node's ESM loader gives its exports object, some bundlers the function itself.
type Ucs2Length = ((s: string) => number) & { code: string };
const ucs2length = ((ucs2lengthModule as unknown as { default?: Ucs2Length }).default ?? ucs2lengthModule) as Ucs2Length;

/**
 * Patterns that match the same strings with and without the `u` flag. Allowed: ASCII literals (no `.`),
 * `\uXXXX` escapes, `\d` `\w` `\s`, groups, quantifiers, and classes of those; a negated class only
 * under `*` or `+` (it then takes an astral character as one code point or as two code units alike).
 * Not allowed, because the flag changes them: `.`, `\D` `\S` `\W`, `\u{…}`, `\p{…}`, a counted
 * negated class.
 */
const CLASS_ITEM = String.raw`(?:[\w ,:/()+*?.-]|\\u[0-9A-Fa-f]{4}|\\[dws./()+*?-])`;
const FLAG_FREE_PATTERN = new RegExp(
  String.raw`^(?:[\w ^$()?:|/~,=*+-]|\{\d+(?:,\d*)?\}|\\u[0-9A-Fa-f]{4}|\\[dws./()+*?-]|\[${CLASS_ITEM}*\]|\[\^${CLASS_ITEM}*\][*+])*$`,
);

/** Keywords whose values are data, not schemas: left as they are. */
const DATA_KEYWORDS = new Set(['const', 'enum', 'default', 'examples']);

function withUnitLengths(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(withUnitLengths);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'pattern' && (typeof value !== 'string' || !FLAG_FREE_PATTERN.test(value))) {
      throw new Error(`quick check: pattern ${String(value)} may depend on the u flag`);
    }
    if ((key === 'maxLength' || key === 'minLength') && typeof value === 'number') out[key === 'maxLength' ? 'maxChars' : 'minChars'] = value;
    else out[key] = DATA_KEYWORDS.has(key) ? value : withUnitLengths(value);
  }
  return out;
}

export function quickCheck(schema: JsonSchema): (body: unknown) => boolean {
  const ajv = new Ajv2020({ strict: true, allErrors: false, allowUnionTypes: true, unicodeRegExp: false });
  addFormats.default(ajv);
  ajv.addKeyword({ keyword: 'x-kind', schemaType: 'string' });
  // Generated inline like ajv's own length checks; ucs2length is the very function the full validator uses.
  ajv.addKeyword({
    keyword: 'maxChars',
    type: 'string',
    schemaType: 'number',
    code(cxt: KeywordCxt) {
      const { data, schemaCode, gen } = cxt;
      cxt.fail(_`${data}.length > ${schemaCode} && ${useFunc(gen, ucs2length)}(${data}) > ${schemaCode}`);
    },
  });
  ajv.addKeyword({
    keyword: 'minChars',
    type: 'string',
    schemaType: 'number',
    code(cxt: KeywordCxt) {
      const { data, schemaCode, gen } = cxt;
      cxt.fail(_`${data}.length < 2 * ${schemaCode} && (${data}.length < ${schemaCode} || ${useFunc(gen, ucs2length)}(${data}) < ${schemaCode})`);
    },
  });
  const check: ValidateFunction = ajv.compile(withUnitLengths(schema) as JsonSchema);
  return (body) => check(body) === true;
}
