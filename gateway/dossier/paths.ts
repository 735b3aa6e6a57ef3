/**
 * Walks the dossier schema and lists every path a policy can name, in the notation policies use:
 * dots between properties, `[]` after an array (`subjects[].addresses[].postcode`). Containers are
 * listed as well as leaves: objects (`subjects[].name`), arrays of objects (`subjects[].intelligence[]`)
 * and arrays of scalars (`subjects[].phones[]`, with the kind of its items).
 *
 * The schema is written inline (no $ref, no anyOf/oneOf on properties); the walker refuses anything
 * else so that a schema change it cannot follow fails loudly instead of hiding fields from the linter.
 */
import { dossierSchema, type JsonSchema } from './schemas.js';

type SchemaPathType =
  | 'string'
  | 'number'
  | 'integer'
  | 'boolean'
  | 'array-of-scalars'
  | 'array-of-objects'
  | 'object';

export interface SchemaPath {
  path: string;
  type: SchemaPathType;
  /** The `x-kind` annotation (semantic type: date, datetime, postcode, phone, subjectId, …); for arrays of scalars, that of the items. */
  kind?: string;
  /** The allowed values, when the schema enumerates them (for arrays of scalars, those of the items). */
  enum?: ReadonlyArray<string | number>;
}

const SCALAR_TYPES = new Set(['string', 'number', 'integer', 'boolean']);

/** Every path of the dossier schema, containers and leaves, in document order. */
export function schemaLeafPaths(): SchemaPath[] {
  return DOSSIER_PATHS.map((p) => ({ ...p }));
}

/** The entry for one exact path (`subjects[].addresses[]`, not `subjects[].addresses`), or undefined. */
export function findSchemaPath(path: string): SchemaPath | undefined {
  const found = DOSSIER_INDEX.get(path);
  return found === undefined ? undefined : { ...found };
}

/** Walk any schema written in the same inline style (exported for the hits schema and for tests). */
export function walkSchema(schema: JsonSchema): SchemaPath[] {
  if (schema.type !== 'object') throw new Error('walkSchema: the root schema must be an object schema');
  const out: SchemaPath[] = [];
  walkProperties(schema, '', out);
  return out;
}

function walkProperties(schema: JsonSchema, prefix: string, out: SchemaPath[]): void {
  const properties = schema.properties as Record<string, JsonSchema> | undefined;
  if (properties === undefined) return;
  for (const [name, child] of Object.entries(properties)) {
    walkNode(child, prefix === '' ? name : `${prefix}.${name}`, out);
  }
}

function walkNode(node: JsonSchema, path: string, out: SchemaPath[]): void {
  if (typeof node !== 'object' || node === null) throw new Error(`walkSchema: ${path} is not a schema object`);
  for (const unsupported of ['$ref', 'anyOf', 'oneOf', 'allOf', '$dynamicRef']) {
    if (unsupported in node) throw new Error(`walkSchema: ${path} uses ${unsupported}, which the walker does not follow`);
  }
  const type = node.type;
  if (type === 'object') {
    out.push({ path, type: 'object' });
    walkProperties(node, path, out);
    return;
  }
  if (type === 'array') {
    const items = node.items as JsonSchema | undefined;
    if (items === undefined || typeof items !== 'object') throw new Error(`walkSchema: ${path} has no items schema`);
    const itemPath = `${path}[]`;
    if (items.type === 'object') {
      out.push({ path: itemPath, type: 'array-of-objects' });
      walkProperties(items, itemPath, out);
      return;
    }
    if (typeof items.type === 'string' && SCALAR_TYPES.has(items.type)) {
      out.push(withAnnotations({ path: itemPath, type: 'array-of-scalars' }, items));
      return;
    }
    throw new Error(`walkSchema: ${path} has items of an unsupported type`);
  }
  if (typeof type === 'string' && SCALAR_TYPES.has(type)) {
    out.push(withAnnotations({ path, type: type as SchemaPathType }, node));
    return;
  }
  throw new Error(`walkSchema: ${path} has no single supported type`);
}

function withAnnotations(entry: SchemaPath, node: JsonSchema): SchemaPath {
  const kind = node['x-kind'];
  if (typeof kind === 'string') entry.kind = kind;
  const values = node.enum ?? (node.const !== undefined ? [node.const] : undefined);
  if (Array.isArray(values)) entry.enum = Object.freeze([...(values as Array<string | number>)]);
  return entry;
}

const DOSSIER_PATHS: readonly SchemaPath[] = Object.freeze(walkSchema(dossierSchema));
const DOSSIER_INDEX: ReadonlyMap<string, SchemaPath> = new Map(DOSSIER_PATHS.map((p) => [p.path, p]));
