/**
 * The documented scale-out: two api and two worker processes (CORDON_ROLE) on one Redis, sharing one
 * state directory and key prefix. One stream of dossiers goes alternately to both APIs; every dossier
 * must reach every partner exactly once (one packet per (dossier, partner), none missing, none twice),
 * both workers must have taken part, and either API must answer for dossiers the other accepted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Mailbox, type PacketSummaryRecord } from '../../gateway/mailbox/mailbox.js';
import { RedisMailbox } from '../../gateway/store/mailbox.js';
import { Keys } from '../../gateway/store/redis.js';
import { api, deleteKeys, fixture, PARTNERS, REDIS_URL, ROOT, TOKENS, waitSettled } from '../helpers/gateway.js';
import { freePort } from '../../gateway/store/private-redis.js';
import { gatewayRecordAuth } from '../helpers/records.js';

const DOSSIERS = 30;
const IN_FLIGHT = 4;

interface Proc {
  name: string;
  role: 'api' | 'worker';
  child: ChildProcess;
  /** The last lines it logged, for failure messages. */
  log: string[];
  url?: string;
}

let stateDir: string;
let prefix: string;
let redis: Redis;
const procs: Proc[] = [];


function start(name: string, role: 'api' | 'worker', port: number): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', 'gateway/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      CORDON_ROLE: role,
      PORT: String(port),
      REDIS_URL,
      CORDON_STATE_DIR: stateDir,
      CORDON_REDIS_PREFIX: prefix,
      CORDON_POLICY_DIR: path.join(ROOT, 'policies'),
      CORDON_WORKER_CONCURRENCY: '2',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc: Proc = { name, role, child, log: [] };
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) {
      proc.log.push(line.slice(0, 500));
      if (proc.log.length > 40) proc.log.shift();
    }
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  procs.push(proc);
  return proc;
}

/** Resolves when the process has logged `msg` (pino JSON), rejects if it exits or the deadline passes. */
async function logged(proc: Proc, msg: string, deadline: number): Promise<Record<string, unknown>> {
  for (;;) {
    for (const line of proc.log) {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        if (entry.msg === msg) return entry;
      } catch {
        // not a log line
      }
    }
    if (proc.child.exitCode !== null) throw new Error(`${proc.name} exited (${proc.child.exitCode}) before "${msg}":\n${proc.log.join('\n')}`);
    if (Date.now() > deadline) throw new Error(`${proc.name} did not log "${msg}" in time:\n${proc.log.join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  stateDir = await mkdtemp(path.join(os.tmpdir(), 'cordon-scale-'));
  prefix = `cordon-test-${randomBytes(4).toString('hex')}`;
  redis = new Redis(REDIS_URL);
  // All four at once, as an orchestrator would start them: one gateway key must come out of it.
  const [p1, p2] = [await freePort(), await freePort()];
  const apis = [start('api-1', 'api', p1), start('api-2', 'api', p2)];
  const workers = [start('worker-1', 'worker', 0), start('worker-2', 'worker', 0)];
  const deadline = Date.now() + 90_000;
  for (const [i, a] of apis.entries()) {
    await logged(a, 'api listening', deadline);
    a.url = `http://127.0.0.1:${[p1, p2][i]}`;
  }
  for (const w of workers) await logged(w, 'worker started', deadline);
}, 120_000);

afterAll(async () => {
  for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGTERM');
  await Promise.all(
    procs.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.child.exitCode !== null) return resolve();
          const t = setTimeout(() => {
            p.child.kill('SIGKILL');
            resolve();
          }, 10_000);
          p.child.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
        }),
    ),
  );
  if (redis) {
    await deleteKeys(redis, prefix);
    await redis.quit();
  }
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
}, 60_000);

describe('two api and two worker processes on one Redis', () => {
  it('share one gateway key', async () => {
    const [a, b] = procs.filter((p) => p.role === 'api');
    const [ka, kb] = await Promise.all([api(a!.url!, 'GET', '/v1/keys/gateway'), api(b!.url!, 'GET', '/v1/keys/gateway')]);
    expect(ka.status).toBe(200);
    expect(ka.text).toContain('BEGIN PGP PUBLIC KEY BLOCK');
    expect(kb.text).toBe(ka.text);
  });

  it('deliver every dossier of one stream to every partner exactly once', async () => {
    const apis = procs.filter((p) => p.role === 'api');
    const base = fixture('dossier-full.json');
    const ids: string[] = new Array(DOSSIERS);
    let next = 0;
    // One stream, alternately to each API, a few requests in flight.
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < DOSSIERS) {
          const i = next++;
          const res = await api(apis[i % 2]!.url!, 'POST', '/v1/dossiers', TOKENS['west-midlands-rocu'], { ...base, reference: `SCALE-${prefix}-${i}` });
          expect(res.status, res.text).toBe(202);
          ids[i] = res.json.id as string;
        }
      }),
    );
    expect(new Set(ids).size).toBe(DOSSIERS);

    // Each dossier's status read from the API that did not accept it.
    for (const [i, id] of ids.entries()) {
      const status = await waitSettled(apis[(i + 1) % 2]!.url!, id, 90_000);
      expect(status.state, id).toBe('processed');
      expect(status.deliveries.map((d: { partner: string; state: string }) => `${d.partner}:${d.state}`)).toEqual(PARTNERS.map((p) => `${p}:delivered`));
    }

    // The mailboxes: exactly one packet per (dossier, partner), the one each delivery names.
    const keys = new Keys(prefix);
    const mailbox = new Mailbox(new RedisMailbox(redis, keys, gatewayRecordAuth(stateDir)));
    const packets: PacketSummaryRecord[] = (await Promise.all(PARTNERS.map((p) => mailbox.list(p, 10_000)))).flat();
    const ours = new Set(ids);
    const byPair = new Map<string, string[]>();
    for (const p of packets) {
      if (!ours.has(p.dossier)) continue;
      const k = `${p.dossier}|${p.partner}`;
      byPair.set(k, [...(byPair.get(k) ?? []), p.id]);
    }
    const duplicates = [...byPair].filter(([, v]) => v.length > 1);
    expect(duplicates).toEqual([]);
    expect(byPair.size).toBe(DOSSIERS * PARTNERS.length);
    for (const id of ids) {
      const deliveries = await redis.hgetall(keys.deliveries(id));
      for (const partner of PARTNERS) {
        const d = JSON.parse(deliveries[partner]!) as { packetId: string };
        expect(byPair.get(`${id}|${partner}`)).toEqual([d.packetId]);
      }
    }

    // Both workers took part: BullMQ records the worker's name (host:pid) on each job it ran.
    const ranBy = await Promise.all(ids.map((id) => redis.hget(`${prefix}:bull:dossiers:${id}`, 'pb')));
    const workerPids = procs.filter((p) => p.role === 'worker').map((p) => String(p.child.pid));
    const seen = new Set(ranBy.map((pb) => pb?.split(':').pop()));
    expect([...seen].sort()).toEqual([...workerPids].sort());
  }, 180_000);
});
