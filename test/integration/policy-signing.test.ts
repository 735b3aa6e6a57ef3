/**
 * Signed policy revisions as governance and an attacker who can write the policy directory meet them: a
 * running gateway with CORDON_POLICY_SIGNERS (the governance test key, in a file outside the policy
 * directory). An unsigned edit to a partner file is refused on reload and the old rules keep producing
 * packets; `cordon policy sign` makes it go live; an older signed set after a newer one (rollback) and a
 * set signed by a key not in the signers file are refused; at start-up a set without signatures, an
 * older signed set, and a quorum of 2 met by one signer are refused.
 */
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../gateway/audit/log.js';
import { loadConfig, type Config } from '../../gateway/config/env.js';
import { decryptAndVerify, parseArmoredPrivateKey, parseArmoredPublicKey } from '../../gateway/crypto/openpgp.js';
import { startGateway } from '../../gateway/main.js';
import { RedisAuditChain } from '../../gateway/store/audit.js';
import { Keys } from '../../gateway/store/redis.js';
import { api, deleteKeys, fixture, REDIS_URL, ROOT, startTestGateway, TOKENS, until, waitSettled, type TestGateway } from '../helpers/gateway.js';
import { copyPolicies, signPolicies } from '../helpers/policies.js';

const KEYS = path.join(ROOT, 'test/fixtures/keys');
const GOVERNANCE = path.join(KEYS, 'governance.sec.asc');
const INTRUDER = path.join(KEYS, 'intruder.sec.asc');
const FPS = JSON.parse(await readFile(path.join(KEYS, 'fingerprints.json'), 'utf8')) as Record<string, string>;
const full = fixture('dossier-full.json');

let tmp: string;
let stateDir: string;
let signers: string;
let policies: Awaited<ReturnType<typeof copyPolicies>>;
let v1: string;
let dvlaFile: string;
let original: string;
let gw: TestGateway | undefined;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'cordon-policy-signing-'));
  stateDir = path.join(tmp, 'state');
  // The signers file lives outside the policy directory: its editors cannot add a signer.
  signers = path.join(tmp, 'signers.asc');
  await writeFile(signers, await readFile(path.join(KEYS, 'governance.asc'), 'utf8'));
  policies = await copyPolicies();
  dvlaFile = path.join(policies.dir, 'partners/dvla.yaml');
  original = await readFile(dvlaFile, 'utf8');
  expect(await signPolicies(policies.dir, GOVERNANCE)).toMatch(new RegExp(`^signed revision [0-9a-f]{16} at sequence 1 as ${FPS.governance}`));
  // The signed set at sequence 1, kept to attempt a rollback later.
  v1 = path.join(tmp, 'v1');
  await cp(policies.dir, v1, { recursive: true });
  gw = await startTestGateway({ policyDir: policies.dir, policySigners: signers, policyQuorum: 1, stateDir });
});

afterAll(async () => {
  await gw?.stop();
  await policies?.cleanup();
  await rm(tmp, { recursive: true, force: true });
});

async function dvlaPacket(key: string): Promise<{ packet: { policy: { revision: string } }; dossier: any }> {
  const pushed = await api(gw!.url, 'POST', '/v1/dossiers', TOKENS['west-midlands-rocu'], full, { 'idempotency-key': key });
  expect(pushed.status, pushed.text).toBe(202);
  const status = await waitSettled(gw!.url, pushed.json.id);
  const d = status.deliveries.find((x: { partner: string }) => x.partner === 'dvla');
  expect(d?.state, JSON.stringify(d)).toBe('delivered');
  const armored = await api(gw!.url, 'GET', `/v1/packets/${d.packetId}`, TOKENS.dvla);
  const secret = await parseArmoredPrivateKey(await readFile(path.join(KEYS, 'dvla.sec.asc'), 'utf8'));
  const verify = await parseArmoredPublicKey((await api(gw!.url, 'GET', '/v1/keys/gateway')).text);
  return JSON.parse((await decryptAndVerify(armored.text, secret, [verify])).data);
}

async function liveRevision(): Promise<string> {
  const res = await api(gw!.url, 'POST', '/v1/preview', TOKENS.governance, { dossier: full, partner: 'dvla' });
  expect(res.status, res.text).toBe(200);
  return res.json.policy.revision as string;
}

async function policyRecords(action: 'policy.loaded' | 'policy.refused') {
  return (await new AuditLog(new RedisAuditChain(gw!.redis, new Keys(gw!.prefix))).read()).filter((r) => r.action === action) as Array<Record<string, unknown>>;
}

/** Waits for /readyz to report a refused reload whose detail matches `pattern`. */
async function refusal(pattern: RegExp): Promise<string> {
  let last = '';
  return until(`a refusal matching ${pattern}`, async () => {
    const r = await api(gw!.url, 'GET', '/readyz');
    last = String(r.json.checks.policies.detail);
    return pattern.test(last) ? last : undefined;
  }).catch((err: Error) => {
    throw new Error(`${err.message}; /readyz says: ${last}`);
  });
}

async function appliedSequence(): Promise<{ sequence: number; revision: string }> {
  return JSON.parse(await readFile(path.join(stateDir, 'policy-sequence.json'), 'utf8'));
}

/** Replaces the policy directory's content with `from`'s (files and signatures), as a restore from backup would. */
async function restore(from: string): Promise<void> {
  await rm(path.join(policies.dir, 'signatures'), { recursive: true, force: true });
  await cp(from, policies.dir, { recursive: true, force: true });
}

describe('signed policy revisions on a running gateway', () => {
  let first: string;
  let second: string;

  it('starts on the signed set, recording its sequence and signer in the trail and the state directory', async () => {
    const p = await dvlaPacket('signed-1');
    first = p.packet.policy.revision;
    expect(p.dossier.subjects[0].vehicles[0].colour).toBe('black');
    expect((await policyRecords('policy.loaded')).at(-1)).toMatchObject({ reason: 'start-up', policyRevision: first, policySequence: 1, signers: [FPS.governance] });
    expect(await appliedSequence()).toMatchObject({ sequence: 1, revision: first });
  });

  it('refuses an unsigned edit to a partner file; the old rules keep producing packets for that partner', async () => {
    await writeFile(dvlaFile, original.replace('  subjects[].vehicles[].colour: keep\n', ''));
    const detail = await refusal(/reload refused/);
    expect(detail).toMatch(new RegExp(`is not signed \\(1 of 1 required valid signature: partners/dvla.yaml changed since it was signed\\); serving revision ${first}`));
    const refused = (await policyRecords('policy.refused')).at(-1)!;
    expect(refused).toMatchObject({ kind: 'alteration', reason: 'unsigned', policyRevision: first, note: expect.stringContaining('partners/dvla.yaml changed since it was signed') });
    expect(refused.refusedRevision).not.toBe(first);
    expect(await liveRevision()).toBe(first);
    const p = await dvlaPacket('signed-2');
    expect(p.packet.policy.revision).toBe(first);
    expect(p.dossier.subjects[0].vehicles[0].colour).toBe('black');
    expect((await api(gw!.url, 'GET', '/readyz')).status).toBe(200); // the last good set serves
  });

  it('`cordon policy sign` makes the edit go live at the next sequence', async () => {
    expect(await signPolicies(policies.dir, GOVERNANCE)).toMatch(/at sequence 2 as /);
    second = await until('the signed revision live', async () => {
      const r = await liveRevision();
      return r !== first ? r : undefined;
    });
    const p = await dvlaPacket('signed-3');
    expect(p.packet.policy.revision).toBe(second);
    expect(p.dossier.subjects[0].vehicles[0]).not.toHaveProperty('colour');
    expect((await policyRecords('policy.loaded')).at(-1)).toMatchObject({ policyRevision: second, previousRevision: first, policySequence: 2, signers: [FPS.governance] });
    expect(await appliedSequence()).toMatchObject({ sequence: 2, revision: second });
    expect(String((await api(gw!.url, 'GET', '/readyz')).json.checks.policies.detail)).not.toContain('reload refused');
  });

  it('refuses the older signed set after the newer one (rollback), though its signature is valid', async () => {
    await restore(v1);
    const detail = await refusal(/signed at sequence 1/);
    expect(detail).toMatch(new RegExp(`revision ${first} is signed at sequence 1, below sequence 2, applied at .*; serving revision ${second}`));
    expect((await policyRecords('policy.refused')).at(-1)).toMatchObject({ reason: 'rollback', policyRevision: second, refusedRevision: first });
    expect(await liveRevision()).toBe(second);
    const p = await dvlaPacket('signed-4');
    expect(p.dossier.subjects[0].vehicles[0]).not.toHaveProperty('colour');
  });

  it('refuses a set signed by a key not in the signers file, and a second manifest at a sequence already applied', async () => {
    await writeFile(dvlaFile, original.replace('  subjects[].vehicles[].colour: keep\n', '  subjects[].vehicles[].colour: strip\n'));
    // The intruder signs a new manifest (sequence 2: the directory holds sequence 1 since the restore).
    expect(await signPolicies(policies.dir, INTRUDER)).toMatch(new RegExp(`at sequence 2 as ${FPS.intruder}`));
    const detail = await refusal(/not in the signers file/);
    expect(detail).toMatch(/is not signed \(0 of 1 required valid signature: signatures\/2-[0-9A-F]{40}\.asc: signed by key [0-9A-F]{16}, which is not in the signers file\)/);
    expect((await policyRecords('policy.refused')).at(-1)).toMatchObject({ reason: 'unsigned', policyRevision: second });
    // Governance co-signs that manifest: signed now, but sequence 2 already put another revision live.
    expect(await signPolicies(policies.dir, GOVERNANCE)).toMatch(/at sequence 2 .*beside 1 other signature/s);
    await refusal(/signed at sequence 2, the sequence of revision/);
    expect((await policyRecords('policy.refused')).at(-1)).toMatchObject({ reason: 'rollback' });
    expect(await liveRevision()).toBe(second);
    // A new manifest above it goes live.
    expect(await signPolicies(policies.dir, GOVERNANCE, '--sequence', '3')).toMatch(/at sequence 3 /);
    const third = await until('sequence 3 live', async () => {
      const r = await liveRevision();
      return r !== second ? r : undefined;
    });
    expect((await policyRecords('policy.loaded')).at(-1)).toMatchObject({ policyRevision: third, policySequence: 3, signers: [FPS.governance] });
  });
});

describe('start-up with policy signers', () => {
  function config(overrides: Partial<Config>): Config {
    return { ...loadConfig({}, ROOT), port: 0, redisUrl: REDIS_URL, redisPrefix: `cordon-test-${randomBytes(4).toString('hex')}`, logLevel: 'silent', role: 'api', policySigners: signers, policyQuorum: 1, ...overrides };
  }

  async function refused(overrides: Partial<Config>): Promise<{ code: string; message: string }> {
    const c = config(overrides);
    try {
      const running = await startGateway(c, pino({ level: 'silent' }));
      await running.close();
    } catch (err) {
      return err as { code: string; message: string };
    } finally {
      const redis = new Redis(REDIS_URL);
      await deleteKeys(redis, c.redisPrefix);
      await redis.quit();
    }
    throw new Error('start-up was not refused');
  }

  beforeAll(async () => {
    await gw?.stop(); // the state directory (sequence 3 applied) stays: it is ours
    gw = undefined;
  });

  it('refuses a set without signatures, saying so', async () => {
    const unsigned = await copyPolicies();
    try {
      const err = await refused({ policyDir: unsigned.dir, stateDir: path.join(tmp, 'fresh-state') });
      expect(err).toMatchObject({ code: 'policy_unsigned', message: expect.stringMatching(/is not signed \(0 of 1 required valid signature: no signatures\/manifest\.json: the set is not signed \(cordon policy sign\)\)/) });
    } finally {
      await unsigned.cleanup();
    }
  });

  it('refuses an older signed set than the one last applied (the state directory remembers across restarts)', async () => {
    const err = await refused({ policyDir: v1, stateDir });
    expect(err).toMatchObject({ code: 'policy_unsigned', message: expect.stringMatching(/is signed at sequence 1, below sequence 3/) });
  });

  it('quorum 2: one signer is refused, a second distinct signer lets it start', async () => {
    const two = path.join(tmp, 'two-signers.asc');
    await writeFile(two, (await readFile(path.join(KEYS, 'governance.asc'), 'utf8')) + (await readFile(path.join(KEYS, 'intruder.asc'), 'utf8')));
    const copy = await copyPolicies();
    try {
      await signPolicies(copy.dir, GOVERNANCE);
      // The same signer twice is still one signer.
      await cp(path.join(copy.dir, `signatures/1-${FPS.governance}.asc`), path.join(copy.dir, `signatures/1-copy.asc`));
      const err = await refused({ policyDir: copy.dir, stateDir: path.join(tmp, 'quorum-state'), policySigners: two, policyQuorum: 2 });
      expect(err).toMatchObject({ code: 'policy_unsigned', message: expect.stringMatching(/is not signed \(1 of 2 required valid signatures\)/) });
      await signPolicies(copy.dir, INTRUDER);
      const ok = await startTestGateway({ policyDir: copy.dir, stateDir: path.join(tmp, 'quorum-state'), policySigners: two, policyQuorum: 2, role: 'api' });
      try {
        const loaded = (await new AuditLog(new RedisAuditChain(ok.redis, new Keys(ok.prefix))).read()).filter((r) => r.action === 'policy.loaded');
        expect((loaded.at(-1) as Record<string, unknown>).signers).toEqual(expect.arrayContaining([FPS.governance, FPS.intruder]));
      } finally {
        await ok.stop();
      }
    } finally {
      await copy.cleanup();
    }
  });

  it('refuses a quorum the signers file cannot meet, and a signers file inside the policy directory', async () => {
    expect(await refused({ policyDir: v1, stateDir: path.join(tmp, 'q3'), policyQuorum: 3 })).toMatchObject({ code: 'config_invalid', message: expect.stringMatching(/CORDON_POLICY_QUORUM is 3 but .* holds 1 signer key/) });
    await cp(signers, path.join(v1, 'keys/signers.asc'));
    expect(await refused({ policyDir: v1, stateDir: path.join(tmp, 'q4'), policySigners: path.join(v1, 'keys/signers.asc') })).toMatchObject({ code: 'config_invalid', message: expect.stringMatching(/resolves inside the policy directory/) });
  });
});
