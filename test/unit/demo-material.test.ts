/**
 * The demonstration material production refuses (gateway/config/demo-material.ts) is exactly what the
 * repository publishes: every test key in test/fixtures/keys (by the fingerprint of the key file itself,
 * and as fingerprints.json lists them) and every sample token (policies/clients.sample.yaml, and the
 * hashes of the plaintext tokens in test/fixtures/sample-tokens.json). The lists are copied into
 * gateway/config/ because production code never reads test/.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { hashToken } from '../../gateway/config/clients.js';
import { DEMO_KEY_FINGERPRINTS, demoKeysIn, refuseDemoKeys, refuseSampleTokens, SAMPLE_TOKEN_HASHES } from '../../gateway/config/demo-material.js';
import { readPublicKeyInfo } from '../../gateway/crypto/openpgp.js';
import { loadPolicySet } from '../../gateway/policy/load.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const KEYS = path.join(ROOT, 'test/fixtures/keys');
const read = (p: string) => readFileSync(path.join(ROOT, p), 'utf8');

describe('demonstration material', () => {
  it('lists exactly test/fixtures/keys/fingerprints.json, which covers every key file there', async () => {
    const listed = JSON.parse(read('test/fixtures/keys/fingerprints.json')) as Record<string, string>;
    expect(DEMO_KEY_FINGERPRINTS).toEqual(listed);
    const files = readdirSync(KEYS).filter((f) => f.endsWith('.asc'));
    const actual = new Set<string>();
    for (const f of files) actual.add((await readPublicKeyInfo(readFileSync(path.join(KEYS, f), 'utf8'))).fingerprint);
    expect([...actual].sort()).toEqual(Object.values(DEMO_KEY_FINGERPRINTS).sort());
  });

  it('lists exactly the sample clients file’s token hashes, the hashes of the published sample tokens', () => {
    const sample = YAML.parse(read('policies/clients.sample.yaml')) as { clients: Array<{ id: string; tokens: string[] }> };
    expect(SAMPLE_TOKEN_HASHES).toEqual(Object.fromEntries(sample.clients.map((c) => [c.id, c.tokens[0]])));
    const tokens = JSON.parse(read('test/fixtures/sample-tokens.json')) as Record<string, string>;
    for (const [id, token] of Object.entries(tokens)) expect(SAMPLE_TOKEN_HASHES[id], id).toBe(hashToken(token));
  });

  it('finds every test key the shipped policies pin, naming the file', async () => {
    const set = await loadPolicySet(path.join(ROOT, 'policies'));
    const found = demoKeysIn(set);
    expect(found.map((p) => p.path)).toEqual(expect.arrayContaining(['partners/dvla.yaml: partner.key.fingerprint', 'sources/west-midlands.yaml: source.key.fingerprint', 'peers/warwickshire.yaml: peer.key.fingerprint']));
    expect(() => refuseDemoKeys(set)).toThrow(expect.objectContaining({ code: 'config_invalid', message: expect.stringMatching(/published test key "dvla"/) }));
  });

  it('refuses a sample token in any clients file, naming the client', () => {
    expect(() => refuseSampleTokens('clients.yaml', [{ id: 'mine', tokens: [hashToken('cordon_fresh')] }])).not.toThrow();
    expect(() => refuseSampleTokens('clients.yaml', [{ id: 'mine', tokens: [hashToken('cordon_fresh'), SAMPLE_TOKEN_HASHES['dvla']!] }])).toThrow(
      expect.objectContaining({ code: 'config_invalid', details: [expect.objectContaining({ path: 'clients[0].tokens', message: expect.stringMatching(/"mine".*"dvla"/) })] }),
    );
  });
});
