/**
 * The policy files' schema check (schemas/policy.schema.json, ajv strict, every error at once) and
 * the problem list every check of the loader writes to. A problem names its file and the place in it
 * (`rules[0].conditions`, `fields."subjects[].name"`), which `cordon policy lint` turns into file:line.
 */
import { readFile } from 'node:fs/promises';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { ErrorDetail } from '../errors/index.js';

const POLICY_SCHEMA_ID = 'https://cordon.example/schemas/policy.schema.json';

// ---- schema ------------------------------------------------------------------------------------

let validators: { gateway: ValidateFunction; partner: ValidateFunction; source: ValidateFunction; peer: ValidateFunction; test: ValidateFunction } | undefined;

export async function getValidators() {
  if (validators) return validators;
  const text = await readFile(new URL('../../schemas/policy.schema.json', import.meta.url), 'utf8');
  const ajv = new Ajv2020({ strict: true, allErrors: true, discriminator: true, allowUnionTypes: true });
  ajv.addSchema(JSON.parse(text) as object);
  const get = (def: string): ValidateFunction => {
    const v = ajv.getSchema(`${POLICY_SCHEMA_ID}#/$defs/${def}`);
    if (!v) throw new Error(`policy schema has no $defs/${def}`);
    return v;
  };
  validators = { gateway: get('gateway'), partner: get('partner'), source: get('source'), peer: get('peer'), test: get('policyTest') };
  return validators;
}

// ---- problems ----------------------------------------------------------------------------------

export class Problems {
  readonly list: ErrorDetail[] = [];
  add(file: string, location: string, message: string): void {
    this.list.push({ path: location === '' ? file : `${file}: ${location}`, message });
  }
}

/** JSON Pointer → `fields."subjects[].foo"`, `rules[0].conditions`. */
function pointerToLocation(pointer: string): string {
  if (pointer === '') return '';
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^[0-9]+$/.test(seg)) out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `${out === '' ? '' : '.'}${JSON.stringify(seg)}`;
  }
  return out;
}

export function loc(...parts: Array<string | number>): string {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(p)) out += out === '' ? p : `.${p}`;
    else out += `${out === '' ? '' : '.'}${JSON.stringify(p)}`;
  }
  return out;
}

export function schemaProblems(file: string, errors: ErrorObject[] | null | undefined, problems: Problems): void {
  const seen = new Set<string>();
  for (const e of errors ?? []) {
    if (e.keyword === 'if' || e.keyword === 'anyOf' || e.keyword === 'oneOf') continue;
    let where = e.instancePath;
    let message = e.message ?? 'is invalid';
    const params = e.params as Record<string, unknown>;
    if (e.keyword === 'propertyNames' && typeof params.propertyName === 'string') {
      where = `${where}/${params.propertyName.replace(/~/g, '~0').replace(/\//g, '~1')}`;
      message = 'is not a valid name here';
    } else if (e.propertyName !== undefined) {
      continue; // the propertyNames error above says it better
    } else if (e.keyword === 'additionalProperties' && typeof params.additionalProperty === 'string') {
      message = `unknown property ${JSON.stringify(params.additionalProperty)}`;
    } else if (e.keyword === 'enum' && Array.isArray(params.allowedValues)) {
      message = `must be one of ${params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    } else if (e.keyword === 'discriminator' && typeof params.tagValue === 'string') {
      message = `unknown operation ${JSON.stringify(params.tagValue)}`;
    } else if (e.keyword === 'false schema') {
      message = 'is not allowed here';
    }
    const location = pointerToLocation(where);
    const key = `${location}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.add(file, location, message);
  }
}
