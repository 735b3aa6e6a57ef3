/**
 * The private redis-server that `npm start` runs without REDIS_URL: it keeps its data under the state
 * directory, runs in its own process group (Ctrl-C reaches the gateway, which stops it after its
 * shutdown checkpoint), and one left running by a gateway killed outright is stopped before a new one
 * starts on the same data.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { startPrivateRedis } from '../../gateway/store/private-redis.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const hasRedis = !spawnSync('redis-server', ['--version']).error;

describe.skipIf(!hasRedis)('the private redis-server', () => {
  it('keeps data across a leftover server being replaced, and stops the leftover first', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cordon-private-redis-'));
    dirs.push(dir);
    const first = await startPrivateRedis(dir);
    const pid = Number((await readFile(path.join(dir, 'redis', 'redis.pid'), 'utf8')).trim());
    expect(Number(spawnSync('ps', ['-o', 'pgid=', '-p', String(pid)]).stdout.toString().trim())).toBe(pid); // its own process group
    const a = new Redis(first.url);
    await a.set('kept', 'yes');
    a.disconnect();
    // The gateway that started it "dies" without stopping it; a new start finds and stops it.
    const second = await startPrivateRedis(dir);
    try {
      expect(() => process.kill(pid, 0)).toThrow();
      const b = new Redis(second.url);
      expect(await b.get('kept')).toBe('yes'); // AOF always: the same data, one server on it
      b.disconnect();
    } finally {
      await second.stop();
      await first.stop();
    }
  });
});
