/**
 * Real redis-server processes for fail-over tests: a master, its replicas and Sentinels on free
 * loopback ports, each started and stopped by its PID, with data directories in a temporary folder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../../gateway/store/private-redis.js';

/** True once a redis-server (or Sentinel) on `port` answers PING. */
export async function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.write('PING\r\n'));
    sock.setTimeout(500, () => {
      sock.destroy();
      resolve(false);
    });
    sock.once('data', (d) => {
      sock.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
    sock.once('error', () => resolve(false));
  });
}

/** Polls `check` until it is true; throws `what` after `ms`. */
export async function until(what: string, check: () => Promise<boolean> | boolean, ms = 15_000, every = 50): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await Promise.resolve(check()).catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

export interface RedisProc {
  name: string;
  port: number;
  child: ChildProcess;
}

export interface SentinelSet {
  master: RedisProc;
  replica: RedisProc;
  sentinels: RedisProc[];
  masterName: string;
  /** `redis+sentinel://…` naming all three Sentinels. */
  url: string;
  /** The port the Sentinels name as master now. */
  masterPort(): Promise<number>;
  /** Sends a signal to one process, by its PID. */
  signal(proc: RedisProc, sig: NodeJS.Signals): void;
  /** A plain connection to one server (the caller closes it). */
  connect(port: number): Redis;
  stop(): Promise<void>;
}

/**
 * A master, one replica and three Sentinels (quorum 2), ready: the replica streaming and every
 * Sentinel knowing the replica and the two other Sentinels.
 */
export async function startSentinelSet(downAfterMs = 1000): Promise<SentinelSet> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cordon-failover-'));
  const masterName = 'cordon-failover';
  const procs: RedisProc[] = [];
  const clients: Redis[] = [];
  const start = (name: string, port: number, args: string[]): RedisProc => {
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    const proc = { name, port, child };
    procs.push(proc);
    return proc;
  };
  const server = async (name: string, extra: string[]) => {
    const port = await freePort();
    const data = path.join(dir, name);
    await mkdir(data);
    return start(name, port, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', data, '--maxmemory-policy', 'noeviction', ...extra]);
  };
  const set: SentinelSet = {
    master: undefined as unknown as RedisProc,
    replica: undefined as unknown as RedisProc,
    sentinels: [],
    masterName,
    url: '',
    async masterPort() {
      const s = set.connect(set.sentinels[0]!.port);
      try {
        const [, port] = (await s.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName)) as [string, string];
        return Number(port);
      } finally {
        s.disconnect();
      }
    },
    signal(proc, sig) {
      if (proc.child.exitCode === null && proc.child.pid) process.kill(proc.child.pid, sig);
    },
    connect(port) {
      const c = new Redis({ port, host: '127.0.0.1', lazyConnect: false, maxRetriesPerRequest: 1, retryStrategy: () => null });
      c.on('error', () => undefined);
      clients.push(c);
      return c;
    },
    async stop() {
      for (const c of clients) c.disconnect();
      for (const p of procs) {
        if (p.child.exitCode === null && p.child.signalCode === null && p.child.pid) {
          process.kill(p.child.pid, 'SIGCONT');
          process.kill(p.child.pid, 'SIGKILL');
        }
      }
      await Promise.all(procs.map((p) => (p.child.exitCode === null && p.child.signalCode === null ? new Promise((r) => p.child.once('exit', r)) : undefined)));
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    set.master = await server('master', []);
    await until('the master', () => answers(set.master.port), 10_000);
    set.replica = await server('replica', ['--replicaof', '127.0.0.1', String(set.master.port)]);
    await until('the replica', () => answers(set.replica.port), 10_000);
    const m = set.connect(set.master.port);
    await until('the replica to stream', async () => /slave0:.*state=online/.test(await m.info('replication')), 15_000);
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const conf = path.join(dir, `sentinel-${i}.conf`);
      await writeFile(conf, [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${masterName} 127.0.0.1 ${set.master.port} 2`,
        `sentinel down-after-milliseconds ${masterName} ${downAfterMs}`,
        `sentinel failover-timeout ${masterName} 10000`,
        `sentinel parallel-syncs ${masterName} 1`,
        '',
      ].join('\n'));
      set.sentinels.push(start(`sentinel-${i}`, port, [conf, '--sentinel']));
    }
    for (const s of set.sentinels) {
      await until(`sentinel ${s.name}`, () => answers(s.port), 10_000);
      const c = set.connect(s.port);
      await until(`sentinel ${s.name} to know the replica and the other sentinels`, async () => {
        const fields = (await c.call('SENTINEL', 'MASTER', masterName)) as string[];
        const get = (k: string) => Number(fields[fields.indexOf(k) + 1]);
        return get('num-slaves') >= 1 && get('num-other-sentinels') >= 2;
      }, 20_000, 100);
    }
    set.url = `redis+sentinel://${set.sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${masterName}`;
    return set;
  } catch (err) {
    await set.stop();
    throw err;
  }
}
