/**
 * Production refuses demonstration material whatever the files say (gateway/config/demo-material.ts):
 * the shipped policies pin published test keys, so a production gateway on them does not start, naming
 * the key; a clients file with a sample token does not start either, even without its `sample:` line;
 * a reload that pins a test key again is refused while the last good set keeps serving. Production also
 * needs signed policy revisions (CORDON_POLICY_SIGNERS), and refuses the governance test key as a signer.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken } from '../../gateway/config/clients.js';
import { loadConfig, type Config } from '../../gateway/config/env.js';
import { loadOrCreateGatewayKey } from '../../gateway/crypto/openpgp.js';
import { startGateway } from '../../gateway/main.js';
import { api, REDIS_URL, ROOT, startTestGateway, until } from '../helpers/gateway.js';
import { copyPolicies, editYaml, signPolicies } from '../helpers/policies.js';

let tmp: string;
let ownClients: string;
let ownSigners: string;
let ownSignerKey: string;
const TOKEN = 'cordon_production-test-governance-token';

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'cordon-production-'));
  ownClients = path.join(tmp, 'clients.yaml');
  await writeFile(ownClients, `clients:\n  - id: governance\n    role: governance\n    tokens: ["${hashToken(TOKEN)}"]\n`);
  // Production's own governance signer: a fresh key, its public half in a signers file outside the policies.
  const governance = await loadOrCreateGatewayKey(path.join(tmp, 'governance'));
  ownSigners = path.join(tmp, 'signers.asc');
  await writeFile(ownSigners, governance.publicArmored);
  ownSignerKey = path.join(tmp, 'governance', 'gateway-key.asc');
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function config(overrides: Partial<Config>): Config {
  return { ...loadConfig({}, ROOT), port: 0, redisUrl: REDIS_URL, stateDir: tmp, redisPrefix: 'cordon-production-test', role: 'api', production: true, policySigners: ownSigners, ...overrides };
}

/** A copy of the sample policies with every pinned key replaced by a freshly made one. */
async function policiesWithOwnKeys(): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const copy = await copyPolicies();
  for (const [folder, section] of [['partners', 'partner'], ['sources', 'source'], ['peers', 'peer']] as const) {
    for (const name of await readdir(path.join(copy.dir, folder))) {
      const id = name.replace(/\.yaml$/, '');
      const keyDir = path.join(tmp, 'fresh-keys', folder, id);
      await mkdir(keyDir, { recursive: true, mode: 0o700 });
      const key = await loadOrCreateGatewayKey(keyDir);
      await writeFile(path.join(copy.dir, 'keys', `${id}-own.asc`), key.publicArmored);
      await editYaml(path.join(copy.dir, folder, name), [section, 'key'], { file: `keys/${id}-own.asc`, fingerprint: key.fingerprint });
    }
  }
  return copy;
}

describe('production refuses demonstration material', () => {
  it('the shipped policies: start-up refused, naming the test keys they pin', async () => {
    const err = await startGateway(config({ clientsFile: ownClients }), pino({ level: 'silent' })).then(
      () => undefined,
      (e: unknown) => e as { code: string; message: string; details: Array<{ path: string }> },
    );
    expect(err).toMatchObject({ code: 'config_invalid', message: expect.stringMatching(/published test key "dvla"/) });
    expect(err!.details.map((d) => d.path)).toEqual(expect.arrayContaining(['partners/dvla.yaml: partner.key.fingerprint', 'sources/west-midlands.yaml: source.key.fingerprint', 'peers/warwickshire.yaml: peer.key.fingerprint']));
  });

  it('a clients file holding sample tokens, its `sample:` line deleted: start-up refused, naming them', async () => {
    const unmarked = path.join(tmp, 'unmarked-clients.yaml');
    await writeFile(unmarked, (await readFile(path.join(ROOT, 'policies/clients.sample.yaml'), 'utf8')).replace(/^sample: true\n/m, ''));
    await expect(startGateway(config({ clientsFile: unmarked }), pino({ level: 'silent' }))).rejects.toMatchObject({
      code: 'config_invalid',
      message: expect.stringMatching(/client "dvla" holds the published sample token of "dvla"/),
    });
  });

  it('own keys, signed, start; a reload pinning a test key again is refused and the last good set keeps serving', async () => {
    const policies = await policiesWithOwnKeys();
    await signPolicies(policies.dir, ownSignerKey);
    const gw = await startTestGateway({ production: true, policyDir: policies.dir, clientsFile: ownClients, role: 'api', policySigners: ownSigners, policyQuorum: 1 });
    try {
      const ready = await api(gw.url, 'GET', '/readyz');
      expect(ready.status).toBe(200);
      const revision = /revision (\w+)/.exec(ready.json.checks.policies.detail as string)![1];
      const fingerprints = JSON.parse(await readFile(path.join(ROOT, 'test/fixtures/keys/fingerprints.json'), 'utf8')) as Record<string, string>;
      await editYaml(path.join(policies.dir, 'partners', 'dvla.yaml'), ['partner', 'key'], { file: 'keys/dvla.asc', fingerprint: fingerprints['dvla'] });
      const refused = await until('the reload refused', async () => {
        const r = await api(gw.url, 'GET', '/readyz');
        return /reload refused/.test(r.json.checks.policies.detail as string) ? r : undefined;
      });
      expect(refused.json.checks.policies.detail).toContain(`serving revision ${revision}`);
      expect((await api(gw.url, 'GET', '/v1/partners', TOKEN)).status).toBe(200);
    } finally {
      await gw.stop();
      await policies.cleanup();
    }
  });

  it('own keys without policy signers, or signed under the governance test key: start-up refused, saying why', async () => {
    const policies = await policiesWithOwnKeys();
    try {
      await expect(startGateway(config({ clientsFile: ownClients, policyDir: policies.dir, policySigners: undefined }), pino({ level: 'silent' }))).rejects.toMatchObject({
        code: 'config_invalid',
        message: expect.stringMatching(/^production needs signed policy revisions: set CORDON_POLICY_SIGNERS/),
      });
      const demoSigners = path.join(tmp, 'demo-signers.asc');
      await writeFile(demoSigners, await readFile(path.join(ROOT, 'test/fixtures/keys/governance.asc'), 'utf8'));
      await signPolicies(policies.dir, path.join(ROOT, 'test/fixtures/keys/governance.sec.asc'));
      await expect(startGateway(config({ clientsFile: ownClients, policyDir: policies.dir, policySigners: demoSigners }), pino({ level: 'silent' }))).rejects.toMatchObject({
        code: 'config_invalid',
        message: expect.stringMatching(/holds the published test key\(s\) "governance" \(FAE7D1C2D0EF086D6EE4C13BE4569436D6622B9D\): refused in production/),
      });
      // Unsigned for the production signer: refused too.
      await expect(startGateway(config({ clientsFile: ownClients, policyDir: policies.dir, stateDir: path.join(tmp, 'unsigned-state') }), pino({ level: 'silent' }))).rejects.toMatchObject({
        code: 'policy_unsigned',
        message: expect.stringMatching(/is not signed \(0 of 1 required valid signature: signatures\/1-[0-9A-F]{40}\.asc: signed by key [0-9A-F]{16}, which is not in the signers file\)/),
      });
    } finally {
      await policies.cleanup();
    }
  });
});
