/**
 * REDIS_URL=redis+sentinel://…: the gateway's connections (plain and BullMQ's) find the master through
 * a real Sentinel (a redis-server in sentinel mode, started here on free loopback ports).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, connectRedisForQueue, sentinelOptions, whenReady } from '../../gateway/store/redis.js';
import { api, startTestGateway } from '../helpers/gateway.js';
import { freePort } from '../../gateway/store/private-redis.js';


async function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.write('PING\r\n'));
    sock.once('data', (d) => {
      sock.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
    sock.once('error', () => resolve(false));
  });
}

describe('sentinelOptions', () => {
  it('reads the sentinels, the master name, credentials and db', () => {
    expect(sentinelOptions('redis+sentinel://:s%40cret@10.0.0.1:26379,10.0.0.2:26380,sentinel-3/cordon-master/2')).toEqual({
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: '10.0.0.2', port: 26380 },
        { host: 'sentinel-3', port: 26379 },
      ],
      name: 'cordon-master',
      password: 's@cret',
      db: 2,
    });
    expect(sentinelOptions('redis+sentinel://gw:pw@h:1/m')).toMatchObject({ username: 'gw', password: 'pw', name: 'm' });
  });

  it('leaves other URLs to ioredis and refuses malformed Sentinel URLs', () => {
    expect(sentinelOptions('redis://127.0.0.1:6379')).toBeUndefined();
    expect(sentinelOptions('rediss://u:p@redis.example:6380/1')).toBeUndefined();
    for (const bad of ['redis+sentinel://h:26379', 'redis+sentinel://h:notaport/m', 'redis+sentinel:///m', 'redis+sentinel://h:1/m/x']) {
      expect(() => sentinelOptions(bad), bad).toThrow(/Sentinel URL/);
    }
  });
});

describe('connecting through a Sentinel', () => {
  let dir: string;
  const children: ChildProcess[] = [];
  let sentinelPort: number;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cordon-sentinel-'));
    const masterPort = await freePort();
    sentinelPort = await freePort();
    const conf = path.join(dir, 'sentinel.conf');
    await writeFile(
      conf,
      [`port ${sentinelPort}`, 'bind 127.0.0.1', `dir ${dir}`, `sentinel monitor cordon-test 127.0.0.1 ${masterPort} 1`, 'sentinel down-after-milliseconds cordon-test 5000', ''].join('\n'),
    );
    const start = (args: string[]) => {
      const c = spawn('redis-server', args, { stdio: 'ignore' });
      children.push(c);
    };
    start(['--port', String(masterPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]);
    start([conf, '--sentinel']);
    const deadline = Date.now() + 10_000;
    while (!((await answers(masterPort)) && (await answers(sentinelPort)))) {
      if (Date.now() > deadline) throw new Error('redis-server or its sentinel did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
  });

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('finds the master for plain and queue connections', async () => {
    const url = `redis+sentinel://127.0.0.1:${sentinelPort}/cordon-test`;
    const redis = connectRedis(url);
    const queue = connectRedisForQueue(url);
    try {
      await whenReady(redis);
      await redis.set('cordon-sentinel-check', 'ok');
      expect(await queue.get('cordon-sentinel-check')).toBe('ok');
      expect((await redis.info('replication')).includes('role:master')).toBe(true);
    } finally {
      redis.disconnect();
      queue.disconnect();
    }
  });

  it('runs a gateway whose REDIS_URL names the Sentinel', async () => {
    const gw = await startTestGateway({ redisUrl: `redis+sentinel://127.0.0.1:${sentinelPort}/cordon-test` });
    try {
      const ready = await api(gw.url, 'GET', '/readyz');
      expect(ready.status, ready.text).toBe(200);
      expect(ready.json.checks.redis.ready).toBe(true);
    } finally {
      await gw.stop();
    }
  });
});
