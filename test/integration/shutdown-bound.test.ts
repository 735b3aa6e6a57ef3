/**
 * A signalled shutdown is bounded whatever state Redis and the log's reader are in: an api-role
 * gateway whose stdout pipe is full (its reader stopped reading), whose Redis is killed just after the
 * SIGTERM, still exits within CORDON_SHUTDOWN_TIMEOUT_MS and a margin. Before, the deadline's
 * process.exit ran pino's exit-time flushSync, which retries a full pipe for ever.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../gateway/store/private-redis.js';
import { ROOT, TOKENS } from '../helpers/gateway.js';

const children: ChildProcess[] = [];
let dir = '';
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (dir) await rm(dir, { recursive: true, force: true });
});

function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  return (async () => {
    for (;;) {
      const v = await fn().catch(() => undefined);
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
}

const tcpOpen = (port: number) =>
  new Promise<true | undefined>((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(undefined));
  });

describe('a signalled shutdown', () => {
  it('ends within its bound with a full log pipe and Redis killed underneath', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cordon-shutdown-'));
    const redisPort = await freePort();
    const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'], { stdio: 'ignore' });
    children.push(redis);
    await until('redis', () => tcpOpen(redisPort));
    const port = await freePort();
    const gw = spawn(process.execPath, ['--import', 'tsx', 'gateway/main.ts'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        CORDON_ROLE: 'api',
        PORT: String(port),
        REDIS_URL: `redis://127.0.0.1:${redisPort}`,
        CORDON_STATE_DIR: path.join(dir, 'state'),
        CORDON_SHUTDOWN_TIMEOUT_MS: '2000',
        LOG_LEVEL: 'debug',
      },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    children.push(gw);
    // Read until the API listens, then stop reading: the pipe fills and stays full.
    let out = '';
    const listening = new Promise<void>((resolve) => {
      const onData = (chunk: Buffer) => {
        out += chunk.toString('utf8');
        if (out.includes('api listening')) {
          gw.stdout!.off('data', onData);
          gw.stdout!.pause();
          resolve();
        }
      };
      gw.stdout!.on('data', onData);
    });
    await listening;
    const base = `http://127.0.0.1:${port}`;
    // Enough logged requests to fill a 64 KiB pipe several times over.
    for (let i = 0; i < 60; i++) {
      await Promise.all(Array.from({ length: 10 }, () => fetch(`${base}/v1/partners`, { headers: { authorization: `Bearer ${TOKENS['west-midlands-rocu']}` } }).then((r) => r.arrayBuffer()).catch(() => undefined)));
    }
    const exited = new Promise<number>((resolve) => gw.once('exit', () => resolve(Date.now())));
    const signalled = Date.now();
    gw.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    redis.kill('SIGKILL');
    const bound = new Promise<'hung'>((r) => setTimeout(() => r('hung'), 15_000).unref());
    const outcome = await Promise.race([exited, bound]);
    expect(outcome, 'the gateway did not exit within 2 s + a 13 s margin').not.toBe('hung');
    expect((outcome as number) - signalled).toBeLessThan(15_000);
  });
});
