/**
 * The signature gate of a policy set (gateway/governance/signatures.ts, gateway/crypto/signers.ts) on
 * real files and real test keys: the manifest is canonical, covers exactly the loaded files, and counts
 * only valid signatures from distinct keys of the signers file that are still valid; the last applied
 * sequence in the state directory never goes down and an unreadable record refuses rather than resets.
 */
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSignerKeys, signWithSecretKey, type SignerKey } from '../../gateway/crypto/signers.js';
import {
  manifestFor,
  manifestText,
  parseManifest,
  policyApprover,
  readAppliedSequence,
  readSignatureDir,
  SEQUENCE_FILE,
  signatureStatus,
} from '../../gateway/governance/signatures.js';
import { loadPolicySet } from '../../gateway/policy/load.js';
import type { PolicySet } from '../../gateway/policy/types.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const KEYS = path.join(ROOT, 'test/fixtures/keys');
const key = (name: string) => readFile(path.join(KEYS, name), 'utf8');

let tmp: string;
let dir: string;
let set: PolicySet;
let governance: SignerKey[];
let both: SignerKey[];

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'cordon-signatures-'));
  dir = path.join(tmp, 'policies');
  await cp(path.join(ROOT, 'policies'), dir, { recursive: true });
  set = await loadPolicySet(dir);
  governance = await readSignerKeys(await key('governance.asc'), 'signers.asc');
  both = await readSignerKeys((await key('governance.asc')) + (await key('intruder.asc')), 'signers.asc');
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Writes the manifest of `set` at `sequence` and one signature per secret key file. */
async function sign(sequence: number, keyFiles: string[], at?: Date): Promise<string> {
  const text = manifestText(manifestFor(set, sequence));
  await rm(path.join(dir, 'signatures'), { recursive: true, force: true });
  await mkdir(path.join(dir, 'signatures'));
  await writeFile(path.join(dir, 'signatures', 'manifest.json'), text);
  for (const f of keyFiles) {
    const s = await signWithSecretKey(text, await key(f), undefined, at);
    await writeFile(path.join(dir, 'signatures', `${sequence}-${s.fingerprint}.asc`), s.signature);
  }
  return text;
}

describe('the policy manifest', () => {
  it('lists every loaded file with its SHA-256, sorted, in canonical text whatever the order given', () => {
    const m = manifestFor(set, 4);
    expect(Object.keys(m.files)).toEqual([...Object.keys(m.files)].sort());
    expect(Object.keys(m.files)).toEqual(expect.arrayContaining(['gateway.yaml', 'partners/dvla.yaml', 'sources/west-midlands.yaml', 'peers/warwickshire.yaml', 'keys/dvla.asc']));
    expect(Object.keys(m.files).some((f) => f.startsWith('tests/') || f.includes('clients'))).toBe(false);
    const reversed = { ...m, files: Object.fromEntries(Object.entries(m.files).reverse()) };
    expect(manifestText(reversed)).toBe(manifestText(m));
    expect(parseManifest(manifestText(m))).toEqual(m);
    expect(parseManifest('{"type":"other"}')).toMatch(/not a cordon\.policy\.manifest\/v1 manifest/);
    expect(parseManifest(manifestText({ ...m, sequence: 0 }))).toMatch(/sequence must be a whole number from 1/);
  });
});

describe('signature status', () => {
  it('one governance signature over exactly the files: quorum 1 met, quorum 2 not', async () => {
    await sign(1, ['governance.sec.asc']);
    const found = await readSignatureDir(dir);
    const one = await signatureStatus(set, found, governance, 1);
    expect(one).toMatchObject({ sequence: 1, covers: true, met: true, problems: [], signers: [{ fingerprint: governance[0]!.fingerprint, userIds: [expect.stringContaining('governance@fixtures.cordon.test')] }] });
    expect(await signatureStatus(set, found, both, 2)).toMatchObject({ met: false, signers: [expect.anything()] });
  });

  it('two distinct signers meet quorum 2; the intruder alone is no signer of a governance-only file', async () => {
    await sign(2, ['governance.sec.asc', 'intruder.sec.asc']);
    const found = await readSignatureDir(dir);
    expect((await signatureStatus(set, found, both, 2)).met).toBe(true);
    const gov = await signatureStatus(set, found, governance, 2);
    expect(gov).toMatchObject({ met: false, signers: [expect.anything()], problems: [expect.stringMatching(/^signatures\/2-[0-9A-F]{40}\.asc: signed by key [0-9A-F]{16}, which is not in the signers file$/)] });
  });

  it('a manifest edited after signing, or a file edited after signing, does not count', async () => {
    const text = await sign(3, ['governance.sec.asc']);
    const other = set.files!.find((f) => f.rel === 'partners/dvla.yaml')!;
    await writeFile(path.join(dir, 'signatures/manifest.json'), text.replace(other.sha256, '0'.repeat(64)));
    const tampered = await signatureStatus(set, await readSignatureDir(dir), governance, 1);
    expect(tampered.met).toBe(false);
    expect(tampered.problems).toEqual(expect.arrayContaining(['partners/dvla.yaml changed since it was signed', expect.stringMatching(/^signatures\/3-[0-9A-F]{40}\.asc: by [0-9A-F]{40}: Signed digest did not match$/)]));
    await writeFile(path.join(dir, 'signatures/manifest.json'), text);
    const edited = { ...set, revision: 'ffffffffffffffff', files: set.files!.map((f) => (f.rel === 'gateway.yaml' ? { ...f, sha256: 'f'.repeat(64) } : f)) };
    expect(await signatureStatus(edited, await readSignatureDir(dir), governance, 1)).toMatchObject({ covers: false, met: false, problems: ['gateway.yaml changed since it was signed'] });
    const added = { ...set, files: [...set.files!, { rel: 'partners/new.yaml', sha256: 'a'.repeat(64) }] };
    expect((await signatureStatus(added, await readSignatureDir(dir), governance, 1)).problems).toEqual(['partners/new.yaml is not in the signed manifest']);
  });

  it('a signer key that has expired since it signed counts for nothing', async () => {
    const expired = await readSignerKeys(await key('expired.asc'), 'signers.asc');
    await sign(4, ['expired.sec.asc'], new Date('2020-01-01T12:00:00Z'));
    const status = await signatureStatus(set, await readSignatureDir(dir), expired, 1);
    expect(status).toMatchObject({ met: false, signers: [] });
    expect(status.problems.join('\n')).toMatch(/expired/i);
  });

  it('a signers file holding a secret key, or nothing, is refused', async () => {
    await expect(readSignerKeys(await key('governance.sec.asc'), 'signers.asc')).rejects.toMatchObject({ code: 'key_invalid', message: expect.stringMatching(/SECRET key/) });
    await expect(readSignerKeys('hello', 'signers.asc')).rejects.toMatchObject({ code: 'key_invalid', message: 'signers.asc holds no armored public key' });
  });
});

describe('the approver: quorum and no rollback', () => {
  it('records the applied sequence, refuses a lower one and the same one for another revision', async () => {
    const stateDir = path.join(tmp, 'state');
    const approve = policyApprover({ dir, signers: governance, quorum: 1, stateDir });
    await sign(5, ['governance.sec.asc']);
    const ok = await approve(set);
    expect(ok).toMatchObject({ ok: true, sequence: 5, signers: [governance[0]!.fingerprint] });
    if (ok.ok) await ok.commit();
    expect(await readAppliedSequence(stateDir)).toMatchObject({ sequence: 5, revision: set.revision });
    // The same signed set again (a restart): fine.
    expect((await approve(set)).ok).toBe(true);
    await sign(4, ['governance.sec.asc']);
    expect(await approve(set)).toMatchObject({ ok: false, refusal: 'rollback', message: expect.stringMatching(/signed at sequence 4, below sequence 5/) });
    // Sequence 5 for other content (a second manifest at a sequence already used): refused too.
    await writeFile(path.join(stateDir, SEQUENCE_FILE), JSON.stringify({ sequence: 5, revision: '0123456789abcdef', at: 'then' }));
    await sign(5, ['governance.sec.asc']);
    expect(await approve(set)).toMatchObject({ ok: false, refusal: 'rollback', message: expect.stringMatching(/sequence 5, the sequence of revision 0123456789abcdef/) });
    // A commit never lowers the record.
    await writeFile(path.join(stateDir, SEQUENCE_FILE), JSON.stringify({ sequence: 3, revision: set.revision, at: 'then' }));
    await sign(6, ['governance.sec.asc']);
    const six = await approve(set);
    await writeFile(path.join(stateDir, SEQUENCE_FILE), JSON.stringify({ sequence: 9, revision: 'later', at: 'then' }));
    if (six.ok) await six.commit();
    expect(await readAppliedSequence(stateDir)).toMatchObject({ sequence: 9 });
    // An unreadable record is not a fresh start.
    await writeFile(path.join(stateDir, SEQUENCE_FILE), '{"sequence": "x"}');
    await expect(approve(set)).rejects.toThrow(/not a policy sequence record/);
  });

  it('an unsigned set is refused as unsigned, saying how many signatures it has', async () => {
    await rm(path.join(dir, 'signatures'), { recursive: true, force: true });
    const approve = policyApprover({ dir, signers: governance, quorum: 1, stateDir: path.join(tmp, 'state2') });
    expect(await approve(set)).toMatchObject({ ok: false, refusal: 'unsigned', message: `revision ${set.revision} is not signed (0 of 1 required valid signature: no signatures/manifest.json: the set is not signed (cordon policy sign))` });
  });
});
