/**
 * The configuration schema (`schemas/config.schema.json`), read and compiled once: which variables
 * exist, what each accepts, its default and what it is for. env.ts checks the environment against it
 * and builds the Config from it; docs/configuration.md's table is generated from it
 * (scripts/docs-config.ts), so the documentation cannot drift from what the code accepts.
 * Problems are worded for an operator reading a failed start-up: each names its variable, says what
 * it accepts, and an unknown CORDON_* variable that looks like a known one is answered with that name.
 */
import { readFileSync } from 'node:fs';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';

/** One setting, as the schema describes it (the keywords env.ts and the docs generator read). */
export interface SettingSchema {
  /** The Config field the setting fills. */
  'x-field': string;
  /** Its section in docs/configuration.md. */
  'x-group': string;
  /** A file or directory, resolved against the working directory. */
  'x-path'?: boolean;
  /** A default that depends on something else, in words (no `default` then). */
  'x-default'?: string;
  /** What `pattern` accepts, in words. */
  'x-expect'?: string;
  /** Never echoed in error messages (may carry a password). */
  'x-secret'?: boolean;
  type?: 'string' | 'integer' | 'number';
  enum?: string[];
  default?: string | number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  pattern?: string;
  maxLength?: number;
  description: string;
}

export interface ConfigSchema {
  properties: Record<string, SettingSchema>;
  dependentRequired: Record<string, string[]>;
}

/** A problem with one variable (or the pair it belongs to). */
export interface ConfigProblem {
  variable: string;
  message: string;
}

const CONFIG_SCHEMA_URL = new URL('../../schemas/config.schema.json', import.meta.url);
export const configSchema = JSON.parse(readFileSync(CONFIG_SCHEMA_URL, 'utf8')) as ConfigSchema;

/** Variables that belong to Cordon: every CORDON_* variable must be one of the schema's. */
const OWN_PREFIX = 'CORDON_';

let validator: ValidateFunction | undefined;

function validate(): ValidateFunction {
  if (validator) return validator;
  // Strings from the environment become numbers where the schema says so; unset settings take
  // their defaults. Strict: a keyword the schema misspells fails here, not silently.
  const ajv = new Ajv2020({ strict: true, allErrors: true, coerceTypes: true, useDefaults: true });
  ajv.addVocabulary(['x-field', 'x-group', 'x-path', 'x-default', 'x-expect', 'x-secret']);
  validator = ajv.compile(configSchema);
  return validator;
}

/**
 * The settings the environment gives (the schema's variables and every CORDON_* one, unset and empty
 * ones left out), checked: `values` holds them typed and with defaults filled in; `problems` every
 * violation, one per variable.
 */
export function checkEnvironment(env: NodeJS.ProcessEnv): { values: Record<string, string | number>; problems: ConfigProblem[] } {
  const raw: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || value === '') continue;
    if (Object.hasOwn(configSchema.properties, name) || name.startsWith(OWN_PREFIX)) raw[name] = value;
  }
  const values: Record<string, string | number> = { ...raw };
  const check = validate();
  if (check(values)) return { values, problems: [] };
  return { values, problems: describeErrors(check.errors ?? [], raw) };
}

function describeErrors(errors: ErrorObject[], raw: Record<string, string>): ConfigProblem[] {
  const problems = new Map<string, string>();
  for (const e of errors) {
    if (e.keyword === 'additionalProperties') {
      const name = (e.params as { additionalProperty: string }).additionalProperty;
      const near = nearestSetting(name);
      problems.set(name, `${name} is not a Cordon setting${near ? ` (did you mean ${near}?)` : ''}: see docs/configuration.md`);
    } else if (e.keyword === 'dependentRequired') {
      const { property, missingProperty } = e.params as { property: string; missingProperty: string };
      problems.set(missingProperty, `${missingProperty} must be set when ${property} is${PAIR_REASON[property] ? `: ${PAIR_REASON[property]}` : ''}`);
    } else {
      const name = e.instancePath.slice(1).split('/')[0]!;
      const setting = configSchema.properties[name];
      if (!setting || problems.has(name)) continue;
      const shown = setting['x-secret'] ? '' : `, not ${JSON.stringify(truncate(raw[name] ?? ''))}`;
      problems.set(name, `${name} must be ${expectation(setting)}${shown}`);
    }
  }
  return [...problems].map(([variable, message]) => ({ variable, message }));
}

/** Why a variable needs its partner (dependentRequired in the schema). */
const PAIR_REASON: Record<string, string> = {
  CORDON_TLS_CERT: 'HTTPS needs both (PEM files), plain HTTP neither',
  CORDON_TLS_KEY: 'HTTPS needs both (PEM files), plain HTTP neither',
  CORDON_METRICS_HOST: 'the address is where the separate /metrics listener binds',
};

const truncate = (s: string) => (s.length > 40 ? `${s.slice(0, 40)}…` : s);

/** What a setting accepts, in words: "an integer from 1 to 64", "one of all, api, worker". */
export function expectation(s: SettingSchema): string {
  if (s.enum) return `one of ${s.enum.join(', ')}`;
  if (s['x-expect']) return s['x-expect'];
  if (s.type === 'integer' || s.type === 'number') {
    const kind = s.type === 'integer' ? 'an integer' : 'a number';
    const low = s.exclusiveMinimum !== undefined ? `above ${s.exclusiveMinimum}` : s.minimum !== undefined ? `${s.minimum}` : undefined;
    if (s.exclusiveMinimum !== undefined) return `${kind} ${low}${s.maximum !== undefined ? ` and at most ${s.maximum}` : ''}`;
    if (low !== undefined && s.maximum !== undefined) return `${kind} from ${low} to ${s.maximum}`;
    if (low !== undefined) return `${kind} of at least ${low}`;
    return kind;
  }
  if (s['x-path']) return 'a path';
  return s.pattern ? `a string matching ${s.pattern}` : 'a string';
}

/**
 * The known setting an unknown CORDON_* name was probably meant to be: the same letters but for a
 * misplaced underscore, a small typo, or a known name given a CORDON_ prefix it does not have.
 */
export function nearestSetting(name: string): string | undefined {
  const bare = (n: string) => n.replace(/^CORDON_/, '').replace(/_/g, '');
  let best: { name: string; distance: number } | undefined;
  for (const known of Object.keys(configSchema.properties)) {
    const distance = Math.min(editDistance(name, known), editDistance(bare(name), bare(known)));
    if (!best || distance < best.distance) best = { name: known, distance };
  }
  return best && best.distance <= Math.max(1, Math.floor(bare(name).length / 5)) ? best.name : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}
