/**
 * The configuration is read once through schemas/config.schema.json (gateway/config/env.ts): defaults
 * from the schema, every Config field described there, unknown CORDON_* variables refused (with the
 * name meant, when it is close), every problem listed at once naming its variable, and a frozen result.
 */
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../gateway/config/env.js';
import { configSchema, nearestSetting } from '../../gateway/config/schema.js';

const cwd = os.tmpdir();
/** What production needs for signed policy revisions (the file is only read at start-up). */
const SIGNED = { CORDON_POLICY_SIGNERS: 'governance/signers.asc', CORDON_POLICY_QUORUM: '2' };

function refusal(env: Record<string, string>): { code?: string; message: string; details?: Array<{ path?: string; message: string }> } {
  try {
    loadConfig(env, cwd);
  } catch (err) {
    return err as { code?: string; message: string };
  }
  throw new Error('loadConfig did not refuse the configuration');
}

describe('configuration schema', () => {
  it('gives every setting its schema default, paths resolved against the working directory', () => {
    const config = loadConfig({}, cwd);
    for (const [name, setting] of Object.entries(configSchema.properties)) {
      if (setting.default === undefined) continue;
      const field = setting['x-field'] as keyof Config;
      expect(config[field], name).toEqual(setting['x-path'] ? path.resolve(cwd, String(setting.default)) : setting.default);
    }
    expect(config).toMatchObject({ port: 8080, role: 'all', production: false, redisPrefix: 'cordon', bodyLimitBytes: 1024 * 1024 });
    expect(config.clientsFile).toBe(path.join(cwd, 'policies', 'clients.sample.yaml'));
    expect(config.redisUrl).toBeUndefined();
    expect(config.packetTtlDays).toBeUndefined();
    expect(config.tls).toBeUndefined();
  });

  it('describes every Config field, and nothing the Config lacks', () => {
    const full = loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', CORDON_FORCE_ID: 'west-midlands', CORDON_PACKET_TTL_DAYS: '1', CORDON_AUDIT_ACCEPT_NEW_TRAIL: '7', CORDON_METRICS_PORT: '9100', CORDON_POLICY_SIGNERS: '/etc/cordon/policy-signers.asc' }, cwd);
    const described = new Set(Object.values(configSchema.properties).map((s) => s['x-field']));
    expect([...described].sort()).toEqual([...Object.keys(full), 'tls'].sort());
    for (const [name, s] of Object.entries(configSchema.properties)) {
      expect(s.description.length, name).toBeGreaterThan(20);
      expect(s.default !== undefined || s['x-default'] !== undefined, `${name} has a default or says what unset means`).toBe(true);
      expect(name === name.toUpperCase()).toBe(true);
    }
  });

  it('reads numbers and switches from strings; empty means unset', () => {
    const config = loadConfig({ PORT: '9090', CORDON_PACKET_TTL_DAYS: '0.5', NODE_ENV: 'production', CORDON_ROLE: 'worker', CORDON_WORKER_CONCURRENCY: '', CORDON_STATE_DIR: 'state', ...SIGNED }, cwd);
    expect(config).toMatchObject({ port: 9090, packetTtlDays: 0.5, production: true, role: 'worker', workerConcurrency: 4, stateDir: path.join(cwd, 'state'), policyQuorum: 2 });
  });

  it('/metrics on its own listener: CORDON_METRICS_PORT, on loopback unless CORDON_METRICS_HOST says; the host alone is refused', () => {
    expect(loadConfig({}, cwd).metricsPort).toBeUndefined();
    expect(loadConfig({ CORDON_METRICS_PORT: '9100' }, cwd)).toMatchObject({ metricsPort: 9100, metricsHost: '127.0.0.1' });
    expect(loadConfig({ CORDON_METRICS_PORT: '9100', CORDON_METRICS_HOST: '10.0.0.5' }, cwd)).toMatchObject({ metricsPort: 9100, metricsHost: '10.0.0.5' });
    const alone = refusal({ CORDON_METRICS_HOST: '10.0.0.5' });
    expect(alone.details).toEqual([expect.objectContaining({ path: 'CORDON_METRICS_PORT' })]);
    expect(refusal({ CORDON_METRICS_PORT: '70000' }).details).toEqual([expect.objectContaining({ path: 'CORDON_METRICS_PORT' })]);
  });

  it('ignores variables that are not Cordon settings', () => {
    expect(() => loadConfig({ PATH: '/usr/bin', HOME: '/root', NODE_OPTIONS: '--max-old-space-size=512', CORDONX: '1' }, cwd)).not.toThrow();
  });

  it('returns a frozen configuration that a spread still copies', () => {
    const config = loadConfig({}, cwd);
    expect(Object.isFrozen(config)).toBe(true);
    expect(() => {
      (config as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(config.port).toBe(8080);
    const copy: Config = { ...config, port: 0 };
    expect(copy.port).toBe(0);
  });
});

describe('configuration refused', () => {
  it('an unknown CORDON_* variable, suggesting the name meant when it is close', () => {
    expect(refusal({ CORDON_POLICYDIR: './policies' })).toMatchObject({
      code: 'config_invalid',
      message: expect.stringMatching(/^CORDON_POLICYDIR is not a Cordon setting \(did you mean CORDON_POLICY_DIR\?\)/),
      details: [{ path: 'CORDON_POLICYDIR' }],
    });
    expect(refusal({ CORDON_WORKER_CONCURENCY: '2' }).message).toContain('did you mean CORDON_WORKER_CONCURRENCY?');
    expect(refusal({ CORDON_PORT: '80' }).message).toContain('did you mean PORT?');
    expect(refusal({ CORDON_REDIS_URL: 'redis://x' }).message).toContain('did you mean REDIS_URL?');
    expect(refusal({ CORDON_SOMETHING_ELSE: '1' }).message).toMatch(/^CORDON_SOMETHING_ELSE is not a Cordon setting: /);
  });

  it('a bad value, naming its variable, what it accepts and the value given', () => {
    expect(refusal({ CORDON_WORKER_CONCURRENCY: '100' }).message).toBe('CORDON_WORKER_CONCURRENCY must be an integer from 1 to 64, not "100"');
    expect(refusal({ CORDON_WORKER_CONCURRENCY: '1.5' }).message).toMatch(/^CORDON_WORKER_CONCURRENCY must be an integer/);
    expect(refusal({ CORDON_ROLE: 'boss' }).message).toBe('CORDON_ROLE must be one of all, api, worker, not "boss"');
    expect(refusal({ PORT: 'eighty' }).message).toBe('PORT must be an integer from 0 to 65535, not "eighty"');
    expect(refusal({ LOG_LEVEL: 'loud' }).message).toMatch(/^LOG_LEVEL must be one of fatal, error, warn, info/);
    expect(refusal({ CORDON_FORCE_ID: 'West Midlands' }).message).toBe('CORDON_FORCE_ID must be a lower-case id like west-midlands, not "West Midlands"');
    expect(refusal({ CORDON_JOB_LOCK_MS: '10' }).message).toBe('CORDON_JOB_LOCK_MS must be an integer of at least 1000, not "10"');
    expect(refusal({ CORDON_REQUEST_TIMEOUT_MS: '5000', CORDON_HEADERS_TIMEOUT_MS: '6000' }).message).toBe('CORDON_REQUEST_TIMEOUT_MS must be at least CORDON_HEADERS_TIMEOUT_MS (6000)');
  });

  it('never echoes REDIS_URL, which may carry a password', () => {
    const err = refusal({ REDIS_URL: 'http://user:s3cret@redis:6379' });
    expect(err.message).toMatch(/^REDIS_URL must be a redis:\/\//);
    expect(JSON.stringify(err)).not.toContain('s3cret');
  });

  it('lists every problem at once, one detail per variable', () => {
    const err = refusal({ CORDON_POLICYDIR: 'x', PORT: '-1', CORDON_ROLE: 'boss', CORDON_TLS_CERT: 'server.crt' });
    expect(err.code).toBe('config_invalid');
    expect(err.message).toMatch(/^4 configuration problems: /);
    expect(err.details!.map((d) => d.path).sort()).toEqual(['CORDON_POLICYDIR', 'CORDON_ROLE', 'CORDON_TLS_KEY', 'PORT']);
    for (const d of err.details!) expect(d.message.startsWith(d.path!)).toBe(true);
  });

  it('suggests only names that are close', () => {
    expect(nearestSetting('CORDON_STATEDIR')).toBe('CORDON_STATE_DIR');
    expect(nearestSetting('CORDON_TLS_CRT')).toBe('CORDON_TLS_CERT');
    expect(nearestSetting('CORDON_DATABASE')).toBeUndefined();
  });

  it('production needs CORDON_POLICY_SIGNERS and CORDON_POLICY_QUORUM, each named when unset', () => {
    const worker = { NODE_ENV: 'production', CORDON_ROLE: 'worker' };
    expect(refusal(worker).details).toEqual([
      { path: 'CORDON_POLICY_SIGNERS', message: expect.stringMatching(/^production needs signed policy revisions: .*CORDON_POLICY_SIGNERS is unset$/) },
      { path: 'CORDON_POLICY_QUORUM', message: expect.stringMatching(/CORDON_POLICY_QUORUM is unset$/) },
    ]);
    expect(refusal({ ...worker, CORDON_POLICY_SIGNERS: 'signers.asc' }).details).toEqual([{ path: 'CORDON_POLICY_QUORUM', message: expect.stringMatching(/unset$/) }]);
    expect(loadConfig({ ...worker, ...SIGNED }, cwd)).toMatchObject({ policySigners: path.join(cwd, 'governance/signers.asc'), policyQuorum: 2 });
    // Development: optional; the quorum defaults to 1.
    expect(loadConfig({}, cwd)).toMatchObject({ policyQuorum: 1 });
    expect(loadConfig({}, cwd).policySigners).toBeUndefined();
  });

  it('refuses a signers file inside the policy directory, and a quorum below 1', () => {
    expect(refusal({ CORDON_POLICY_DIR: 'pol', CORDON_POLICY_SIGNERS: 'pol/keys/signers.asc' })).toMatchObject({
      code: 'config_invalid',
      details: [{ path: 'CORDON_POLICY_SIGNERS', message: expect.stringMatching(/is inside the policy directory/) }],
    });
    expect(loadConfig({ CORDON_POLICY_DIR: 'pol', CORDON_POLICY_SIGNERS: 'pol-signers.asc' }, cwd).policySigners).toBe(path.join(cwd, 'pol-signers.asc'));
    expect(refusal({ CORDON_POLICY_QUORUM: '0' }).details).toEqual([expect.objectContaining({ path: 'CORDON_POLICY_QUORUM' })]);
  });
});
