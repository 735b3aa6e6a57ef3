/**
 * `CORDON_TLS_CERT` / `CORDON_TLS_KEY` are read and checked with the other settings (config/env.ts):
 * both (HTTPS) or neither (plain HTTP), and a missing, unreadable, wrong or mismatched file is a config
 * error naming its variable. The HTTPS server options are built from what the config read.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../gateway/config/env.js';
import { serverTlsOptions } from '../../gateway/exchange/tls.js';

/** Production also needs signed policy revisions (gateway/config/env.ts); the file is only read at start-up. */
const SIGNED = { CORDON_POLICY_SIGNERS: 'signers.asc', CORDON_POLICY_QUORUM: '1' };

let dir: string;

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

function configError(env: Record<string, string>): { code?: string; message: string } {
  try {
    loadConfig(env, dir);
  } catch (err) {
    return err as { code?: string; message: string };
  }
  throw new Error('loadConfig did not refuse the configuration');
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cordon-tls-config-'));
  for (const name of ['server', 'other']) {
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=cordon-${name}`]);
  }
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('CORDON_TLS_CERT and CORDON_TLS_KEY', () => {
  it('neither (or empty): plain HTTP', () => {
    expect(loadConfig({}, dir).tls).toBeUndefined();
    expect(loadConfig({ CORDON_TLS_CERT: '', CORDON_TLS_KEY: '' }, dir).tls).toBeUndefined();
  });

  it('both: the files are read, relative to the working directory', async () => {
    const { tls } = loadConfig({ CORDON_TLS_CERT: 'server.crt', CORDON_TLS_KEY: path.join(dir, 'server.key') }, dir);
    expect(tls).toEqual({
      certFile: path.join(dir, 'server.crt'),
      keyFile: path.join(dir, 'server.key'),
      cert: await readFile(path.join(dir, 'server.crt'), 'utf8'),
      key: await readFile(path.join(dir, 'server.key'), 'utf8'),
    });
    // The API asks every client for a certificate; the exchange route pins peers' by fingerprint.
    expect(serverTlsOptions(tls!)).toEqual({ cert: tls!.cert, key: tls!.key, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' });
  });

  it('one without the other is refused, naming the one missing', () => {
    expect(configError({ CORDON_TLS_CERT: 'server.crt' })).toMatchObject({ code: 'config_invalid', message: expect.stringMatching(/^CORDON_TLS_KEY must be set when CORDON_TLS_CERT is/) });
    expect(configError({ CORDON_TLS_KEY: 'server.key' })).toMatchObject({ code: 'config_invalid', message: expect.stringMatching(/^CORDON_TLS_CERT must be set when CORDON_TLS_KEY is/) });
  });

  it('a file that cannot be read is refused, naming the variable and the file', () => {
    expect(configError({ CORDON_TLS_CERT: 'missing.crt', CORDON_TLS_KEY: 'server.key' })).toMatchObject({
      code: 'config_invalid',
      message: `CORDON_TLS_CERT: cannot read ${path.join(dir, 'missing.crt')} (ENOENT)`,
    });
    expect(configError({ CORDON_TLS_CERT: 'server.crt', CORDON_TLS_KEY: '.' })).toMatchObject({
      code: 'config_invalid',
      message: expect.stringMatching(/^CORDON_TLS_KEY: cannot read /),
    });
  });

  it('a file of the wrong kind is refused, naming its variable; no key material is echoed', async () => {
    const swapped = configError({ CORDON_TLS_CERT: 'server.key', CORDON_TLS_KEY: 'server.key' });
    expect(swapped).toMatchObject({ code: 'config_invalid', message: expect.stringMatching(/^CORDON_TLS_CERT: .*server\.key is not a PEM certificate/) });
    const keyLines = (await readFile(path.join(dir, 'server.key'), 'utf8')).split('\n').filter((l) => l && !l.startsWith('-----'));
    for (const line of keyLines) expect(swapped.message).not.toContain(line);
    expect(swapped.message).not.toContain('-----');
    const notKey = configError({ CORDON_TLS_CERT: 'server.crt', CORDON_TLS_KEY: 'server.crt' });
    expect(notKey).toMatchObject({ code: 'config_invalid', message: expect.stringMatching(/^CORDON_TLS_KEY: .*server\.crt is not an unencrypted PEM private key/) });
  });

  it('a key that is not the certificate’s is refused', () => {
    expect(configError({ CORDON_TLS_CERT: 'server.crt', CORDON_TLS_KEY: 'other.key' })).toMatchObject({
      code: 'config_invalid',
      message: expect.stringMatching(/^CORDON_TLS_KEY: .*other\.key is not the private key of the certificate in CORDON_TLS_CERT/),
    });
  });

  it('production: an api process needs TLS, or CORDON_ALLOW_PLAINTEXT_BEHIND_PROXY=1 for a TLS proxy in front', () => {
    for (const role of ['all', 'api']) {
      expect(configError({ NODE_ENV: 'production', CORDON_ROLE: role, ...SIGNED })).toMatchObject({
        code: 'config_invalid',
        message: expect.stringMatching(/^production needs TLS: set CORDON_TLS_CERT and CORDON_TLS_KEY, or CORDON_ALLOW_PLAINTEXT_BEHIND_PROXY=1/),
        details: [{ path: 'CORDON_TLS_CERT' }],
      });
    }
    expect(loadConfig({ NODE_ENV: 'production', CORDON_TLS_CERT: 'server.crt', CORDON_TLS_KEY: 'server.key', ...SIGNED }, dir).tls).toBeDefined();
    expect(loadConfig({ NODE_ENV: 'production', CORDON_ALLOW_PLAINTEXT_BEHIND_PROXY: '1', ...SIGNED }, dir)).toMatchObject({ production: true, allowPlaintextBehindProxy: true });
    expect(loadConfig({ NODE_ENV: 'production', CORDON_ROLE: 'worker', ...SIGNED }, dir).tls).toBeUndefined(); // a worker serves no API
    expect(loadConfig({}, dir)).toMatchObject({ production: false, allowPlaintextBehindProxy: false }); // development: plain HTTP is fine
    expect(configError({ NODE_ENV: 'production', CORDON_ALLOW_PLAINTEXT_BEHIND_PROXY: 'yes', ...SIGNED }).message).toBe('CORDON_ALLOW_PLAINTEXT_BEHIND_PROXY must be one of 0, 1, not "yes"');
  });
});
