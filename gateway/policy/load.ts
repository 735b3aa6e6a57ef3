/**
 * Loading the policy directory: the only I/O of the policy module.
 *
 *   <dir>/gateway.yaml          gateway-wide constraints (neverShare, alwaysFilter)
 *   <dir>/partners/<id>.yaml    a partner, its agreement, its base allowlist and its rules
 *   <dir>/sources/<id>.yaml     a police force that pushes dossiers
 *   <dir>/peers/<id>.yaml       other forces' gateways (optional; loaded raw, hashed into the revision)
 *   <dir>/keys/*.asc            public keys, named by the files above
 *
 * Every file is checked against schemas/policy.schema.json (ajv strict) and then semantically: every
 * path exists in the dossier schema, operations fit the field, `keep` only on leaves, rule facts are
 * known, neverShare paths are never granted, ids match file names, key files stay inside the
 * directory. EVERY problem across all files is collected and thrown as one
 * `GatewayError('policy_invalid', 'N problems in the policy set', details)`.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { parseDocument } from 'yaml';
import { GatewayError, type ErrorDetail } from '../errors/index.js';
import { schemaLeafPaths, type SchemaPath } from '../dossier/paths.js';
import { dossierSchema } from '../dossier/schemas.js';
import { validateDossier } from '../dossier/validate.js';
import { conditionLeaves, LIST_FACT_OPERATORS, LIST_VALUE_OPERATORS, NUMERIC_OPERATORS } from './condition.js';
import { startOfDayUtc } from './dates.js';
import { DOSSIER_FACT_TYPES, FACT_ENUM_PATHS, SUBJECT_FACT_TYPES, type FactType } from './facts.js';
import { ASSOCIATE_SUBJECT, isAncestor, isSubjectPath, SUBJECT_ID, SUBJECTS } from './paths.js';
import { isAddressOp, isTerminalOp } from './plan.js';
import { describeOp } from './restrictiveness.js';
import type { Dossier } from '../dossier/types.js';
import type { PolicyTest } from '../governance/testing.js';
import type {
  Condition,
  GatewayRules,
  KeyRef,
  Operation,
  PartnerPolicy,
  PeerFile,
  PeerPolicy,
  PolicySet,
  Rule,
  SourceConfig,
} from './types.js';

const MAX_FILE_BYTES = 1024 * 1024;

/**
 * Fields that must travel with any item of their array that is shared (DPA 2018 s.38: reliability
 * information goes with every transmission; handling conditions travel with the item). A partner that
 * shares anything of an intelligence item must keep these, and no rule may change them.
 */
export const TRAVELS_WITH: Readonly<Record<string, readonly string[]>> = Object.freeze({
  'subjects[].intelligence[]': Object.freeze([
    'subjects[].intelligence[].grading.source',
    'subjects[].intelligence[].grading.intelligence',
    'subjects[].intelligence[].grading.handling',
    'subjects[].intelligence[].handlingConditions',
  ]),
});
const POLICY_SCHEMA_ID = 'https://cordon.example/schemas/policy.schema.json';

// ---- schema ------------------------------------------------------------------------------------

let validators: { gateway: ValidateFunction; partner: ValidateFunction; source: ValidateFunction; peer: ValidateFunction; test: ValidateFunction } | undefined;

async function getValidators() {
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

class Problems {
  readonly list: ErrorDetail[] = [];
  add(file: string, location: string, message: string): void {
    this.list.push({ path: location === '' ? file : `${file}: ${location}`, message });
  }
}

/** JSON Pointer → `fields."subjects[].foo"`, `rules[0].conditions`. */
export function pointerToLocation(pointer: string): string {
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

function loc(...parts: Array<string | number>): string {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(p)) out += out === '' ? p : `.${p}`;
    else out += `${out === '' ? '' : '.'}${JSON.stringify(p)}`;
  }
  return out;
}

function schemaProblems(file: string, errors: ErrorObject[] | null | undefined, problems: Problems): void {
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

// ---- files -------------------------------------------------------------------------------------

interface Loaded {
  rel: string;
  content: string;
}

async function readText(root: string, rel: string, files: Loaded[], problems: Problems): Promise<string | undefined> {
  const abs = path.join(root, rel);
  try {
    const info = await stat(abs);
    if (!info.isFile()) {
      problems.add(rel, '', 'is not a regular file');
      return undefined;
    }
    if (info.size > MAX_FILE_BYTES) {
      problems.add(rel, '', `is larger than ${MAX_FILE_BYTES} bytes`);
      return undefined;
    }
    const content = await readFile(abs, 'utf8');
    files.push({ rel, content });
    return content;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    problems.add(rel, '', code === 'ENOENT' ? 'is missing' : `cannot be read: ${code ?? (err as Error).message}`);
    return undefined;
  }
}

function parseYaml(rel: string, text: string, problems: Problems): unknown {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true, schema: 'core' });
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const line = e.linePos?.[0];
      const message = (e.message.split('\n')[0] ?? 'YAML syntax error').replace(/ at line \d+, column \d+:?$/, '');
      problems.add(rel, line ? `line ${line.line}, column ${line.col}` : '', message);
    }
    return undefined;
  }
  try {
    return doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (err) {
    problems.add(rel, '', `YAML: ${(err as Error).message}`);
    return undefined;
  }
}

/** `partners/*.yaml` (and .yml), sorted; a missing directory is `undefined`. */
async function listYaml(root: string, sub: string): Promise<string[] | undefined> {
  let names: string[];
  try {
    names = await readdir(path.join(root, sub));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return names.filter((n) => /\.ya?ml$/.test(n) && !n.startsWith('.')).sort();
}

function fileId(name: string): string {
  return name.replace(/\.ya?ml$/, '');
}

async function readKey(root: string, realRoot: string, rel: string, where: string, file: string, files: Loaded[], problems: Problems): Promise<string | undefined> {
  if (path.isAbsolute(file) || file.split('/').includes('..') || file.includes('\\')) {
    problems.add(rel, where, 'must be a path inside the policy directory (relative, without "..")');
    return undefined;
  }
  const abs = path.resolve(root, file);
  const relToRoot = path.relative(root, abs);
  if (relToRoot.startsWith('..') || path.isAbsolute(relToRoot)) {
    problems.add(rel, where, 'must be a path inside the policy directory');
    return undefined;
  }
  let real: string;
  try {
    real = await realpath(abs);
  } catch {
    return undefined; // missing: the delivery blocks with recipient_key_invalid, the set still loads
  }
  const realRel = path.relative(realRoot, real);
  if (realRel.startsWith('..') || path.isAbsolute(realRel)) {
    problems.add(rel, where, 'resolves (through a link) outside the policy directory');
    return undefined;
  }
  try {
    const info = await stat(real);
    if (!info.isFile()) return undefined;
    if (info.size > MAX_FILE_BYTES) {
      problems.add(rel, where, `key file is larger than ${MAX_FILE_BYTES} bytes`);
      return undefined;
    }
    const armored = await readFile(real, 'utf8');
    if (/PRIVATE KEY BLOCK/.test(armored)) {
      problems.add(rel, where, 'is a SECRET key: only public keys belong in the policy directory');
      return undefined;
    }
    files.push({ rel: relToRoot.split(path.sep).join('/'), content: armored });
    return armored;
  } catch {
    return undefined;
  }
}

// ---- the dossier schema, as policy paths --------------------------------------------------------

interface SchemaIndex {
  byPath: Map<string, SchemaPath>;
  order: Map<string, number>;
}

let schemaIndex: SchemaIndex | undefined;

function getSchemaIndex(): SchemaIndex {
  if (!schemaIndex) {
    const all = schemaLeafPaths();
    schemaIndex = { byPath: new Map(all.map((p) => [p.path, p])), order: new Map(all.map((p, i) => [p.path, i])) };
  }
  return schemaIndex;
}

/** The schema's spelling of a policy path (an array may be named without its `[]`), or undefined. */
export function canonicalPath(p: string): string | undefined {
  const { byPath } = getSchemaIndex();
  if (byPath.has(p)) return p;
  if (!p.endsWith('[]') && byPath.has(`${p}[]`)) return `${p}[]`;
  return undefined;
}

const DATE_KINDS = new Set(['date', 'datetime']);

/** Why `op` does not fit the field at `p`, or undefined when it does. */
function opMisfit(p: string, entry: SchemaPath, op: Operation): string | undefined {
  const { byPath } = getSchemaIndex();
  if (p === SUBJECTS) return 'subjects are included or left out by subject rules (then.exclude), not by field operations';
  if (p === SUBJECT_ID) return 'subject ids are never shared: they are always replaced by opaque packet refs; do not list subjects[].id';
  if (p === 'schema' && op.op !== 'keep') return 'schema is always copied; only keep may be written here';
  if (p === ASSOCIATE_SUBJECT && op.op !== 'keep' && op.op !== 'strip') {
    return 'an associate points at another subject by ref: it can only be kept (mapped to the ref) or stripped';
  }
  const name = describeOp(op);
  const scalarItems = entry.type === 'array-of-scalars';
  const scalar = entry.type === 'string' || entry.type === 'number' || entry.type === 'integer' || entry.type === 'boolean';
  const itemType = scalarItems ? schemaItemType(p) : entry.type;
  switch (op.op) {
    case 'strip':
    case 'replace':
      return undefined;
    case 'keep':
      return scalar || scalarItems
        ? undefined
        : `keep only applies to leaves (scalars or arrays of scalars); ${p} is ${article(entry.type)}: list the fields under it that may be shared, so that fields added to the schema later are not`;
    case 'pseudonymise':
      return scalar || scalarItems ? undefined : `pseudonymise applies to scalar values; ${p} is ${article(entry.type)}`;
    case 'mask':
      return (scalar || scalarItems) && itemType === 'string' ? undefined : `mask applies to text values; ${p} is not text`;
    case 'count':
      return entry.type === 'array-of-objects' || scalarItems ? undefined : `count applies to arrays; ${p} is ${article(entry.type)}`;
    case 'filter':
      return entry.type === 'array-of-objects' ? undefined : `filter applies to arrays of objects; ${p} is ${article(entry.type)}`;
    case 'generalise': {
      if (op.to === 'town' || op.to === 'postcode') {
        if (entry.type !== 'array-of-objects') return `${name} applies to arrays of addresses; ${p} is ${article(entry.type)}`;
        if (!byPath.has(`${p}.${op.to}`)) return `${name} applies to arrays of addresses; the items of ${p} have no ${op.to}`;
        return undefined;
      }
      if (!scalar && !scalarItems) return `${name} applies to scalar values; ${p} is ${article(entry.type)}`;
      if (op.to === 'year' || op.to === 'month' || op.to === 'decade' || op.to === 'ageBand') {
        return entry.kind !== undefined && DATE_KINDS.has(entry.kind) ? undefined : `${name} applies to dates; ${p} is not a date`;
      }
      if (op.to === 'sector' || op.to === 'district' || op.to === 'area') {
        return entry.kind === 'postcode' ? undefined : `${name} applies to postcodes; ${p} is not a postcode`;
      }
      if (op.to === 'band') {
        return itemType === 'number' || itemType === 'integer' ? undefined : `${name} applies to numbers; ${p} is not a number`;
      }
      return `unknown generalisation ${name}`;
    }
    default:
      return `unknown operation ${JSON.stringify((op as { op: unknown }).op)}`;
  }
}

/** For an array of scalars, the JSON type of its items (read from the dossier schema). */
function schemaItemType(p: string): string | undefined {
  return itemTypes.get(p);
}

const itemTypes = new Map<string, string>();
let itemTypesReady = false;

function loadItemTypes(): void {
  if (itemTypesReady) return;
  const walk = (node: Record<string, unknown>, prefix: string): void => {
    const props = node.properties as Record<string, Record<string, unknown>> | undefined;
    if (!props) return;
    for (const [name, child] of Object.entries(props)) {
      const p = prefix === '' ? name : `${prefix}.${name}`;
      if (child.type === 'object') walk(child, p);
      else if (child.type === 'array') {
        const items = child.items as Record<string, unknown> | undefined;
        if (!items) continue;
        if (items.type === 'object') walk(items, `${p}[]`);
        else if (typeof items.type === 'string') itemTypes.set(`${p}[]`, items.type);
      }
    }
  };
  walk(dossierSchema as Record<string, unknown>, '');
  itemTypesReady = true;
}

function article(type: string): string {
  switch (type) {
    case 'object':
      return 'an object';
    case 'array-of-objects':
      return 'an array of objects';
    case 'array-of-scalars':
      return 'an array of scalars';
    case 'integer':
      return 'an integer';
    default:
      return `a ${type}`;
  }
}

// ---- conditions --------------------------------------------------------------------------------

function valueFits(type: string, enumValues: ReadonlyArray<string | number> | undefined, value: unknown, nullable: boolean): string | undefined {
  if (value === null) return nullable ? undefined : 'null never matches this fact';
  if ((type === 'string' && typeof value !== 'string') || ((type === 'number' || type === 'integer') && typeof value !== 'number') || (type === 'boolean' && typeof value !== 'boolean')) {
    return `${JSON.stringify(value)} is not a ${type === 'integer' ? 'number' : type}, so it never matches`;
  }
  if (enumValues !== undefined && !enumValues.includes(value as string | number)) {
    return `${JSON.stringify(value)} is not one of the values this fact can take (${enumValues.map((v) => JSON.stringify(v)).join(', ')})`;
  }
  return undefined;
}

/** Check one comparison against a fact of a known shape; returns problems as messages. */
function checkComparison(
  c: { fact: string; operator: string; value: unknown },
  shape: { type: string; list: boolean; nullable: boolean; enumValues?: ReadonlyArray<string | number> },
): string[] {
  const out: string[] = [];
  const { operator, value } = c;
  if (NUMERIC_OPERATORS.has(operator)) {
    if (shape.list || (shape.type !== 'number' && shape.type !== 'integer')) out.push(`${operator} needs a number fact; ${c.fact} is not one`);
    else if (typeof value !== 'number') out.push(`${operator} needs a number value`);
    return out;
  }
  if (LIST_FACT_OPERATORS.has(operator)) {
    if (!shape.list) out.push(`${operator} needs a list fact; ${c.fact} is not a list (use equal/in)`);
    else {
      const m = valueFits(shape.type, shape.enumValues, value, false);
      if (m) out.push(m);
    }
    return out;
  }
  if (shape.list) {
    out.push(`${c.fact} is a list: use contains/doesNotContain`);
    return out;
  }
  if (LIST_VALUE_OPERATORS.has(operator)) {
    if (!Array.isArray(value) || value.length === 0) out.push(`${operator} needs a non-empty list value`);
    else for (const v of value) {
      const m = valueFits(shape.type, shape.enumValues, v, false);
      if (m) out.push(m);
    }
    return out;
  }
  // equal / notEqual
  if (Array.isArray(value)) out.push(`${operator} compares with one value; use in/notIn for a list`);
  else {
    const m = valueFits(shape.type, shape.enumValues, value, shape.nullable);
    if (m) out.push(m);
  }
  return out;
}

function factShape(t: FactType, enumValues?: ReadonlyArray<string | number>) {
  switch (t) {
    case 'string':
      return { type: 'string', list: false, nullable: false, enumValues };
    case 'string?':
      return { type: 'string', list: false, nullable: true, enumValues };
    case 'number':
      return { type: 'number', list: false, nullable: false };
    case 'number?':
      return { type: 'number', list: false, nullable: true };
    case 'boolean':
      return { type: 'boolean', list: false, nullable: false };
    case 'string[]':
      return { type: 'string', list: true, nullable: false, enumValues };
  }
}

/** A rule's conditions: facts must be known for its scope, operators and values must fit them. */
function checkRuleConditions(cond: Condition, scope: 'dossier' | 'subject'): Array<{ message: string }> {
  const known: Record<string, FactType> = scope === 'dossier' ? DOSSIER_FACT_TYPES : SUBJECT_FACT_TYPES;
  const { byPath } = getSchemaIndex();
  const out: Array<{ message: string }> = [];
  for (const c of conditionLeaves(cond)) {
    const t = Object.hasOwn(known, c.fact) ? known[c.fact] : undefined;
    if (t === undefined) {
      const hint = scope === 'dossier' && Object.hasOwn(SUBJECT_FACT_TYPES, c.fact) ? ` (${c.fact} is a subject fact: use when: subject)` : '';
      out.push({ message: `unknown fact ${JSON.stringify(c.fact)}${hint}; known facts: ${Object.keys(known).join(', ')}` });
      continue;
    }
    const enumPath = FACT_ENUM_PATHS[c.fact];
    const enumValues = enumPath !== undefined ? byPath.get(enumPath)?.enum : undefined;
    for (const m of checkComparison(c, factShape(t, enumValues))) out.push({ message: `${c.fact} ${c.operator}: ${m}` });
  }
  return out;
}

/** An item filter on the array at `arrayPath`: facts are the item's own fields by dotted name. */
function checkItemCondition(cond: Condition, arrayPath: string): string[] {
  const { byPath } = getSchemaIndex();
  const out: string[] = [];
  for (const c of conditionLeaves(cond)) {
    const direct = byPath.get(`${arrayPath}.${c.fact}`);
    const list = direct === undefined ? byPath.get(`${arrayPath}.${c.fact}[]`) : undefined;
    const entry = direct ?? list;
    if (entry === undefined) {
      out.push(`unknown fact ${JSON.stringify(c.fact)}: the items of ${arrayPath} have no such field`);
      continue;
    }
    if (entry.type === 'object' || entry.type === 'array-of-objects') {
      out.push(`${c.fact} is ${article(entry.type)}; compare one of its fields`);
      continue;
    }
    const type = entry.type === 'array-of-scalars' ? (schemaItemType(entry.path) ?? 'string') : entry.type;
    const shape = { type, list: entry.type === 'array-of-scalars', nullable: false, enumValues: entry.enum };
    for (const m of checkComparison(c, shape)) out.push(`${c.fact} ${c.operator}: ${m}`);
  }
  return out;
}

// ---- operations --------------------------------------------------------------------------------

function normaliseOp(raw: unknown): Operation {
  if (typeof raw === 'string') return { op: raw } as Operation;
  return structuredClone(raw) as Operation;
}

interface OpContext {
  file: string;
  where: (p: string) => string;
  problems: Problems;
  neverShare: Set<string>;
  /** base fields (grants) or a rule's set (restrictions). */
  kind: 'fields' | 'set';
  scope?: 'dossier' | 'subject';
}

/** Canonicalise and check a map of path → operation; returns the normalised map in schema order. */
function checkOperations(raw: Record<string, unknown>, ctx: OpContext): Record<string, Operation> {
  const { byPath, order } = getSchemaIndex();
  const entries: Array<[string, Operation]> = [];
  const seen = new Map<string, string>();
  for (const [written, rawOp] of Object.entries(raw)) {
    const where = ctx.where(written);
    const p = canonicalPath(written);
    if (p === undefined) {
      ctx.problems.add(ctx.file, where, `no such field in the dossier schema`);
      continue;
    }
    const prior = seen.get(p);
    if (prior !== undefined) {
      ctx.problems.add(ctx.file, where, `names the same field as ${JSON.stringify(prior)}`);
      continue;
    }
    seen.set(p, written);
    const op = normaliseOp(rawOp);
    const entry = byPath.get(p) as SchemaPath;
    const misfit = opMisfit(p, entry, op);
    if (misfit) {
      ctx.problems.add(ctx.file, where, misfit);
      continue;
    }
    if (ctx.kind === 'set' && ctx.scope === 'subject' && !isSubjectPath(p)) {
      ctx.problems.add(ctx.file, where, 'a subject rule can only set subjects[] fields (use a dossier rule for the rest)');
      continue;
    }
    const banned = op.op === 'strip' ? undefined : [...ctx.neverShare].find((n) => n === p || isAncestor(n, p));
    if (banned !== undefined) {
      const what = banned === p ? 'is on' : `is under ${banned}, which is on`;
      ctx.problems.add(ctx.file, where, `${what} the gateway's neverShare list: it can only be stripped, never ${describeOp(op)}`);
      continue;
    }
    if (isAddressOp(op) && ctx.neverShare.has(`${p}.${op.to}`)) {
      ctx.problems.add(ctx.file, where, `would share ${p}.${op.to}, which is on the gateway's neverShare list`);
      continue;
    }
    const where2 = 'where' in op ? op.where : undefined;
    if (where2 !== undefined) {
      for (const m of checkItemCondition(where2, p)) ctx.problems.add(ctx.file, `${where}.where`, m);
    }
    entries.push([p, op]);
  }
  if (ctx.kind === 'fields') {
    // Nothing may be listed under a path whose operation hides it: the author would believe it shared.
    for (const [p, op] of entries) {
      if (!isTerminalOp(op) && !isAddressOp(op)) continue;
      for (const [q] of entries) {
        if (!isAncestor(p, q)) continue;
        if (isAddressOp(op) && q === `${p}.${op.to}`) continue;
        ctx.problems.add(ctx.file, ctx.where(seen.get(q) ?? q), `is under ${p}, which is ${describeOp(op)}: it would never be shared as listed`);
      }
    }
  }
  for (const [container, companions] of Object.entries(TRAVELS_WITH)) {
    const companionSet = new Set(companions);
    if (ctx.kind === 'set') {
      for (const [p, op] of entries) {
        if (companionSet.has(p) && op.op !== 'keep') {
          ctx.problems.add(ctx.file, ctx.where(seen.get(p) ?? p), `must travel with every shared item of ${container}: strip the whole item instead`);
        }
      }
      continue;
    }
    const shares = entries.some(([p, op]) => isAncestor(container, p) && !companionSet.has(p) && op.op !== 'strip');
    if (!shares) continue;
    for (const c of companions) {
      const op = entries.find(([p]) => p === c)?.[1];
      if (op?.op !== 'keep') {
        ctx.problems.add(ctx.file, ctx.where(c), `must be kept: it travels with every shared item of ${container}`);
      }
    }
  }
  entries.sort((a, b) => (order.get(a[0]) ?? 1e9) - (order.get(b[0]) ?? 1e9));
  return Object.fromEntries(entries);
}

// ---- files of each kind ------------------------------------------------------------------------

function checkGateway(rel: string, doc: Record<string, unknown>, problems: Problems): GatewayRules {
  const { byPath } = getSchemaIndex();
  const neverShare: string[] = [];
  (doc.neverShare as string[]).forEach((written, i) => {
    const p = canonicalPath(written);
    if (p === undefined) problems.add(rel, loc('neverShare', i), `${JSON.stringify(written)}: no such field in the dossier schema`);
    else neverShare.push(p);
  });
  const alwaysFilter: Record<string, Condition> = {};
  for (const [written, cond] of Object.entries(doc.alwaysFilter as Record<string, Condition>)) {
    const where = loc('alwaysFilter', written);
    const p = canonicalPath(written);
    if (p === undefined) {
      problems.add(rel, where, 'no such field in the dossier schema');
      continue;
    }
    if (byPath.get(p)?.type !== 'array-of-objects') {
      problems.add(rel, where, 'filters apply to arrays of objects');
      continue;
    }
    const ms = checkItemCondition(cond, p);
    for (const m of ms) problems.add(rel, where, m);
    if (ms.length === 0) alwaysFilter[p] = structuredClone(cond);
  }
  return { neverShare, alwaysFilter };
}

function checkAgreementDates(rel: string, agreement: PartnerPolicy['agreement'], problems: Problems): void {
  const from = startOfDayUtc(agreement.inForceFrom);
  const review = startOfDayUtc(agreement.reviewBy);
  if (from === undefined) problems.add(rel, 'agreement.inForceFrom', 'is not a real date');
  if (review === undefined) problems.add(rel, 'agreement.reviewBy', 'is not a real date');
  if (from !== undefined && review !== undefined && review < from) problems.add(rel, 'agreement.reviewBy', 'is before inForceFrom');
}

function checkRules(rel: string, rawRules: unknown[], neverShare: Set<string>, problems: Problems): Rule[] {
  const rules: Rule[] = [];
  const names = new Set<string>();
  rawRules.forEach((raw, i) => {
    const r = raw as { name: string; description?: string; when: 'dossier' | 'subject'; conditions: Rule['conditions']; then: { exclude?: boolean; set?: Record<string, unknown> } };
    const at = (...more: Array<string | number>) => loc('rules', i, ...more);
    if (names.has(r.name)) problems.add(rel, at('name'), `duplicate rule name ${JSON.stringify(r.name)}`);
    names.add(r.name);
    for (const { message } of checkRuleConditions(r.conditions, r.when)) problems.add(rel, at('conditions'), message);
    if (r.then.exclude !== undefined && r.when === 'dossier') {
      problems.add(rel, at('then', 'exclude'), 'only subject rules can exclude (a dossier rule applies to the whole packet: use the agreement to refuse it)');
    }
    if (r.then.exclude === false && r.then.set === undefined) problems.add(rel, at('then'), 'the rule does nothing');
    const then: Rule['then'] = {};
    if (r.then.exclude === true) then.exclude = true;
    if (r.then.set !== undefined) {
      then.set = checkOperations(r.then.set, {
        file: rel,
        where: (p) => at('then', 'set', p),
        problems,
        neverShare,
        kind: 'set',
        scope: r.when,
      });
    }
    rules.push({ name: r.name, when: r.when, conditions: structuredClone(r.conditions), then });
  });
  return rules;
}

// ---- the whole set -----------------------------------------------------------------------------

export async function loadPolicySet(dir: string, now: Date = new Date()): Promise<PolicySet> {
  const { set, problems } = await collectPolicySet(dir, now);
  if (problems.length > 0) {
    const n = problems.length;
    throw new GatewayError('policy_invalid', `${n} problem${n === 1 ? '' : 's'} in the policy set`, problems);
  }
  return set;
}

/**
 * Everything that loads, and every problem: for the linter, which checks what it can of a set that
 * does not load. NEVER serve the set of a result with problems (loadPolicySet refuses it).
 */
export async function collectPolicySet(dir: string, now: Date = new Date()): Promise<{ set: PolicySet; problems: ErrorDetail[] }> {
  const v = await getValidators();
  loadItemTypes();
  const root = path.resolve(dir);
  const problems = new Problems();
  const files: Loaded[] = [];

  let realRoot: string;
  try {
    realRoot = await realpath(root);
  } catch {
    throw new GatewayError('policy_invalid', '1 problem in the policy set', [{ path: dir, message: 'the policy directory does not exist' }]);
  }

  // gateway.yaml
  let gateway: GatewayRules = { neverShare: [], alwaysFilter: {} };
  const gwText = await readText(root, 'gateway.yaml', files, problems);
  if (gwText !== undefined) {
    const doc = parseYaml('gateway.yaml', gwText, problems);
    if (doc !== undefined) {
      if (!v.gateway(doc)) schemaProblems('gateway.yaml', v.gateway.errors, problems);
      else gateway = checkGateway('gateway.yaml', doc as Record<string, unknown>, problems);
    }
  }
  const neverShare = new Set(gateway.neverShare);

  // partners/
  const partners = new Map<string, PartnerPolicy>();
  const partnerFiles = await listYaml(root, 'partners');
  if (partnerFiles === undefined) problems.add('partners/', '', 'the partners directory is missing');
  const ids = new Set<string>();
  for (const name of partnerFiles ?? []) {
    const rel = `partners/${name}`;
    const id = fileId(name);
    if (ids.has(id)) problems.add(rel, '', `a second file for partner ${id}`);
    ids.add(id);
    const text = await readText(root, rel, files, problems);
    if (text === undefined) continue;
    const doc = parseYaml(rel, text, problems);
    if (doc === undefined) continue;
    if (!v.partner(doc)) {
      schemaProblems(rel, v.partner.errors, problems);
      continue;
    }
    const d = doc as {
      partner: { id: string; name: string; kind: string; key: { file: string; fingerprint: string }; checks: string[]; competentAuthority?: boolean };
      agreement: PartnerPolicy['agreement'];
      fields: Record<string, unknown>;
      rules?: unknown[];
    };
    if (d.partner.id !== id) problems.add(rel, 'partner.id', `must equal the file name (${JSON.stringify(id)})`);
    checkAgreementDates(rel, d.agreement, problems);
    const fields = checkOperations(d.fields, { file: rel, where: (p) => loc('fields', p), problems, neverShare, kind: 'fields' });
    const rules = checkRules(rel, d.rules ?? [], neverShare, problems);
    const key: KeyRef = { file: d.partner.key.file, fingerprint: d.partner.key.fingerprint };
    const armored = await readKey(root, realRoot, rel, 'partner.key.file', key.file, files, problems);
    if (armored !== undefined) key.armored = armored;
    partners.set(d.partner.id, {
      file: rel,
      partner: { id: d.partner.id, name: d.partner.name, kind: d.partner.kind, key, checks: [...d.partner.checks], competentAuthority: d.partner.competentAuthority === true },
      agreement: structuredClone(d.agreement),
      fields,
      rules,
    });
  }

  // sources/
  const sources = new Map<string, SourceConfig>();
  const sourceFiles = await listYaml(root, 'sources');
  if (sourceFiles === undefined) problems.add('sources/', '', 'the sources directory is missing');
  const sourceIds = new Set<string>();
  for (const name of sourceFiles ?? []) {
    const rel = `sources/${name}`;
    const id = fileId(name);
    if (sourceIds.has(id)) problems.add(rel, '', `a second file for source ${id}`);
    sourceIds.add(id);
    const text = await readText(root, rel, files, problems);
    if (text === undefined) continue;
    const doc = parseYaml(rel, text, problems);
    if (doc === undefined) continue;
    if (!v.source(doc)) {
      schemaProblems(rel, v.source.errors, problems);
      continue;
    }
    const d = doc as { source: { id: string; name: string; key: { file: string; fingerprint: string }; webhook?: string } };
    if (d.source.id !== id) problems.add(rel, 'source.id', `must equal the file name (${JSON.stringify(id)})`);
    const key: KeyRef = { file: d.source.key.file, fingerprint: d.source.key.fingerprint };
    const armored = await readKey(root, realRoot, rel, 'source.key.file', key.file, files, problems);
    if (armored !== undefined) key.armored = armored;
    const source: SourceConfig['source'] = { id: d.source.id, name: d.source.name, key };
    if (d.source.webhook !== undefined) source.webhook = d.source.webhook;
    sources.set(d.source.id, { file: rel, source });
  }

  // peers/ (optional): validated like partners (a peer is redacted for like any recipient)
  const peers = new Map<string, PeerFile>();
  const peerPolicies = new Map<string, PeerPolicy>();
  for (const name of (await listYaml(root, 'peers')) ?? []) {
    const rel = `peers/${name}`;
    const text = await readText(root, rel, files, problems);
    if (text === undefined) continue;
    const doc = parseYaml(rel, text, problems);
    if (doc === undefined) continue;
    peers.set(fileId(name), { file: rel, data: doc });
    if (!v.peer(doc)) {
      schemaProblems(rel, v.peer.errors, problems);
      continue;
    }
    const d = doc as {
      peer: Omit<PeerPolicy['peer'], 'key' | 'tls' | 'competentAuthority'> & { key: { file: string; fingerprint: string }; tls?: { ca?: string; clientCertFingerprint?: string } };
      agreement: PeerPolicy['agreement'];
      fields: Record<string, unknown>;
      rules?: unknown[];
    };
    if (d.peer.id !== fileId(name)) problems.add(rel, 'peer.id', `must equal the file name (${JSON.stringify(fileId(name))})`);
    if (ids.has(d.peer.id)) problems.add(rel, 'peer.id', `${JSON.stringify(d.peer.id)} is already a partner id`);
    checkAgreementDates(rel, d.agreement, problems);
    const fields = checkOperations(d.fields, { file: rel, where: (p) => loc('fields', p), problems, neverShare, kind: 'fields' });
    const rules = checkRules(rel, d.rules ?? [], neverShare, problems);
    const key: KeyRef = { file: d.peer.key.file, fingerprint: d.peer.key.fingerprint };
    const armored = await readKey(root, realRoot, rel, 'peer.key.file', key.file, files, problems);
    if (armored !== undefined) key.armored = armored;
    let tls: PeerPolicy['peer']['tls'];
    if (d.peer.tls) {
      if (d.peer.tls.ca !== undefined && !d.peer.url.startsWith('https://')) problems.add(rel, 'peer.url', 'must be https:// when peer.tls.ca is set');
      tls = {};
      const fp = d.peer.tls.clientCertFingerprint?.replace(/:/g, '').toUpperCase();
      if (fp) tls.clientCertFingerprint = fp.match(/../g)!.join(':');
      if (d.peer.tls.ca !== undefined) {
        tls.caFile = d.peer.tls.ca;
        const ca = await readKey(root, realRoot, rel, 'peer.tls.ca', d.peer.tls.ca, files, problems);
        if (ca === undefined || !/-----BEGIN CERTIFICATE-----/.test(ca)) problems.add(rel, 'peer.tls.ca', 'must be a PEM certificate file in the policy directory');
        else tls.ca = ca;
      }
    }
    peerPolicies.set(d.peer.id, {
      file: rel,
      peer: { id: d.peer.id, name: d.peer.name, force: d.peer.force, url: d.peer.url.replace(/\/+$/, ''), key, ...(tls ? { tls } : {}), competentAuthority: true },
      agreement: structuredClone(d.agreement),
      fields,
      rules,
    });
  }

  const set: PolicySet = {
    dir: root,
    revision: revisionOf(files),
    loadedAt: now.toISOString(),
    gateway,
    partners: new Map([...partners].sort((a, b) => (a[0] < b[0] ? -1 : 1))),
    sources: new Map([...sources].sort((a, b) => (a[0] < b[0] ? -1 : 1))),
    peers,
    peerPolicies,
  };
  return { set, problems: problems.list };
}

/** sha256 over every loaded file (sorted by relative path, then content), first 16 hex characters. */
export function revisionOf(files: ReadonlyArray<{ rel: string; content: string }>): string {
  const h = createHash('sha256');
  const sorted = [...files].sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  const seen = new Set<string>();
  for (const f of sorted) {
    if (seen.has(f.rel)) continue;
    seen.add(f.rel);
    h.update(`${f.rel}\u0000${Buffer.byteLength(f.content, 'utf8')}\u0000`);
    h.update(f.content, 'utf8');
  }
  return h.digest('hex').slice(0, 16);
}

// ---- policy tests ------------------------------------------------------------------------------

/** Where `example:<name>` dossiers of policy tests live. */
export const EXAMPLE_DOSSIER_DIR = new URL('../../test/fixtures/', import.meta.url);

/**
 * Read `<dir>/tests/*.yaml` (see testing.ts for the format) with their dossiers. A missing tests
 * directory is no tests. Every problem is collected into one `policy_invalid` error.
 */
export async function loadPolicyTests(dir: string): Promise<PolicyTest[]> {
  const v = await getValidators();
  const root = path.resolve(dir);
  const problems = new Problems();
  const tests: PolicyTest[] = [];
  const scratch: Loaded[] = [];
  for (const name of (await listYaml(root, 'tests')) ?? []) {
    const rel = `tests/${name}`;
    const text = await readText(root, rel, scratch, problems);
    if (text === undefined) continue;
    const doc = parseYaml(rel, text, problems);
    if (doc === undefined) continue;
    const docs = Array.isArray(doc) ? doc : [doc];
    for (const [i, one] of docs.entries()) {
      const file = docs.length > 1 ? `${rel}[${i}]` : rel;
      if (!v.test(one)) {
        schemaProblems(file, v.test.errors, problems);
        continue;
      }
      const t = one as Omit<PolicyTest, 'file' | 'dossier' | 'dossierRef'> & { dossier: string };
      let dossierUrl: URL | string;
      if (t.dossier.startsWith('example:')) {
        dossierUrl = new URL(`${t.dossier.slice('example:'.length)}.json`, EXAMPLE_DOSSIER_DIR);
      } else {
        const abs = path.resolve(root, t.dossier);
        const r = path.relative(root, abs);
        if (r.startsWith('..') || path.isAbsolute(r)) {
          problems.add(file, 'dossier', 'must be inside the policy directory');
          continue;
        }
        dossierUrl = abs;
      }
      let dossier: Dossier;
      try {
        dossier = JSON.parse(await readFile(dossierUrl, 'utf8')) as Dossier;
      } catch (err) {
        problems.add(file, 'dossier', `cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        continue;
      }
      try {
        // A test on a dossier the gateway would refuse at the door proves nothing.
        dossier = validateDossier(dossier);
      } catch (err) {
        if (!(err instanceof GatewayError)) throw err;
        for (const d of err.details ?? [{ message: err.message }]) problems.add(file, 'dossier', `${t.dossier}${d.path ? d.path : ''}: ${d.message}`);
        continue;
      }
      const test: PolicyTest = { file, name: t.name, dossierRef: t.dossier, dossier, partner: t.partner, expect: t.expect };
      if (t.description !== undefined) test.description = t.description;
      if (t.now !== undefined) test.now = t.now;
      tests.push(test);
    }
  }
  if (problems.list.length > 0) {
    const n = problems.list.length;
    throw new GatewayError('policy_invalid', `${n} problem${n === 1 ? '' : 's'} in the policy tests`, problems.list);
  }
  return tests;
}
