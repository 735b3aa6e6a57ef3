/**
 * GET /v1/openapi.json: served without a token on a real gateway (while every other /v1 route still
 * wants one), the same document the linter checks; and a route that answers outside the description
 * is caught by the response check the test gateways run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import { pino } from 'pino';
import { GatewayError } from '../../gateway/errors/index.js';
import { createApp, type HttpDeps } from '../../gateway/http/app.js';
import type { ObservedResponse } from '../../gateway/http/observe.js';
import { bundleOpenApi } from '../../gateway/http/openapi.js';
import { ClientRegistry, loadClientsFile } from '../../gateway/config/clients.js';
import { api, ROOT, startTestGateway, TOKENS, type TestGateway } from '../helpers/gateway.js';
import { ResponseValidator } from '../helpers/openapi.js';
import path from 'node:path';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startTestGateway();
});

afterAll(async () => {
  await gw?.stop();
});

describe('GET /v1/openapi.json', () => {
  it('is served without a token, as OpenAPI 3.1 JSON', async () => {
    const res = await api(gw.url, 'GET', '/v1/openapi.json');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.json.openapi).toMatch(/^3\.1\./);
    expect(res.json).toEqual(JSON.parse(JSON.stringify(bundleOpenApi())));
    expect(Object.keys(res.json.paths)).toContain('/v1/dossiers');
  });

  it('is served whatever token comes with it, even one the gateway does not know', async () => {
    const res = await api(gw.url, 'GET', '/v1/openapi.json', 'not-a-known-token');
    expect(res.status).toBe(200);
    expect(res.json.openapi).toMatch(/^3\.1\./);
  });

  it('answers 405 to another method', async () => {
    const res = await api(gw.url, 'POST', '/v1/openapi.json', undefined, {});
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET');
  });

  it('leaves every other /v1 route authenticated', async () => {
    for (const [method, route] of [
      ['GET', '/v1/partners'],
      ['GET', '/v1/packets'],
      ['POST', '/v1/dossiers'],
      ['GET', '/v1/audit'],
      ['GET', '/v1/queues'],
      ['GET', '/v1/openapi.yaml'],
      ['GET', '/v1/openapi.json/x'],
    ] as const) {
      const res = await api(gw.url, method, route);
      expect(res.status, `${method} ${route}`).toBe(401);
      expect(res.json.error.code).toBe('unauthenticated');
    }
    const partners = await api(gw.url, 'GET', '/v1/partners', TOKENS['council-housing']);
    expect(partners.status).toBe(200);
  });
});

describe('a response that breaks the description', () => {
  /** A real app whose dossier status answers `status` (a stand-in for a route changed without its description). */
  async function appAnswering(status: (id: string) => unknown) {
    const seen: string[] = [];
    const validator = new ResponseValidator();
    const clients = new ClientRegistry(await loadClientsFile(path.join(ROOT, 'policies/clients.sample.yaml')));
    const deps: HttpDeps = {
      logger: pino({ level: 'silent' }),
      bodyLimitBytes: 1024 * 1024,
      clients: () => clients,
      audit: { append: async () => undefined } as never,
      intake: { status: async (_client: unknown, id: string) => status(id) } as never,
      packets: {} as never,
      policies: () => ({ partners: new Map() }) as never,
      gatewayPublicKey: '',
      readiness: async () => ({}),
      trustProxyHops: 0,
      observe: (r: ObservedResponse) => seen.push(...validator.check(r)),
    };
    return { app: createApp(deps), seen };
  }
  const token = `Bearer ${TOKENS['west-midlands-rocu']}`;
  const id = 'dos_0123456789abcdef0123456789abcdef';
  const valid = { id, state: 'processed', receivedAt: '2026-01-01T00:00:00.000Z', policyRevision: 'r1', deliveries: [] };

  it('passes when the route answers what the description says', async () => {
    const { app, seen } = await appAnswering(() => valid);
    const res = await request(app).get(`/v1/dossiers/${id}`).set('authorization', token);
    expect(res.status).toBe(200);
    expect(seen).toEqual([]);
  });

  it('fails on a field the description does not have', async () => {
    const { app, seen } = await appAnswering(() => ({ ...valid, internalNote: 'x' }));
    await request(app).get(`/v1/dossiers/${id}`).set('authorization', token);
    expect(seen).toEqual([expect.stringMatching(/^GET \/v1\/dossiers\/\{id\} → 200: .*\(internalNote\)/)]);
  });

  it('fails on a value outside the description', async () => {
    const { app, seen } = await appAnswering(() => ({ ...valid, deliveries: [{ partner: 'dvla', state: 'lost', updatedAt: valid.receivedAt }] }));
    await request(app).get(`/v1/dossiers/${id}`).set('authorization', token);
    expect(seen).toEqual([expect.stringContaining('/deliveries/0/state must be equal to one of the allowed values ("lost")')]);
  });

  it('fails on a status the operation does not list', async () => {
    const { app, seen } = await appAnswering(() => {
      throw new GatewayError('packet_expired', 'gone');
    });
    const res = await request(app).get(`/v1/dossiers/${id}`).set('authorization', token);
    expect(res.status).toBe(410);
    expect(seen).toEqual([expect.stringContaining('GET /v1/dossiers/{id} → 410: status 410 is not described')]);
  });
});
