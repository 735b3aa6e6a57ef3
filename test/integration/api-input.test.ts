/**
 * Every kind of bad input gets a specific JSON error with the right status, and changes nothing:
 * no dossier stored, nothing queued, nothing in any mailbox.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, dumpKeys, fixture, startTestGateway, TOKENS, type TestGateway } from '../helpers/gateway.js';

let gw: TestGateway;
const source = TOKENS['west-midlands-rocu']!;

beforeAll(async () => {
  gw = await startTestGateway({ role: 'api' });
});
afterAll(async () => {
  await gw?.stop();
});

/** Keys that only exist once something was accepted (the audit and policy keys are expected). */
async function storedWork(on: TestGateway = gw): Promise<string[]> {
  const keys = [...(await dumpKeys(on.redis, on.prefix)).keys()];
  // Audit records, rate-limit counters and the queue's metadata are expected; nothing else may exist.
  return keys.filter((k) => !k.includes(':audit:') && !k.includes(':rl:') && !k.endsWith(':bull:dossiers:meta'));
}

function expectError(res: { status: number; json: Record<string, any>; headers: Headers }, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/application\/json/);
  expect(res.json.error.code).toBe(code);
  expect(typeof res.json.error.message).toBe('string');
  expect(res.json.error.requestId).toBeTruthy();
  expect(JSON.stringify(res.json)).not.toMatch(/at .*\.(ts|js):\d+/); // no stack trace
}

describe('bad input to POST /v1/dossiers', () => {
  it('malformed JSON → 400 invalid_json', async () => {
    const res = await api(gw.url, 'POST', '/v1/dossiers', source, '{"schema": "cordon.dossier/v1",', { 'content-type': 'application/json' });
    expectError(res, 400, 'invalid_json');
    expect(res.text).not.toContain('cordon.dossier/v1'); // the raw body is never echoed
  });

  it('wrong content type → 415', async () => {
    const res = await api(gw.url, 'POST', '/v1/dossiers', source, JSON.stringify(fixture('dossier-minimal.json')), { 'content-type': 'text/plain' });
    expectError(res, 415, 'unsupported_media_type');
  });

  it('no content type → 415', async () => {
    const res = await fetch(gw.url + '/v1/dossiers', { method: 'POST', headers: { authorization: `Bearer ${source}` }, body: new Uint8Array([123, 125]) });
    expect(res.status).toBe(415);
    expect(((await res.json()) as any).error.code).toBe('unsupported_media_type');
  });

  it('oversize body → 413', async () => {
    const big = { ...fixture('dossier-minimal.json'), purpose: 'x'.repeat(2 * 1024 * 1024) };
    const res = await api(gw.url, 'POST', '/v1/dossiers', source, big);
    expectError(res, 413, 'payload_too_large');
  });

  it('schema violation → 400 with each offending path', async () => {
    const bad = fixture('dossier-full.json') as any;
    bad.subjects[0].dateOfBirth = '12/04/1987';
    bad.subjects[1].shoeSize = 11;
    delete bad.reference;
    const res = await api(gw.url, 'POST', '/v1/dossiers', source, bad);
    expectError(res, 400, 'schema_violation');
    const paths = (res.json.error.details as Array<{ path: string }>).map((d) => d.path);
    expect(paths).toEqual(expect.arrayContaining(['/subjects/0/dateOfBirth', '/subjects/1/shoeSize', '/reference']));
  });

  it('__proto__ and constructor keys → 400 with their paths', async () => {
    const text = JSON.stringify(fixture('dossier-minimal.json')).replace('"purpose"', '"__proto__":{"polluted":true},"purpose"');
    const res = await api(gw.url, 'POST', '/v1/dossiers', source, text, { 'content-type': 'application/json' });
    expectError(res, 400, 'schema_violation');
    expect(JSON.stringify(res.json.error.details)).toContain('__proto__');
    expect(({} as any).polluted).toBeUndefined();

    const ctor = fixture('dossier-minimal.json') as any;
    ctor.subjects[0].constructor = { prototype: {} };
    const res2 = await api(gw.url, 'POST', '/v1/dossiers', source, ctor);
    expectError(res2, 400, 'schema_violation');
    expect(JSON.stringify(res2.json.error.details)).toContain('/subjects/0/constructor');
  });

  it('SECRET classification → refused with a clear error', async () => {
    for (const classification of ['SECRET', 'TOP SECRET']) {
      const res = await api(gw.url, 'POST', '/v1/dossiers', source, { ...fixture('dossier-minimal.json'), classification });
      expectError(res, 422, 'classification_refused');
      expect(res.json.error.message).toMatch(/OFFICIAL/);
      expect(res.json.error.details[0].path).toBe('/classification');
    }
  });

  it('a dossier claiming another force → 403 with the path', async () => {
    const other = fixture('dossier-minimal.json') as any;
    other.originator.force = 'warwickshire';
    const res = await api(gw.url, 'POST', '/v1/dossiers', source, other);
    expectError(res, 403, 'forbidden');
    expect(res.json.error.details[0].path).toBe('/originator/force');
  });

  it('an invalid Idempotency-Key → 400', async () => {
    const res = await api(gw.url, 'POST', '/v1/dossiers', source, fixture('dossier-minimal.json'), { 'idempotency-key': 'no spaces allowed' });
    expectError(res, 400, 'idempotency_key_invalid');
  });

  it('missing or wrong token → 401; wrong role → 403', async () => {
    expectError(await api(gw.url, 'POST', '/v1/dossiers', undefined, fixture('dossier-minimal.json')), 401, 'unauthenticated');
    expectError(await api(gw.url, 'POST', '/v1/dossiers', 'not-a-real-token', fixture('dossier-minimal.json')), 401, 'unauthenticated');
    expectError(await api(gw.url, 'POST', '/v1/dossiers', TOKENS['dvla'], fixture('dossier-minimal.json')), 403, 'forbidden');
    expectError(await api(gw.url, 'POST', '/v1/dossiers', TOKENS['governance'], fixture('dossier-minimal.json')), 403, 'forbidden');
  });

  it('after all of the above nothing was stored or queued', async () => {
    expect(await storedWork()).toEqual([]);
  });
});

describe('routes', () => {
  it('unknown route → 404 JSON; wrong method → 405 with Allow', async () => {
    expectError(await api(gw.url, 'GET', '/nope'), 404, 'not_found');
    expectError(await api(gw.url, 'GET', '/v1/nope', source), 404, 'not_found');
    const res = await api(gw.url, 'DELETE', '/v1/dossiers', source);
    expectError(res, 405, 'method_not_allowed');
    expect(res.headers.get('allow')).toBe('POST');
  });

  it('unknown dossier, unknown packet → 404', async () => {
    expectError(await api(gw.url, 'GET', '/v1/dossiers/dos_doesnotexist', source), 404, 'not_found');
    expectError(await api(gw.url, 'GET', '/v1/packets/pkt_doesnotexist', TOKENS['dvla']), 404, 'not_found');
    expectError(await api(gw.url, 'GET', '/v1/packets/../../etc', TOKENS['dvla']), 404, 'not_found');
  });

  it('a malformed %-escape in a route parameter → 400 path_invalid naming the segment, logged without a stack trace', async () => {
    const lines: string[] = [];
    const logged = await startTestGateway({ role: 'api' }, pino({ level: 'info' }, { write: (line: string) => void lines.push(line) }));
    try {
      const before = await storedWork(logged);
      for (const [method, route, token] of [
        ['GET', '/v1/packets/%E0%A4%A', TOKENS['dvla']],
        ['GET', '/v1/dossiers/dos_%ZZ/hits', source],
        ['POST', '/v1/packets/%/ack', TOKENS['dvla']],
      ] as const) {
        const res = await api(logged.url, method, route, token);
        expectError(res, 400, 'path_invalid');
        expect(res.json.error.details).toEqual([{ path: 'path[3]', message: 'path segment 3 is not valid percent-encoding (UTF-8)' }]);
      }
      expect(lines.join('')).not.toMatch(/URIError|"stack"|request failed/);
      expect(await storedWork(logged)).toEqual(before);
    } finally {
      await logged.stop();
    }
  });

  it('the access log carries the path, never the query string (audit search terms are there)', async () => {
    const lines: string[] = [];
    const logged = await startTestGateway({ role: 'api' }, pino({ level: 'info' }, { write: (line: string) => void lines.push(line) }));
    try {
      const res = await api(logged.url, 'GET', '/v1/audit?reference=OP-SECRET-REF-42&subject=s-secret-subject', TOKENS['governance']);
      expect(res.status).toBe(200);
      await api(logged.url, 'GET', '/v1/nope?reference=OP-SECRET-REF-42', TOKENS['governance']);
      const access = lines.map((l) => JSON.parse(l) as { req?: { url?: string } }).filter((l) => l.req);
      expect(access.map((l) => l.req!.url)).toEqual(expect.arrayContaining(['/v1/audit', '/v1/nope']));
      expect(lines.join('\n')).not.toMatch(/OP-SECRET-REF-42|s-secret-subject/);
    } finally {
      await logged.stop();
    }
  });

  it('partners toolkit lists the seven sample partners with their agreements', async () => {
    const res = await api(gw.url, 'GET', '/v1/partners', TOKENS['dvla']);
    expect(res.status).toBe(200);
    const ids = (res.json.partners as Array<{ id: string }>).map((p) => p.id);
    expect(ids).toEqual(['childrens-services', 'council-housing', 'dvla', 'dwp-benefits', 'hmrc', 'immigration-enforcement', 'riverside-homes']);
    for (const p of res.json.partners) {
      expect(p.agreement.reference).toBeTruthy();
      expect(p.agreement.legalBasis).toBeTruthy();
      expect(p.checks.length).toBeGreaterThan(0);
    }
  });

  it('serves the gateway public key, health and readiness', async () => {
    const key = await api(gw.url, 'GET', '/v1/keys/gateway');
    expect(key.status).toBe(200);
    expect(key.text).toContain('BEGIN PGP PUBLIC KEY BLOCK');
    expect(key.text).not.toContain('PRIVATE');
    expect((await api(gw.url, 'GET', '/healthz')).status).toBe(200);
    const ready = await api(gw.url, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json.checks.redis).toEqual({ ready: true, detail: 'ok' });
  });

  it('responses carry security headers and no x-powered-by', async () => {
    const res = await api(gw.url, 'GET', '/healthz');
    expect(res.headers.get('x-powered-by')).toBeNull();
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  });
});
