/**
 * The operators' queue dashboard on a running gateway (api role: no worker takes the jobs the test
 * queues): `GET /v1/queues` is for the governance role only and answers counts, an age, paused and
 * workers, never a job id, job data or failure reason; `/dashboard` is a static page that runs under
 * helmet's Content-Security-Policy. Real Redis, real BullMQ queues and workers, real HTTP.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Queue, Worker } from 'bullmq';
import express from 'express';
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorHandler } from '../../gateway/http/errors.js';
import { DASHBOARD_DIR, registerDashboardRoutes } from '../../gateway/http/routes-dashboard.js';
import { readOnlyQueue, readQueues } from '../../gateway/queue/dashboard.js';
import { REDIS_URL, ROOT, startTestGateway, TOKENS, type TestGateway } from '../helpers/gateway.js';

const QUEUES = ['dossiers', 'exchange', 'hit-notices'];
const STATES = ['active', 'completed', 'delayed', 'failed', 'paused', 'waiting'];

let gw: TestGateway;
let conn: Redis;
const opened: Array<{ close(): Promise<void> }> = [];

/** A handle on one of the gateway's queues, under the test gateway's own prefix. */
function queue(name: string): Queue {
  const q = new Queue(name, { connection: conn, prefix: `${gw.prefix}:bull` });
  opened.push(q);
  return q;
}

/** `null`: no Authorization header at all. */
const queues = (token: string | null = TOKENS.governance!) => {
  const req = request(gw.url).get('/v1/queues');
  return token === null ? req : req.set('Authorization', `Bearer ${token}`);
};

async function summary(name: string) {
  const res = await queues().expect(200);
  return res.body.queues.find((q: { name: string }) => q.name === name);
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  gw = await startTestGateway({ role: 'api' });
  conn = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
});
afterAll(async () => {
  for (const q of opened.reverse()) await q.close().catch(() => undefined);
  await conn?.quit();
  await gw?.stop();
});

describe('GET /v1/queues', () => {
  it('gives the governance role every queue the gateway uses, with counts only', async () => {
    const before = Date.now();
    const res = await queues().expect(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(Object.keys(res.body).sort()).toEqual(['at', 'queues']);
    expect(Date.parse(res.body.at)).toBeGreaterThanOrEqual(before - 1000);
    expect(res.body.queues.map((q: { name: string }) => q.name)).toEqual(QUEUES);
    for (const q of res.body.queues) {
      expect(Object.keys(q).sort()).toEqual(['counts', 'name', 'oldestWaitingSeconds', 'paused', 'workers']);
      expect(Object.keys(q.counts).sort()).toEqual(STATES);
      expect(Object.values(q.counts).every((n) => n === 0)).toBe(true);
      expect(q).toMatchObject({ oldestWaitingSeconds: null, paused: false, workers: 0 });
    }
  });

  it('leaves no trace in Redis for queues nobody has used yet (read-only handles)', async () => {
    await queues().expect(200);
    expect(await gw.redis.exists(`${gw.prefix}:bull:exchange:meta`, `${gw.prefix}:bull:hit-notices:meta`)).toBe(0);
  });

  it('follows jobs as they are added, delayed, paused and resumed; the age is the oldest waiting job', async () => {
    const q = queue('exchange');
    await q.add('dossier', { type: 'dossier', envelopeId: 'env-delayed' }, { jobId: 'env-delayed', delay: 60_000 });
    expect((await summary('exchange')).counts).toMatchObject({ delayed: 1, waiting: 0 });

    // Two waiting jobs: the age is the older one's (two minutes), not the newer one's.
    await q.add('dossier', { type: 'dossier', envelopeId: 'env-old' }, { jobId: 'env-old', timestamp: Date.now() - 120_000 });
    await q.add('dossier', { type: 'dossier', envelopeId: 'env-new' }, { jobId: 'env-new' });
    let s = await summary('exchange');
    expect(s.counts).toMatchObject({ delayed: 1, waiting: 2, paused: 0, active: 0, completed: 0, failed: 0 });
    expect(s.oldestWaitingSeconds).toBeGreaterThanOrEqual(119);
    expect(s.oldestWaitingSeconds).toBeLessThan(180);
    expect(s.paused).toBe(false);

    await q.pause();
    s = await summary('exchange');
    expect(s.paused).toBe(true);
    expect(s.counts).toMatchObject({ waiting: 0, paused: 2, delayed: 1 });
    expect(s.oldestWaitingSeconds).toBeGreaterThanOrEqual(119);

    await q.resume();
    s = await summary('exchange');
    expect(s.paused).toBe(false);
    expect(s.counts).toMatchObject({ waiting: 2, paused: 0, delayed: 1 });

    // The other queues are counted apart.
    expect((await summary('dossiers')).counts.waiting).toBe(0);
  });

  it('never shows a job id, job data or a failure reason, and counts connected workers', async () => {
    const canary = `CANARY-${randomUUID()}`;
    const dossierJob = `dos_canary${randomUUID().replace(/-/g, '')}`;
    const noticeJob = `${dossierJob}-3`;
    await queue('dossiers').add('fanout', { dossierId: dossierJob, note: canary }, { jobId: dossierJob });

    // A worker that fails every notice with the canary in the message: a failure reason on the job.
    const workerConn = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const worker = new Worker(
      'hit-notices',
      async () => {
        throw new Error(`webhook refused ${canary}`);
      },
      { connection: workerConn, prefix: `${gw.prefix}:bull`, name: 'dashboard-test' },
    );
    worker.on('error', () => undefined);
    try {
      const notices = queue('hit-notices');
      await notices.add('notice', { dossierId: canary }, { jobId: noticeJob, attempts: 1 });
      await until('the notice to fail', async () => (await notices.getJobCounts('failed')).failed === 1);
      expect((await notices.getJob(noticeJob))?.failedReason).toContain(canary);

      const res = await queues().expect(200);
      for (const secret of [canary, dossierJob, noticeJob, 'dos_canary', 'webhook refused', 'dashboard-test']) expect(res.text).not.toContain(secret);
      const hit = res.body.queues.find((q: { name: string }) => q.name === 'hit-notices');
      expect(hit.counts).toMatchObject({ failed: 1, waiting: 0, active: 0 });
      expect(hit.workers).toBe(1);
      const dossiers = res.body.queues.find((q: { name: string }) => q.name === 'dossiers');
      expect(dossiers.counts.waiting).toBe(1);
      expect(dossiers.oldestWaitingSeconds).toBeGreaterThanOrEqual(0);
      expect(dossiers.workers).toBe(0);
    } finally {
      await worker.close();
      await workerConn.quit();
    }
    await until('the worker to be gone', async () => (await summary('hit-notices')).workers === 0);
  });

  it('refuses other roles with 403 and a JSON error', async () => {
    for (const token of [TOKENS['west-midlands-rocu']!, TOKENS.dvla!]) {
      const res = await queues(token).expect(403);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body.error.code).toBe('forbidden');
      expect(res.text).not.toMatch(/waiting|delayed|hit-notices/);
    }
  });

  it('answers 401 without a valid token', async () => {
    const none = await queues(null).expect(401);
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(none.body.error.code).toBe('unauthenticated');
    const wrong = await queues('not-a-real-token').expect(401);
    expect(wrong.body.error.code).toBe('unauthenticated');
  });

  it('allows GET only', async () => {
    for (const method of ['post', 'put', 'delete'] as const) {
      const res = await request(gw.url)[method]('/v1/queues').set('Authorization', `Bearer ${TOKENS.governance}`).expect(405);
      expect(res.headers.allow).toBe('GET');
      expect(res.body.error.code).toBe('method_not_allowed');
    }
  });

  it('fails within its deadline when Redis does not answer: 503 store_unavailable', async () => {
    const dead = new Redis('redis://127.0.0.1:1', { maxRetriesPerRequest: null, enableOfflineQueue: true, retryStrategy: () => 1000 });
    dead.on('error', () => undefined);
    const q = readOnlyQueue(dead, gw.prefix, 'dossiers');
    q.on('error', () => undefined);
    try {
      const started = Date.now();
      await expect(readQueues([{ name: 'dossiers', queue: q }], 300)).rejects.toThrow(/Command timed out/);
      expect(Date.now() - started).toBeLessThan(3000);

      // Through the route and the app's error handler: 503, not a hung request or a 500.
      const app = express();
      app.use((req, _res, next) => {
        req.client = { id: 'ops', role: 'governance' };
        next();
      });
      const v1 = express.Router();
      registerDashboardRoutes(v1, { queues: () => readQueues([{ name: 'dossiers', queue: q }], 300) });
      app.use('/v1', v1);
      app.use(errorHandler);
      const res = await request(app).get('/v1/queues').expect(503);
      expect(res.body.error.code).toBe('store_unavailable');
      expect(res.headers['retry-after']).toBe('5');
    } finally {
      dead.disconnect();
      await q.close().catch(() => undefined);
    }
  });
});

describe('GET /dashboard', () => {
  it('serves a static page with the CSP header and no inline script, style or handler', async () => {
    const res = await request(gw.url).get('/dashboard').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.headers['cache-control']).toBe('no-store');
    const csp = String(res.headers['content-security-policy']);
    const scriptSrc = csp.split(';').map((d) => d.trim()).find((d) => d.startsWith('script-src '));
    expect(scriptSrc).toBe("script-src 'self'");
    expect(csp).toMatch(/script-src-attr 'none'/);
    expect(csp).toMatch(/default-src 'self'/);

    const html = res.text;
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attrs, body] of scripts) {
      expect(attrs).toMatch(/\bsrc="\/dashboard\/[a-z]+\.js"/);
      expect(body!.trim()).toBe('');
    }
    expect(html).not.toMatch(/\son[a-z]+\s*=/i); // no inline event handlers
    expect(html).not.toMatch(/<style\b|\sstyle\s*=/i);
    expect(html).not.toMatch(/javascript:/i);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//i); // nothing from another origin
    // The token field is never submitted as a form field (no name), so it cannot end up in a URL.
    expect(html).toMatch(/<input id="token"[^>]*type="password"/);
    expect(html).not.toMatch(/<input[^>]*name="token"/);

    // Everything the page links to is served.
    for (const [, ref] of html.matchAll(/(?:src|href)="(\/[^"]+)"/g)) await request(gw.url).get(ref!).expect(200);
    // With a trailing slash too.
    await request(gw.url).get('/dashboard/').expect(200).expect('content-type', /^text\/html/);
  });

  it('serves the script as JavaScript and the styles as CSS, uncached', async () => {
    const js = await request(gw.url).get('/dashboard/dashboard.js').expect(200);
    expect(js.headers['content-type']).toMatch(/^text\/javascript/);
    expect(js.headers['cache-control']).toBe('no-store');
    expect(js.headers['x-content-type-options']).toBe('nosniff');
    const css = await request(gw.url).get('/dashboard/dashboard.css').expect(200);
    expect(css.headers['content-type']).toMatch(/^text\/css/);
    expect(css.headers['cache-control']).toBe('no-store');
  });

  it('the script keeps the token in sessionStorage, sends it as a bearer header and renders with textContent', async () => {
    const js = (await request(gw.url).get('/dashboard/dashboard.js').expect(200)).text;
    expect(js).toContain('sessionStorage');
    expect(js).toMatch(/Authorization: `Bearer \$\{token\}`/);
    expect(js).toContain("fetch('/v1/queues'");
    expect(js).toContain('textContent');
    for (const banned of ['innerHTML', 'outerHTML', 'insertAdjacentHTML', 'document.write', 'localStorage', 'document.cookie', 'eval(', 'new Function', 'location.search', 'location.hash']) {
      expect(js, banned).not.toContain(banned);
    }
  });

  it('serves only the page files, and GET only', async () => {
    await request(gw.url).get('/dashboard/index.html').expect(404);
    await request(gw.url).get('/dashboard/../routes-dashboard.ts').expect(404);
    await request(gw.url).get('/dashboard/%2e%2e/routes-dashboard.ts').expect(404);
    const post = await request(gw.url).post('/dashboard').expect(405);
    expect(post.headers.allow).toBe('GET');
  });

  it('ships in the image: the page lives under gateway/, whose files the build copies to dist/, which the Dockerfile copies whole', async () => {
    expect(path.relative(ROOT, DASHBOARD_DIR)).toBe(path.join('gateway', 'http', 'dashboard'));
    // @ts-expect-error: plain JavaScript (it runs before anything is compiled), no declarations
    const { assets } = (await import('../../scripts/build.mjs')) as { assets: (dir: string) => Promise<string[]> };
    expect(await assets(path.join(ROOT, 'gateway'))).toEqual(expect.arrayContaining(['index.html', 'dashboard.js', 'dashboard.css'].map((f) => path.join('http', 'dashboard', f))));
    const dockerfile = await readFile(path.join(ROOT, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^COPY --from=build \/app\/dist \.\/dist$/m);
    const ignored = (await readFile(path.join(ROOT, '.dockerignore'), 'utf8')).split('\n').map((l) => l.trim());
    expect(ignored.some((l) => l && /^(\/?gateway|\*\*?\/dashboard|.*\.html|.*\.css|.*\.js)/.test(l))).toBe(false);
  });
});
