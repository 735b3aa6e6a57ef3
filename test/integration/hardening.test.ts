/** Abuse of the API: rate limits per principal, brute-force guessing, compression bombs, proxies. */
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../gateway/audit/log.js';
import { api, fixture, startTestGateway, TOKENS, until, type TestGateway } from '../helpers/gateway.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway({ role: 'api', rateLimitPerMinute: 5 });
});
afterAll(async () => {
  await gw?.stop();
});

describe('rate limits', () => {
  it('a client over its budget gets 429 with Retry-After; other clients are unaffected', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await api(gw.url, 'GET', '/v1/packets', TOKENS['hmrc'])).status);
    expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    const res = await api(gw.url, 'GET', '/v1/packets', TOKENS['hmrc']);
    expect(res.status).toBe(429);
    expect(res.json.error.code).toBe('rate_limited');
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await api(gw.url, 'GET', '/v1/packets', TOKENS['dvla'])).status).toBe(200);
  });

  it('an address that keeps failing authentication has its guesses refused, but a valid token from it still passes', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 31; i++) statuses.push((await api(gw.url, 'GET', '/v1/packets', `guess-${i}`)).status);
    expect(statuses.slice(0, 30).every((s) => s === 401)).toBe(true); // 30 failures a minute are answered
    expect(statuses[30]).toBe(429);
    const guess = await api(gw.url, 'GET', '/v1/packets');
    expect(guess.status).toBe(429);
    expect(guess.headers.get('retry-after')).toBeTruthy();
    // The lock-out is for guesses only: behind a proxy this address is every client's.
    expect((await api(gw.url, 'GET', '/v1/partners', TOKENS['governance'])).status).toBe(200);
    expect((await api(gw.url, 'GET', '/v1/packets', TOKENS['dvla'])).status).toBe(200);
    // 32 failed attempts, one audit record for the address and window (the trail cannot be grown by guessing).
    const failures = await until('the failure record', async () => {
      const records = (await gw.redis.lrange(`${gw.prefix}:audit:log`, 0, -1)).map((r) => JSON.parse(r) as AuditRecord).filter((r) => r.action === 'auth.failed');
      return records.length ? records : undefined;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect((await gw.redis.lrange(`${gw.prefix}:audit:log`, 0, -1)).filter((r) => r.includes('"auth.failed"'))).toHaveLength(1);
    expect(failures[0]).toMatchObject({ kind: 'auth_failure', reason: 'unknown_token' });
  });
});

describe('bodies', () => {
  it('a gzip bomb is cut off at the body limit (413), not inflated whole; unknown encodings → 415', async () => {
    let g2: TestGateway | undefined;
    try {
      g2 = await startTestGateway({ role: 'api' });
      const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024, 0x20)); // 50 MiB of spaces → ~50 KB
      expect(bomb.length).toBeLessThan(100 * 1024);
      const res = await fetch(g2.url + '/v1/dossiers', {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKENS['west-midlands-rocu']}`, 'content-type': 'application/json', 'content-encoding': 'gzip' },
        body: bomb,
      });
      expect(res.status).toBe(413);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('payload_too_large');
      // A gzip-encoded valid dossier is fine.
      const ok = await fetch(g2.url + '/v1/dossiers', {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKENS['west-midlands-rocu']}`, 'content-type': 'application/json', 'content-encoding': 'gzip' },
        body: gzipSync(JSON.stringify(fixture('dossier-minimal.json'))),
      });
      expect(ok.status).toBe(202);
      const unknown = await api(g2.url, 'POST', '/v1/dossiers', TOKENS['west-midlands-rocu'], JSON.stringify(fixture('dossier-minimal.json')), {
        'content-type': 'application/json',
        'content-encoding': 'br-ish',
      });
      expect(unknown.status).toBe(415);
      expect(unknown.json.error.code).toBe('unsupported_media_type');
    } finally {
      await g2?.stop();
    }
  });

  it('X-Forwarded-For is ignored without configured proxy hops (no spoofing one address per request)', async () => {
    let g3: TestGateway | undefined;
    try {
      g3 = await startTestGateway({ role: 'api' });
      let last = 0;
      for (let i = 0; i < 31; i++) last = (await api(g3.url, 'GET', '/v1/packets', `guess-${i}`, undefined, { 'x-forwarded-for': `10.0.0.${i}` })).status;
      expect(last).toBe(429); // all counted against the real address
    } finally {
      await g3?.stop();
    }
  });
});

describe('slow clients', () => {
  it('a client that never finishes its headers is cut off at the deadline', async () => {
    const g = await startTestGateway({ role: 'api', headersTimeoutMs: 500, requestTimeoutMs: 1000 });
    try {
      const port = Number(new URL(g.url).port);
      const closed = await new Promise<{ ms: number; reply: string }>((resolve) => {
        const started = Date.now();
        let reply = '';
        const sock = connect(port, '127.0.0.1', () => sock.write('POST /v1/dossiers HTTP/1.1\r\nHost: x\r\nX-Slow: '));
        sock.on('data', (d) => (reply += d.toString()));
        sock.on('close', () => resolve({ ms: Date.now() - started, reply }));
        sock.on('error', () => undefined);
      });
      expect(closed.ms).toBeLessThan(10_000); // cut off, not held open for ever
      expect(closed.reply).toMatch(/^HTTP\/1\.1 408|^$/);
    } finally {
      await g.stop();
    }
  });
});
