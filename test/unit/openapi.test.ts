/**
 * The OpenAPI description against the code: every route the express app serves is described and every
 * described route is served; the error codes and their statuses are the registry's; the document is
 * self-contained; and the response check fails a response that breaks it.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Express } from 'express';
import { pino } from 'pino';
import { ERROR_CODES } from '../../gateway/errors/index.js';
import { createApp, type HttpDeps } from '../../gateway/http/app.js';
import { statusOf } from '../../gateway/http/errors.js';
import { bundleOpenApi, openApiDocument } from '../../gateway/http/openapi.js';
import { ResponseValidator } from '../helpers/openapi.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** Stands in for any service: every property and call gives it again (never a promise). */
const anything: any = new Proxy(function stub() {}, { get: (_t, key) => (key === 'then' ? undefined : anything), apply: () => anything });

/**
 * Every optional part present: the routes a fully configured api process serves. Nothing here is
 * called. A part HttpDeps gains later is present too (any key not listed answers `anything`), so its
 * routes are registered and must be described.
 */
function fullApp(): Express {
  const stub = {} as never;
  const deps: HttpDeps = {
    logger: pino({ level: 'silent' }),
    bodyLimitBytes: 1024,
    clients: stub,
    audit: stub,
    intake: stub,
    packets: stub,
    policies: stub,
    gatewayPublicKey: '',
    readiness: stub,
    metrics: stub,
    accountability: { audit: stub, query: stub, recall: stub },
    hits: { hits: stub, bundles: stub, matches: stub, answers: stub },
    preview: stub,
    exchange: stub,
    queues: stub,
    approvals: stub,
    trustProxyHops: 0,
    observe: undefined,
  };
  return createApp(new Proxy(deps, { get: (target, key) => (key in target ? target[key as keyof HttpDeps] : anything) }));
}

interface LayerLike {
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: LayerLike[] };
  rawPath?: string;
}

/** The app's routes as `GET /v1/dossiers/{id}`, mounted routers included. */
function servedRoutes(app: Express): string[] {
  const out: string[] = [];
  const walk = (stack: LayerLike[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const [method, on] of Object.entries(layer.route.methods)) {
          if (on && method !== '_all') out.push(`${method.toUpperCase()} ${prefix}${layer.route.path.replace(/:(\w+)/g, '{$1}')}`);
        }
      } else if (layer.handle?.stack) {
        walk(layer.handle.stack, prefix + (layer.rawPath && layer.rawPath !== '/' ? layer.rawPath : ''));
      }
    }
  };
  walk((app as unknown as { router: { stack: LayerLike[] } }).router.stack, '');
  return out.sort();
}

describe('the OpenAPI description', () => {
  const described = new ResponseValidator().described().sort();
  const served = servedRoutes(fullApp());

  it('finds the routes of the app (the walk itself works)', () => {
    expect(served).toContain('POST /v1/dossiers');
    expect(served).toContain('GET /v1/packets/{id}');
    expect(served).toContain('GET /healthz');
  });

  it('describes every route the gateway serves', () => {
    const missing = served.filter((r) => !described.includes(r));
    expect(missing.map((r) => `${r} is served but not described: add it under paths in schemas/openapi.yaml`)).toEqual([]);
  });

  it('describes no route the gateway does not serve', () => {
    const extra = described.filter((r) => !served.includes(r));
    expect(extra.map((r) => `${r} is described in schemas/openapi.yaml but no such route is served`)).toEqual([]);
  });

  it('enumerates exactly the registry error codes, each under its fixed status', () => {
    const schemas = (openApiDocument().components as Record<string, any>).schemas as Record<string, any>;
    expect(schemas.ErrorCode.enum).toEqual([...ERROR_CODES]);
    const byStatus = new Map<number, string[]>();
    for (const code of ERROR_CODES) byStatus.set(statusOf(code), [...(byStatus.get(statusOf(code)) ?? []), code]);
    for (const [status, codes] of byStatus) {
      // 405 is answered only for methods the description does not list, so it has no response of its own.
      if (status === 405) continue;
      const group = schemas[`Error${status}`];
      expect(group, `components/schemas/Error${status} is missing (codes ${codes.join(', ')})`).toBeDefined();
      expect([...group.properties.error.properties.code.enum].sort(), `components/schemas/Error${status}`).toEqual([...codes].sort());
    }
    const statuses = Object.keys(schemas).filter((k) => /^Error\d{3}$/.test(k)).map((k) => Number(k.slice(5)));
    expect(statuses.filter((s) => !byStatus.has(s))).toEqual([]);
  });

  it('is one document: the request schemas inlined, no reference leaving it', () => {
    const text = JSON.stringify(openApiDocument());
    const refs = [...text.matchAll(/"\$ref":"([^"]*)"/g)].map((m) => m[1]!);
    expect(refs.filter((r) => !r.startsWith('#/'))).toEqual([]);
    const schemas = (openApiDocument().components as Record<string, any>).schemas as Record<string, any>;
    for (const name of ['Dossier', 'Hits', 'Matches', 'AuditEvent', 'Envelope']) {
      expect(schemas[name], name).toBeDefined();
      expect(schemas[name].$id).toBeUndefined();
    }
    // Every reference resolves.
    for (const ref of refs) {
      const target = ref
        .slice(2)
        .split('/')
        .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
        .reduce<any>((o, k) => o?.[k], openApiDocument());
      expect(target, ref).toBeDefined();
    }
  });

  it('lints clean with Redocly (recommended-strict, offline), as CI runs it', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/lint-openapi.ts'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout + run.stderr).toMatch(/Your API description is valid/);
  }, 60_000);

  it('refuses to inline a schema file over a component of the same name', () => {
    const source = 'openapi: 3.1.0\ncomponents:\n  schemas:\n    Hits: { type: object }\n    X: { $ref: ./hits.schema.json }\n';
    expect(() => bundleOpenApi(source, () => '{}')).toThrow(/components\/schemas\/Hits is taken/);
  });
});

describe('the response check', () => {
  const validator = new ResponseValidator();
  const json = (body: unknown) => Buffer.from(JSON.stringify(body));
  const ok = { method: 'GET', path: '/healthz', status: 200, headers: { 'content-type': 'application/json; charset=utf-8' }, body: json({ status: 'ok' }) };

  it('passes a response the description allows', () => {
    expect(validator.check(ok)).toEqual([]);
  });

  it('fails an undocumented field, naming it', () => {
    expect(validator.check({ ...ok, body: json({ status: 'ok', uptime: 3 }) })).toEqual([expect.stringContaining('(uptime)')]);
  });

  it('fails an undocumented status', () => {
    expect(validator.check({ ...ok, status: 204 })).toEqual([expect.stringMatching(/GET \/healthz → 204: status 204 is not described/)]);
  });

  it('fails an undocumented content type', () => {
    expect(validator.check({ ...ok, headers: { 'content-type': 'text/html' } })).toEqual([expect.stringContaining('content type text/html is not described')]);
  });

  it('fails a success on a route the description does not have', () => {
    expect(validator.check({ ...ok, path: '/v1/secrets' })).toEqual([expect.stringContaining('GET /v1/secrets is not in the OpenAPI description')]);
  });

  it('lets an undescribed route or method answer an error, with a code of that status only', () => {
    const notFound = { error: { code: 'not_found', message: 'No such route', requestId: 'r1' } };
    expect(validator.check({ ...ok, path: '/v1/secrets', status: 404, body: json(notFound) })).toEqual([]);
    const notAllowed = { error: { code: 'method_not_allowed', message: 'Only GET', requestId: 'r1' } };
    expect(validator.check({ ...ok, method: 'DELETE', status: 405, body: json(notAllowed) })).toEqual([]);
    expect(validator.check({ ...ok, method: 'DELETE', status: 404, body: json(notAllowed) })).toEqual([expect.stringContaining('must be equal to one of the allowed values')]);
  });

  it('fails an error whose code does not belong to its status, and a 5xx with details', () => {
    const base = { method: 'GET', path: '/v1/dossiers/dos_00000000000000000000000000000000', headers: { 'content-type': 'application/json' } };
    expect(validator.check({ ...base, status: 404, body: json({ error: { code: 'forbidden', message: 'x', requestId: 'r' } }) })).toEqual([expect.stringContaining('"forbidden"')]);
    expect(validator.check({ ...base, status: 500, body: json({ error: { code: 'internal', message: 'Internal error', details: [{ message: 'stack' }], requestId: 'r' } }) })).toEqual([
      expect.stringContaining('/error/details'),
    ]);
  });

  it('checks a decrypted plaintext against its schema', () => {
    const header = { id: 'pkt_abc', recipient: 'dvla', issuedAt: '2026-01-01T00:00:00.000Z', expiresAt: '2026-02-01T00:00:00.000Z', classification: 'OFFICIAL', handling: { code: 'P' },
      policy: { id: 'dvla', revision: 'r1' }, agreement: { reference: 'ISA-1', legalBasis: 'x', purpose: 'y' } };
    expect(validator.checkSchema('PacketPlaintext', { packet: header, dossier: { subjects: [{ id: 'ref_1' }] } })).toBeUndefined();
    expect(validator.checkSchema('PacketPlaintext', { packet: { ...header, secret: 1 }, dossier: { subjects: [{ id: 'S1' }] } })).toMatch(/\(secret\).*\/dossier\/subjects\/0\/id/);
  });

  it('fails a response without a header the description requires', () => {
    const body = json({ error: { code: 'unauthenticated', message: 'A bearer token is required', requestId: 'r' } });
    const res = { method: 'GET', path: '/v1/packets', status: 401, headers: { 'content-type': 'application/json' }, body };
    expect(validator.check(res)).toEqual([expect.stringContaining('header WWW-Authenticate is required')]);
    expect(validator.check({ ...res, headers: { ...res.headers, 'www-authenticate': 'Bearer realm="cordon"' } })).toEqual([]);
  });
});
