/**
 * Signed policy revisions. Governance signs a manifest of the policy set: every file the set is loaded
 * from (gateway.yaml, partners/, sources/, peers/ and the key and CA files they name: exactly the
 * revision's inputs; not tests/, not the clients file) with the SHA-256 of its content, the revision
 * hash and a sequence number that grows with every newly signed set. The manifest and one detached
 * OpenPGP signature per signer sit beside the policies:
 *
 *   <policies>/signatures/manifest.json              what is signed (canonical JSON, these exact bytes)
 *   <policies>/signatures/<seq>-<fingerprint>.asc    one signer's detached signature over it
 *
 * With `CORDON_POLICY_SIGNERS` set, a set goes live only when the manifest covers exactly the files
 * loaded (so an edit after signing voids the signatures) and carries `CORDON_POLICY_QUORUM` valid
 * signatures from distinct keys of the signers file, and when its sequence is not below the last one
 * applied (no rollback to an older signed set; the same sequence only for the same revision). The last
 * applied sequence is kept in the state directory (`policy-sequence.json`), not in Redis: a Redis
 * writer cannot lower it, and the policy directory's writers cannot reach it.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { checkSignature, type SignerKey } from '../crypto/signers.js';
import { readStateFile, writeStateFile } from '../crypto/state-file.js';
import type { PolicySet } from '../policy/types.js';

export const SIGNATURES_DIR = 'signatures';
export const MANIFEST_NAME = 'manifest.json';
export const MANIFEST_TYPE = 'cordon.policy.manifest/v1';
export const SEQUENCE_FILE = 'policy-sequence.json';
const MAX_SIGNATURE_BYTES = 64 * 1024;
const MAX_MANIFEST_BYTES = 1024 * 1024;
const MAX_SIGNATURE_FILES = 100;

export interface Manifest {
  type: typeof MANIFEST_TYPE;
  sequence: number;
  revision: string;
  /** Relative path → SHA-256 (hex) of the content. */
  files: Record<string, string>;
}

/** What the signature directory holds, read as it is (nothing judged yet). */
export interface SignatureDir {
  manifest?: { text: string; value?: Manifest; problem?: string };
  signatures: Array<{ file: string; sequence?: number; text: string }>;
}

export interface SignatureStatus {
  revision: string;
  /** The manifest's sequence, when there is a readable manifest. */
  sequence?: number;
  /** The manifest names exactly the files of this set, with their content. */
  covers: boolean;
  /** Distinct signers whose signature is valid (only judged with a signers file). */
  signers: Array<{ fingerprint: string; userIds: string[] }>;
  quorum: number;
  met: boolean;
  /** Why signatures or the manifest do not count, one line each. */
  problems: string[];
}

export type Approval =
  | { ok: true; sequence: number; signers: string[]; commit(): Promise<void> }
  | { ok: false; refusal: 'unsigned' | 'rollback'; message: string };

/** The manifest of `set` at `sequence`. */
export function manifestFor(set: Pick<PolicySet, 'revision' | 'files'>, sequence: number): Manifest {
  return { type: MANIFEST_TYPE, sequence, revision: set.revision, files: Object.fromEntries((set.files ?? []).map((f) => [f.rel, f.sha256])) };
}

/** The bytes that are signed: fixed member order, sorted files, two-space indent, final newline. */
export function manifestText(m: Manifest): string {
  const files = Object.fromEntries(Object.entries(m.files).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return JSON.stringify({ type: m.type, sequence: m.sequence, revision: m.revision, files }, null, 2) + '\n';
}

export function parseManifest(text: string): Manifest | string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    return `${MANIFEST_NAME} is not JSON: ${(err as Error).message}`;
  }
  const m = v as Partial<Manifest> | null;
  if (m === null || typeof m !== 'object' || m.type !== MANIFEST_TYPE) return `${MANIFEST_NAME} is not a ${MANIFEST_TYPE} manifest`;
  if (!Number.isSafeInteger(m.sequence) || (m.sequence as number) < 1) return `${MANIFEST_NAME}: sequence must be a whole number from 1`;
  if (typeof m.revision !== 'string' || typeof m.files !== 'object' || m.files === null || Object.values(m.files).some((h) => typeof h !== 'string')) {
    return `${MANIFEST_NAME}: revision and files are required`;
  }
  return m as Manifest;
}

async function readCapped(file: string, max: number): Promise<string | undefined> {
  try {
    const info = await stat(file);
    if (!info.isFile() || info.size > max) return undefined;
    return await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

export async function readSignatureDir(policyDir: string): Promise<SignatureDir> {
  const dir = path.join(policyDir, SIGNATURES_DIR);
  const out: SignatureDir = { signatures: [] };
  const text = await readCapped(path.join(dir, MANIFEST_NAME), MAX_MANIFEST_BYTES);
  if (text !== undefined) {
    const parsed = parseManifest(text);
    out.manifest = typeof parsed === 'string' ? { text, problem: parsed } : { text, value: parsed };
  }
  let names: string[] = [];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.asc') && !n.startsWith('.')).sort();
  } catch {
    // no signatures directory: nothing is signed
  }
  for (const file of names.slice(0, MAX_SIGNATURE_FILES)) {
    const sig = await readCapped(path.join(dir, file), MAX_SIGNATURE_BYTES);
    if (sig === undefined) continue;
    const seq = /^(\d+)-/.exec(file)?.[1];
    out.signatures.push({ file, text: sig, ...(seq !== undefined ? { sequence: Number(seq) } : {}) });
  }
  return out;
}

/** How the manifest differs from the set's files, in a few words per file; empty when it covers them exactly. */
export function coverageProblems(set: Pick<PolicySet, 'revision' | 'files'>, m: Manifest): string[] {
  const problems: string[] = [];
  const now = new Map((set.files ?? []).map((f) => [f.rel, f.sha256]));
  for (const [rel, sha] of now) {
    if (!Object.hasOwn(m.files, rel)) problems.push(`${rel} is not in the signed manifest`);
    else if (m.files[rel] !== sha) problems.push(`${rel} changed since it was signed`);
  }
  for (const rel of Object.keys(m.files)) if (!now.has(rel)) problems.push(`${rel} was signed but is no longer part of the set`);
  if (problems.length === 0 && m.revision !== set.revision) problems.push(`the manifest names revision ${m.revision}, the files are revision ${set.revision}`);
  return problems;
}

/** Who signed `set` (as `dir` holds its signatures), judged against `signers` and `quorum`. */
export async function signatureStatus(set: Pick<PolicySet, 'revision' | 'files'>, found: SignatureDir, signers: readonly SignerKey[], quorum: number, now = new Date()): Promise<SignatureStatus> {
  const status: SignatureStatus = { revision: set.revision, covers: false, signers: [], quorum, met: false, problems: [] };
  const m = found.manifest;
  if (m === undefined) {
    status.problems.push(`no ${SIGNATURES_DIR}/${MANIFEST_NAME}: the set is not signed (cordon policy sign)`);
    return status;
  }
  if (m.value === undefined) {
    status.problems.push(m.problem!);
    return status;
  }
  status.sequence = m.value.sequence;
  const coverage = coverageProblems(set, m.value);
  status.covers = coverage.length === 0;
  status.problems.push(...coverage.slice(0, 10), ...(coverage.length > 10 ? [`and ${coverage.length - 10} more files`] : []));
  const mine = found.signatures.filter((s) => s.sequence === m.value!.sequence);
  if (mine.length === 0) status.problems.push(`no signature for sequence ${m.value.sequence}`);
  const seen = new Set<string>();
  for (const s of mine) {
    for (const check of await checkSignature(m.text, s.text, signers, now)) {
      if (!check.valid) status.problems.push(`${SIGNATURES_DIR}/${s.file}: ${check.problem}`);
      else if (!seen.has(check.fingerprint)) {
        seen.add(check.fingerprint);
        status.signers.push({ fingerprint: check.fingerprint, userIds: signers.find((k) => k.fingerprint === check.fingerprint)?.userIds ?? [] });
      }
    }
  }
  status.met = status.covers && status.signers.length >= quorum;
  return status;
}

export interface AppliedSequence {
  sequence: number;
  revision: string;
  at: string;
}

/** The last applied sequence; throws when the file exists but is unreadable (fail closed: no silent reset). */
export async function readAppliedSequence(stateDir: string): Promise<AppliedSequence | undefined> {
  const text = await readStateFile(stateDir, SEQUENCE_FILE);
  if (text === undefined) return undefined;
  const v = JSON.parse(text) as Partial<AppliedSequence>;
  if (!Number.isSafeInteger(v.sequence) || typeof v.revision !== 'string') throw new Error(`${SEQUENCE_FILE} in the state directory is not a policy sequence record`);
  return v as AppliedSequence;
}

/**
 * The gate a policy set passes before it goes live (start-up and every reload): signed by `quorum`
 * distinct signers over exactly its files, at a sequence not below the last applied. `commit()`
 * records the sequence once the set is live; it never lowers it.
 */
export function policyApprover(o: { dir: string; signers: readonly SignerKey[]; quorum: number; stateDir: string }): (set: PolicySet) => Promise<Approval> {
  return async (set) => {
    const status = await signatureStatus(set, await readSignatureDir(o.dir), o.signers, o.quorum);
    if (!status.met) {
      const count = `${status.signers.length} of ${o.quorum} required valid signature${o.quorum === 1 ? '' : 's'}`;
      return { ok: false, refusal: 'unsigned', message: `revision ${set.revision} is not signed (${count}${status.problems.length ? `: ${status.problems.join('; ')}` : ''})` };
    }
    const sequence = status.sequence!;
    const last = await readAppliedSequence(o.stateDir);
    if (last && (sequence < last.sequence || (sequence === last.sequence && last.revision !== set.revision))) {
      const why = sequence < last.sequence ? `below sequence ${last.sequence}` : `the sequence of revision ${last.revision}`;
      return { ok: false, refusal: 'rollback', message: `revision ${set.revision} is signed at sequence ${sequence}, ${why}, applied at ${last.at}: an older signed set is never applied again` };
    }
    return {
      ok: true,
      sequence,
      signers: status.signers.map((s) => s.fingerprint),
      commit: async () => {
        const again = await readAppliedSequence(o.stateDir);
        if (again && again.sequence >= sequence) return;
        await writeStateFile(o.stateDir, SEQUENCE_FILE, JSON.stringify({ sequence, revision: set.revision, at: new Date().toISOString() }) + '\n');
      },
    };
  };
}
