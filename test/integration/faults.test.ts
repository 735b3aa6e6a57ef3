/**
 * Faults with real processes: a poisoned dossier fails visibly without blocking others, and a Redis
 * outage gives quick 503s, loses nothing accepted, and heals by itself when Redis returns.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Mailbox } from '../../gateway/mailbox/mailbox.js';
import { RedisMailbox } from '../../gateway/store/mailbox.js';
import { Keys } from '../../gateway/store/redis.js';
import { freePort } from '../../gateway/store/private-redis.js';
import { api, fixture, PARTNERS, REDIS_URL, ROOT, startTestGateway, TOKENS, waitSettled, type TestGateway } from '../helpers/gateway.js';
import { gatewayRecordAuth } from '../helpers/records.js';

const source = TOKENS['west-midlands-rocu']!;


function tcpOpen(port: number): Promise<true | undefined> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(undefined));
  });
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('a poisoned dossier', () => {
  const gateways: TestGateway[] = [];
  afterAll(async () => {
    for (const g of gateways.reverse()) await g.stop();
  });

  it('fails visibly at once and blocks nothing else', async () => {
    const api1 = await startTestGateway({ role: 'api' });
    gateways.push(api1);
    const poisoned = await api(api1.url, 'POST', '/v1/dossiers', source, fixture('dossier-full.json'));
    const healthy = await api(api1.url, 'POST', '/v1/dossiers', source, fixture('dossier-minimal.json'));
    // Corrupt the sealed content of the first one (as a disk fault or an intruder would).
    await api1.redis.hset(`${api1.prefix}:dossier:${poisoned.json.id}`, 'sealed', 'v1.AAAA.BBBB.CCCC');

    const worker = await startTestGateway({ role: 'worker', redisPrefix: api1.prefix, stateDir: api1.stateDir });
    gateways.push({ ...worker, stop: async () => worker.close() } as TestGateway);

    const ok = await waitSettled(api1.url, healthy.json.id);
    expect(ok.state).toBe('processed');
    const failed = await waitFor('the poisoned dossier to fail', async () => {
      const r = await api(api1.url, 'GET', `/v1/dossiers/${poisoned.json.id}`, source);
      return r.json.state === 'failed' ? r.json : undefined;
    });
    expect(failed.deliveries.every((d: { state: string }) => d.state === 'queued')).toBe(true);
    const job = await api1.redis.hgetall(`${api1.prefix}:bull:dossiers:${poisoned.json.id}`);
    expect(Number(job.atm)).toBe(1); // no retry storm on a failure no retry can mend
  });
});

describe('Redis stopped and restarted', () => {
  let redis: ChildProcess | undefined;
  let dir: string;
  let port: number;
  let gw: TestGateway | undefined;
  const startRedis = () => {
    redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--maxmemory-policy', 'noeviction'], { stdio: 'ignore' });
  };
  afterAll(async () => {
    await gw?.close().catch(() => undefined);
    redis?.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('answers 503 quickly while Redis is down, loses nothing accepted, and resumes by itself', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cordon-redis-'));
    port = await freePort();
    startRedis();
    const url = `redis://127.0.0.1:${port}`;
    await waitFor('redis', () => tcpOpen(port));
    gw = (await startTestGateway({ redisUrl: url })) as TestGateway;
    const first = await api(gw.url, 'POST', '/v1/dossiers', source, fixture('dossier-full.json'));
    expect(first.status).toBe(202);
    await waitSettled(gw.url, first.json.id);

    redis!.kill('SIGTERM');
    await new Promise((r) => redis!.once('exit', r));

    const started = Date.now();
    const down = await fetch(gw.url + '/v1/dossiers', {
      method: 'POST',
      headers: { authorization: `Bearer ${source}`, 'content-type': 'application/json' },
      body: JSON.stringify(fixture('dossier-minimal.json')),
      signal: AbortSignal.timeout(15_000),
    });
    expect(down.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(((await down.json()) as { error: { code: string } }).error.code).toBe('store_unavailable');
    expect(down.headers.get('retry-after')).toBeTruthy();
    expect((await fetch(gw.url + '/readyz')).status).toBe(503);

    startRedis();
    const second = await waitFor('the API to accept again', async () => {
      const r = await api(gw!.url, 'POST', '/v1/dossiers', source, fixture('dossier-minimal.json'));
      return r.status === 202 ? r : undefined;
    });
    // The worker resumed on its own and the dossier accepted before the outage is intact.
    const settled = await waitSettled(gw.url, second.json.id, 60_000);
    expect(settled.state).toBe('processed');
    const before = await api(gw.url, 'GET', `/v1/dossiers/${first.json.id}`, source);
    expect(before.json.deliveries.filter((d: { state: string }) => d.state !== 'queued')).toHaveLength(PARTNERS.length);
  });
});

describe('SIGTERM during work', () => {
  it('the process exits cleanly and every accepted dossier still reaches every partner once', async () => {
    const api1 = await startTestGateway({ role: 'api' });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 12; i++) ids.push((await api(api1.url, 'POST', '/v1/dossiers', source, fixture('dossier-full.json'))).json.id);
      const child = spawn(process.execPath, ['--import', 'tsx', 'gateway/main.ts'], {
        cwd: ROOT,
        env: { ...process.env, CORDON_ROLE: 'worker', REDIS_URL, CORDON_STATE_DIR: api1.stateDir, CORDON_REDIS_PREFIX: api1.prefix, LOG_LEVEL: 'silent' },
        stdio: 'ignore',
      });
      const keys = new Keys(api1.prefix);
      await waitFor('the first packets', async () => ((await api1.redis.zcard(keys.mailbox('dvla'))) > 0 ? true : undefined));
      child.kill('SIGTERM');
      const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      expect(code).toBe(0);
      // Whatever was left is picked up by the next worker; nothing is doubled.
      const worker = await startTestGateway({ role: 'worker', redisPrefix: api1.prefix, stateDir: api1.stateDir });
      try {
        for (const id of ids) {
          const status = await waitSettled(api1.url, id, 60_000);
          expect(status.deliveries.every((d: { state: string }) => d.state === 'delivered')).toBe(true);
        }
        const mailbox = new Mailbox(new RedisMailbox(api1.redis, keys, gatewayRecordAuth(api1.config.stateDir)));
        for (const p of PARTNERS) {
          const mine = (await mailbox.list(p, 10_000)).filter((x) => ids.includes(x.dossier));
          expect(mine, p).toHaveLength(ids.length);
        }
      } finally {
        await worker.close();
      }
    } finally {
      await api1.stop();
    }
  });
});
