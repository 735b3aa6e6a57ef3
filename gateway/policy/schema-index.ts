/**
 * The dossier schema as policy paths (`subjects[].addresses[].postcode`): which paths exist, in which
 * order, of which type, and whether an operation fits the field at a path.
 */
import { schemaLeafPaths, type SchemaPath } from '../dossier/paths.js';
import { dossierSchema } from '../dossier/schemas.js';
import { ASSOCIATE_SUBJECT, SUBJECT_ID, SUBJECTS } from './paths.js';
import { describeOp } from './restrictiveness.js';
import type { Operation } from './types.js';

interface SchemaIndex {
  byPath: Map<string, SchemaPath>;
  order: Map<string, number>;
}

let schemaIndex: SchemaIndex | undefined;

export function getSchemaIndex(): SchemaIndex {
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
export function opMisfit(p: string, entry: SchemaPath, op: Operation): string | undefined {
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
export function schemaItemType(p: string): string | undefined {
  return itemTypes.get(p);
}

const itemTypes = new Map<string, string>();
let itemTypesReady = false;

export function loadItemTypes(): void {
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

export function article(type: string): string {
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
