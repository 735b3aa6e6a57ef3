/**
 * Every response a test gateway sends, checked against the OpenAPI description it serves
 * (schemas/openapi.yaml, bundled by gateway/http/openapi.ts): the route and method are described, the
 * status is one the operation lists, the content type one it lists for that status, required headers
 * are there and match, and the body matches the schema (unknown fields fail: the schemas are closed).
 * A route or method that is not described may only answer an error (404, 405, or what authentication
 * answers first), never a success. startTestGateway turns this on; test/helpers/setup.ts fails the test
 * that made a response break the description.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { openApiDocument, type OpenApiDocument } from '../../gateway/http/openapi.js';
import type { ObservedResponse } from '../../gateway/http/observe.js';
import { violations } from './violations.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
const DOC_ID = 'https://cordon.example/openapi.json';
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

type Obj = Record<string, any>;

interface Operation {
  template: string;
  regex: RegExp;
  methods: Map<string, { pointer: string; op: Obj }>;
}

function escapePointer(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** The media type without its parameters, lower-cased. */
function mediaType(value: unknown): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return typeof v === 'string' ? v.split(';')[0]!.trim().toLowerCase() : undefined;
}

export class ResponseValidator {
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false, verbose: true });
  private readonly routes: Operation[];
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(private readonly doc: OpenApiDocument = openApiDocument()) {
    addFormats(this.ajv);
    this.ajv.addSchema(doc as object, DOC_ID);
    const paths = doc.paths as Obj;
    // Literal paths before templated ones, so /v1/packets is never taken for /v1/{x}.
    this.routes = Object.keys(paths)
      .sort((a, b) => (a.includes('{') ? 1 : 0) - (b.includes('{') ? 1 : 0))
      .map((template) => ({
        template,
        regex: new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`, 'i'),
        methods: new Map(
          Object.entries(paths[template] as Obj)
            .filter(([m]) => METHODS.includes(m))
            .map(([m, op]) => [m, { pointer: `#/paths/${escapePointer(template)}/${m}`, op: op as Obj }]),
        ),
      }));
  }

  /**
   * Compiles every response schema now, so that no check compiles while a gateway is answering (a
   * compile holds the event loop for a while, and would shift the timing of what the test watches).
   */
  warm(): this {
    for (const route of this.routes) {
      for (const { op, pointer } of route.methods.values()) {
        for (const [status, r] of Object.entries((op.responses ?? {}) as Obj)) {
          const { node: response, pointer: responsePointer } = this.deref(r as Obj, `${pointer}/responses/${status}`);
          for (const [name, h] of Object.entries((response.headers ?? {}) as Obj)) {
            const { node: header, pointer: headerPointer } = this.deref(h as Obj, `${responsePointer}/headers/${escapePointer(name)}`);
            if (header.schema) this.validator(`${headerPointer}/schema`);
          }
          for (const type of Object.keys((response.content ?? {}) as Obj)) this.validator(`${responsePointer}/content/${escapePointer(type)}/schema`);
        }
      }
    }
    for (const name of Object.keys((this.doc.components as Obj).schemas as Obj)) if (/^Error(\d{3})?$/.test(name)) this.validator(`#/components/schemas/${name}`);
    return this;
  }

  /** The operation a request reached, if the description has one. */
  operation(method: string, path: string): { template: string; method: string } | undefined {
    const m = method.toLowerCase() === 'head' ? 'get' : method.toLowerCase();
    // As express routes: one trailing slash and the case of letters make no difference.
    const p = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
    const route = this.routes.find((r) => r.regex.test(p));
    return route?.methods.has(m) ? { template: route.template, method: m } : undefined;
  }

  /** The templated paths and methods described, as `GET /v1/dossiers/{id}`. */
  described(): string[] {
    return this.routes.flatMap((r) => [...r.methods.keys()].map((m) => `${m.toUpperCase()} ${r.template}`));
  }

  private validator(pointer: string): ValidateFunction {
    let v = this.compiled.get(pointer);
    if (!v) {
      v = this.ajv.compile({ $ref: `${DOC_ID}${pointer}` });
      this.compiled.set(pointer, v);
    }
    return v;
  }

  /** A `$ref` to a component (responses, headers) followed to its target, with the target's pointer. */
  private deref(node: Obj, pointer: string): { node: Obj; pointer: string } {
    let n = node;
    let p = pointer;
    while (typeof n.$ref === 'string') {
      p = n.$ref;
      n = p
        .slice(2)
        .split('/')
        .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
        .reduce((o: Obj, k) => o[k], this.doc as Obj);
    }
    return { node: n, pointer: p };
  }

  private schemaErrors(pointer: string, value: unknown): string | undefined {
    const v = this.validator(pointer);
    if (v(value)) return undefined;
    return (v.errors ?? [])
      .slice(0, 6)
      .map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}${e.keyword === 'additionalProperties' ? ` (${String((e.params as Obj).additionalProperty)})` : ''}${e.keyword === 'enum' ? ` (${JSON.stringify(e.data)})` : ''}`)
      .join('; ');
  }

  /** What is wrong with this response, or an empty list. */
  check(r: ObservedResponse): string[] {
    const isHead = r.method === 'HEAD';
    const found = this.operation(r.method, r.path);
    const type = mediaType(r.headers['content-type']);
    const text = r.body.toString('utf8');
    if (!found) {
      // Not described: only an error answer is acceptable (not found, method not allowed, or what
      // authentication or the store answered before routing got that far).
      if (r.status < 400) return [`${r.method} ${r.path} is not in the OpenAPI description, yet answered ${r.status}`];
      if (isHead) return [];
      if (type !== 'application/json') return [`${r.method} ${r.path} → ${r.status}: an error must be application/json, not ${type}`];
      const problem = this.errorProblem(r.status, text);
      return problem ? [`${r.method} ${r.path} → ${r.status}: ${problem}`] : [];
    }
    const where = `${r.method} ${found.template} → ${r.status}`;
    const route = this.routes.find((x) => x.template === found.template)!;
    const { op, pointer } = route.methods.get(found.method)!;
    const responses = (op.responses ?? {}) as Obj;
    const key = String(r.status) in responses ? String(r.status) : undefined;
    if (!key) return [`${where}: status ${r.status} is not described (described: ${Object.keys(responses).join(', ')})`];
    const { node: response, pointer: responsePointer } = this.deref(responses[key] as Obj, `${pointer}/responses/${key}`);
    const problems: string[] = [];

    for (const [name, h] of Object.entries((response.headers ?? {}) as Obj)) {
      const { node: header, pointer: headerPointer } = this.deref(h as Obj, `${responsePointer}/headers/${escapePointer(name)}`);
      const value = r.headers[name.toLowerCase()];
      if (value === undefined) {
        if (header.required) problems.push(`${where}: header ${name} is required`);
        continue;
      }
      if (header.schema) {
        const errors = this.schemaErrors(`${headerPointer}/schema`, String(value));
        if (errors) problems.push(`${where}: header ${name} ${JSON.stringify(String(value))}: ${errors}`);
      }
    }

    const content = (response.content ?? {}) as Obj;
    const types = Object.keys(content);
    if (types.length === 0) {
      if (text.length > 0 && !isHead) problems.push(`${where}: a body is sent, none is described`);
      return problems;
    }
    if (!type || !types.includes(type)) {
      problems.push(`${where}: content type ${type ?? '(none)'} is not described (described: ${types.join(', ')})`);
      return problems;
    }
    if (isHead) return problems;
    let body: unknown = text;
    if (type === 'application/json') {
      try {
        body = JSON.parse(text);
      } catch {
        problems.push(`${where}: the body is not JSON`);
        return problems;
      }
    }
    const errors = this.schemaErrors(`${responsePointer}/content/${escapePointer(type)}/schema`, body);
    if (errors) problems.push(`${where}: ${errors}`);
    return problems;
  }

  /** An error body must be the Error schema, with a code whose fixed status is this one. */
  private errorProblem(status: number, text: string): string | undefined {
    let body: Obj;
    try {
      body = JSON.parse(text) as Obj;
    } catch {
      return 'the error body is not JSON';
    }
    const errors = this.schemaErrors('#/components/schemas/Error', body);
    if (errors) return errors;
    if (status === 405) return body.error.code === 'method_not_allowed' ? undefined : `code ${body.error.code} with status 405`;
    const group = `#/components/schemas/Error${status}`;
    if (!((this.doc.components as Obj).schemas as Obj)[`Error${status}`]) return `no error code has status ${status}`;
    return this.schemaErrors(group, body);
  }

  /** The plaintext of a decrypted message checked against one of the description's schemas (`PacketPlaintext`, …). */
  checkSchema(name: string, value: unknown): string | undefined {
    return this.schemaErrors(`#/components/schemas/${name}`, value);
  }
}

let shared: ResponseValidator | undefined;

/** One validator per test file (compiling the description once, up front). */
export function responseValidator(): ResponseValidator {
  shared ??= new ResponseValidator().warm();
  return shared;
}

/** For startGateway's `observeResponses`: checks each response and records what breaks the description. */
export function recordViolations(r: ObservedResponse): void {
  try {
    for (const problem of responseValidator().check(r)) violations.push(problem);
  } catch (err) {
    // Never in the way of the response itself: a check that cannot run is reported like a violation.
    violations.push(`${r.method} ${r.path} → ${r.status}: the check failed (${(err as Error).message})`);
  }
}
