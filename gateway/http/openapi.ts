/**
 * The OpenAPI 3.1 description (schemas/openapi.yaml), served at `GET /v1/openapi.json` without a token.
 * The file refers to the request schemas beside it (`./dossier.schema.json`) rather than copying them;
 * what is served is one self-contained JSON document: each referenced schema file inlined once under
 * `components/schemas` (its `$id`/`$schema` dropped, its own `#/…` references rewritten to point at its
 * new place), so a client (or a linter) needs nothing else. Built once per process, when first asked for.
 */
import { readFileSync } from 'node:fs';
import type { Express } from 'express';
import { parse } from 'yaml';
import { notAllowed } from './body.js';

export const OPENAPI_ROUTE = '/v1/openapi.json';
const SCHEMAS_DIR = new URL('../../schemas/', import.meta.url);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type OpenApiDocument = { [key: string]: Json };

/** `audit-event.schema.json` → `AuditEvent`. */
function componentName(file: string): string {
  return file
    .replace(/\.schema\.json$/, '')
    .split(/[^A-Za-z0-9]+/)
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('');
}

function isObject(v: Json | undefined): v is { [key: string]: Json } {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A copy of `node` with every `$ref` string mapped through `rewrite`. */
function mapRefs(node: Json, rewrite: (ref: string) => string): Json {
  if (Array.isArray(node)) return node.map((n) => mapRefs(n, rewrite));
  if (!isObject(node)) return node;
  const out: { [key: string]: Json } = {};
  for (const [k, v] of Object.entries(node)) out[k] = k === '$ref' && typeof v === 'string' ? rewrite(v) : mapRefs(v, rewrite);
  return out;
}

/** Reads the description and inlines the schema files it refers to (`./x.schema.json[#/pointer]`). */
export function bundleOpenApi(source: string = readFileSync(new URL('openapi.yaml', SCHEMAS_DIR), 'utf8'), readSchema = (file: string) => readFileSync(new URL(file, SCHEMAS_DIR), 'utf8')): OpenApiDocument {
  const doc = parse(source) as OpenApiDocument;
  const components = isObject(doc.components) ? doc.components : (doc.components = {});
  const schemas = isObject(components.schemas) ? components.schemas : (components.schemas = {});
  const inlined = new Map<string, string>();
  const pending: string[] = [];
  const local = (ref: string): string => {
    const m = /^\.\/([a-z0-9-]+\.schema\.json)(#.*)?$/.exec(ref);
    if (!m) return ref;
    const file = m[1]!;
    let name = inlined.get(file);
    if (name === undefined) {
      name = componentName(file);
      // A component that is only a reference to the file becomes the file itself; any other is a clash.
      const existing = schemas[name];
      if (existing !== undefined && !(isObject(existing) && existing.$ref === `./${file}` && Object.keys(existing).length === 1)) {
        throw new Error(`schemas/openapi.yaml: components/schemas/${name} is taken, so ${file} cannot be inlined under that name`);
      }
      inlined.set(file, name);
      pending.push(file);
    }
    return `#/components/schemas/${name}${(m[2] ?? '#').slice(1)}`;
  };
  const rewritten = mapRefs(doc, local) as OpenApiDocument;
  const outSchemas = (rewritten.components as { schemas: { [key: string]: Json } }).schemas;
  while (pending.length) {
    const file = pending.shift()!;
    const name = inlined.get(file)!;
    const { $id: _id, $schema: _schema, ...schema } = JSON.parse(readSchema(file)) as { [key: string]: Json };
    // Inside the file, `#/…` meant the file's own root; other files are inlined in turn.
    outSchemas[name] = mapRefs(schema, (ref) => (ref.startsWith('#') ? `#/components/schemas/${name}${ref.slice(1)}` : local(ref)));
  }
  return deepFreeze(rewritten);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

let cached: OpenApiDocument | undefined;

/** The served document (read and bundled on first use, then shared). */
export function openApiDocument(): OpenApiDocument {
  cached ??= bundleOpenApi();
  return cached;
}

/**
 * Before the authenticated /v1 router: describing the API needs no credential. Built on the first
 * request, not at start-up: parsing the YAML takes a few hundred milliseconds that no process should
 * spend before it serves (the tests, the linter and CI parse the same file, so a broken one never ships).
 */
export function registerOpenApiRoute(app: Express): void {
  let body: string | undefined;
  app
    .route(OPENAPI_ROUTE)
    .get((_req, res) => {
      body ??= JSON.stringify(openApiDocument());
      res.type('application/json').send(body);
    })
    .all(notAllowed('GET'));
}
