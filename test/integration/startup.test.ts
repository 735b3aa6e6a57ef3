/** Start-up refuses unsafe configurations, saying why, and never half-starts. */
import { spawnSync } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../gateway/config/env.js';
import { startGateway } from '../../gateway/main.js';
import { freePort } from '../../gateway/store/private-redis.js';
import { REDIS_URL, ROOT } from '../helpers/gateway.js';
import { copyPolicies, editYaml } from '../helpers/policies.js';

let stateDir: string;
beforeAll(async () => {
  stateDir = await mkdtemp(path.join(os.tmpdir(), 'cordon-startup-'));
});
afterAll(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

function config(overrides: Partial<Config> = {}): Config {
  return { ...loadConfig({}, ROOT), port: 0, redisUrl: REDIS_URL, stateDir, redisPrefix: 'cordon-startup-test', ...overrides };
}

describe('start-up', () => {
  it('an invalid policy set stops start-up with every violation listed', async () => {
    const policies = await copyPolicies();
    try {
      await editYaml(path.join(policies.dir, 'partners', 'dvla.yaml'), ['fields', 'subjects[].shoeSize'], 'keep');
      await editYaml(path.join(policies.dir, 'partners', 'hmrc.yaml'), ['agreement', 'retentionDays'], 'forever');
      const res = spawnSync(process.execPath, ['--import', 'tsx', 'gateway/main.ts'], {
        cwd: ROOT,
        env: { ...process.env, PORT: '0', REDIS_URL, CORDON_STATE_DIR: stateDir, CORDON_POLICY_DIR: policies.dir, LOG_LEVEL: 'silent' },
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(res.status).toBe(1);
      expect(res.stderr).toMatch(/dvla\.yaml.*shoeSize/);
      expect(res.stderr).toMatch(/hmrc\.yaml.*retentionDays/);
    } finally {
      await policies.cleanup();
    }
  });

  it('production mode refuses the sample credentials', async () => {
    await expect(startGateway(config({ production: true }), pino({ level: 'silent' }))).rejects.toMatchObject({ code: 'config_invalid', message: expect.stringMatching(/sample/) });
  });

  it('production mode refuses to run without REDIS_URL', async () => {
    await expect(startGateway(config({ production: true, redisUrl: undefined }), pino({ level: 'silent' }))).rejects.toMatchObject({ code: 'config_invalid', message: expect.stringMatching(/REDIS_URL/) });
  });

  it('a Redis that may evict: a warning in development, a refusal in production', async () => {
    const port = await freePort();
    const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'allkeys-lru'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 300));
      const url = `redis://127.0.0.1:${port}`;
      const clients = path.join(stateDir, 'clients.yaml');
      await writeFile(clients, 'clients: []\n');
      await expect(startGateway(config({ production: true, redisUrl: url, clientsFile: clients }), pino({ level: 'silent' }))).rejects.toMatchObject({
        code: 'config_invalid',
        message: expect.stringMatching(/noeviction/),
      });
      const warnings: string[] = [];
      const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push(line) });
      const gw = await startGateway(config({ redisUrl: url, role: 'worker' }), logger);
      await gw.close();
      expect(warnings.join('')).toMatch(/noeviction/);
    } finally {
      redis.kill('SIGKILL');
    }
  });

  it('without REDIS_URL it starts a private redis-server and stops it on close', async () => {
    // Its own prefix: the anchor of the shared Redis's trail under the default one would (rightly) refuse this other Redis.
    const gw = await startGateway(config({ redisUrl: undefined, role: 'api', redisPrefix: 'cordon-startup-private' }), pino({ level: 'silent' }));
    try {
      expect(gw.redisUrl).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
      const res = await fetch(`${gw.url}/readyz`);
      expect(res.status).toBe(200);
    } finally {
      await gw.close();
    }
    const port = Number(new URL(gw.redisUrl).port);
    const open = await new Promise<boolean>((resolve) => {
      const sock = net.connect(port, '127.0.0.1', () => {
        sock.destroy();
        resolve(true);
      });
      sock.once('error', () => resolve(false));
    });
    expect(open).toBe(false);
  });
});
