/** The `cordon` CLI as a user runs it: a child process, real files, real keys. */
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken } from '../../gateway/config/clients.js';
import { api, ROOT, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { copyPolicies } from '../helpers/policies.js';

function cordon(...args: string[]) {
  const res = spawnSync(process.execPath, [path.join(ROOT, 'scripts/cordon.mjs'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

let policies: Awaited<ReturnType<typeof copyPolicies>>;
beforeAll(async () => {
  policies = await copyPolicies();
});
afterAll(async () => {
  await policies?.cleanup();
});

describe('cordon keys', () => {
  it('import copies the public key and pins its fingerprint in the partner file', async () => {
    const fps = JSON.parse(await readFile(path.join(ROOT, 'test/fixtures/keys/fingerprints.json'), 'utf8')) as Record<string, string>;
    const res = cordon('keys', 'import', '--partner', 'dvla', '--file', path.join(ROOT, 'test/fixtures/keys/intruder.asc'), '--policies', policies.dir);
    expect(res.code, res.stderr).toBe(0);
    const doc = YAML.parse(await readFile(path.join(policies.dir, 'partners/dvla.yaml'), 'utf8'));
    expect(doc.partner.key).toEqual({ file: 'keys/dvla.asc', fingerprint: fps.intruder });
    expect(await readFile(path.join(policies.dir, 'keys/dvla.asc'), 'utf8')).toBe(await readFile(path.join(ROOT, 'test/fixtures/keys/intruder.asc'), 'utf8'));
    // Comments in the policy file survive.
    expect(await readFile(path.join(policies.dir, 'partners/dvla.yaml'), 'utf8')).toMatch(/^# DVLA/);
  });

  it('import refuses a private key, an expired key and a revoked key, changing nothing', async () => {
    const before = await readFile(path.join(policies.dir, 'partners/hmrc.yaml'), 'utf8');
    for (const [file, why] of [['dvla.sec.asc', /PRIVATE/], ['expired.asc', /expired/], ['revoked.asc', /revoked/]] as const) {
      const res = cordon('keys', 'import', '--partner', 'hmrc', '--file', path.join(ROOT, 'test/fixtures/keys', file), '--policies', policies.dir);
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(why);
    }
    expect(await readFile(path.join(policies.dir, 'partners/hmrc.yaml'), 'utf8')).toBe(before);
  });

  it('import refuses an unknown partner and needs exactly one of --partner/--source/--peer', () => {
    expect(cordon('keys', 'import', '--partner', 'nobody', '--file', path.join(ROOT, 'test/fixtures/keys/intruder.asc'), '--policies', policies.dir).code).toBe(1);
    const both = cordon('keys', 'import', '--partner', 'dvla', '--source', 'west-midlands', '--file', 'x', '--policies', policies.dir);
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(/exactly one/);
  });

  it('list shows every key with its state', () => {
    const res = cordon('keys', 'list', '--policies', path.join(ROOT, 'policies'));
    expect(res.code).toBe(0);
    for (const id of ['council-housing', 'dvla', 'west-midlands']) expect(res.stdout).toMatch(new RegExp(`${id}\\s+[0-9A-F]{40}\\s+ok`));
  });
});

describe('cordon clients add', () => {
  let gw: TestGateway;
  let clientsFile: string;
  beforeAll(async () => {
    clientsFile = path.join(policies.dir, 'clients.yaml');
    await writeFile(clientsFile, 'clients: []\n');
    gw = await startTestGateway({ clientsFile, role: 'api' });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('prints only the token, stores only its hash, and the running gateway accepts it', async () => {
    const res = cordon('clients', 'add', '--id', 'hmrc-api', '--role', 'partner', '--partner', 'hmrc', '--clients', clientsFile);
    expect(res.code, res.stderr).toBe(0);
    const token = res.stdout.trim();
    expect(res.stdout).toBe(token + '\n');
    expect(token).toMatch(/^cordon_[A-Za-z0-9_-]{43}$/);
    const stored = await readFile(clientsFile, 'utf8');
    expect(stored).not.toContain(token);
    expect(stored).toContain(hashToken(token));
    // Picked up without a restart.
    const deadline = Date.now() + 10_000;
    let status = 0;
    while (Date.now() < deadline && status !== 200) {
      status = (await api(gw.url, 'GET', '/v1/packets', token)).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toBe(200);
  });

  it('rotate: old and new tokens both work, then --finish retires the old one, all without a restart', async () => {
    const first = cordon('clients', 'add', '--id', 'dvla-api', '--role', 'partner', '--partner', 'dvla', '--clients', clientsFile).stdout.trim();
    const waitStatus = async (token: string, want: number) => {
      const deadline = Date.now() + 10_000;
      let status = 0;
      while (Date.now() < deadline && (status = (await api(gw.url, 'GET', '/v1/packets', token)).status) !== want) await new Promise((r) => setTimeout(r, 200));
      return status;
    };
    expect(await waitStatus(first, 200)).toBe(200);
    const rotated = cordon('clients', 'rotate', '--id', 'dvla-api', '--clients', clientsFile);
    expect(rotated.code, rotated.stderr).toBe(0);
    const second = rotated.stdout.trim();
    expect(second).toMatch(/^cordon_/);
    expect(await waitStatus(second, 200)).toBe(200);
    expect((await api(gw.url, 'GET', '/v1/packets', first)).status).toBe(200); // still valid during rotation
    expect(cordon('clients', 'rotate', '--id', 'dvla-api', '--clients', clientsFile).code).toBe(1); // one rotation at a time
    const finished = cordon('clients', 'rotate', '--id', 'dvla-api', '--finish', '--clients', clientsFile);
    expect(finished.code, finished.stderr).toBe(0);
    expect(finished.stdout).toBe('');
    expect(await waitStatus(first, 401)).toBe(401);
    expect((await api(gw.url, 'GET', '/v1/packets', second)).status).toBe(200);
  });

  it('refuses a duplicate id and a role without its scope, leaving the file unchanged', async () => {
    const before = await readFile(clientsFile, 'utf8');
    expect(cordon('clients', 'add', '--id', 'hmrc-api', '--role', 'partner', '--partner', 'hmrc', '--clients', clientsFile).code).toBe(1);
    const noScope = cordon('clients', 'add', '--id', 'dwp', '--role', 'partner', '--clients', clientsFile);
    expect(noScope.code).toBe(1);
    expect(noScope.stdout).toBe('');
    expect(await readFile(clientsFile, 'utf8')).toBe(before);
  });

  it('refuses a partner, source or peer the policy set does not have, naming it, leaving the file unchanged', async () => {
    const before = await readFile(clientsFile, 'utf8');
    for (const [scope, id] of [['partner', 'nosuch'], ['source', 'atlantis'], ['peer', 'nowhere']] as const) {
      const res = cordon('clients', 'add', '--id', `x-${scope}`, '--role', scope, `--${scope}`, id, '--clients', clientsFile, '--policies', policies.dir);
      expect(res.code).toBe(1);
      expect(res.stdout).toBe('');
      expect(res.stderr).toContain(`no ${scope} "${id}" in the policy set`);
    }
    expect(await readFile(clientsFile, 'utf8')).toBe(before);
    expect(cordon('clients', 'add', '--id', 'warwickshire-gateway', '--role', 'peer', '--peer', 'warwickshire', '--clients', clientsFile, '--policies', policies.dir).code).toBe(0);
  });

  it('edits the file in place: comments and every existing entry stay byte for byte, the new one is written alike', async () => {
    const file = path.join(policies.dir, 'clients-edit.yaml');
    const original = await readFile(path.join(ROOT, 'policies/clients.sample.yaml'), 'utf8');
    await writeFile(file, original);
    const token = cordon('clients', 'add', '--id', 'hmrc-batch', '--role', 'partner', '--partner', 'hmrc', '--clients', file).stdout.trim();
    const added = await readFile(file, 'utf8');
    expect(added.startsWith(original)).toBe(true);
    expect(added.slice(original.length)).toBe(`  - id: hmrc-batch\n    role: partner\n    partner: hmrc\n    tokens: ["${hashToken(token)}"]\n`);
    const second = cordon('clients', 'rotate', '--id', 'hmrc-batch', '--clients', file).stdout.trim();
    expect((await readFile(file, 'utf8')).slice(original.length)).toBe(`  - id: hmrc-batch\n    role: partner\n    partner: hmrc\n    tokens: ["${hashToken(token)}", "${hashToken(second)}"]\n`);
  });
});
