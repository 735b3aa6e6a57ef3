/**
 * `cordon policy sign`, and the "who signed this revision" lines of `policy lint` and `policy diff`.
 * The manifest, its signatures and how the gateway judges them: gateway/governance/signatures.ts.
 */
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readSignerKeys, signatureIssuers, signWithSecretKey, type SignerKey } from '../../gateway/crypto/signers.js';
import { GatewayError } from '../../gateway/errors/index.js';
import {
  coverageProblems,
  MANIFEST_NAME,
  manifestFor,
  manifestText,
  readSignatureDir,
  SIGNATURES_DIR,
  signatureStatus,
  type SignatureStatus,
} from '../../gateway/governance/signatures.js';
import { loadPolicySet } from '../../gateway/policy/load.js';
import type { PolicySet } from '../../gateway/policy/types.js';

const out = (s = '') => process.stdout.write(s + '\n');

function fail(message: string): never {
  process.exitCode = 1;
  throw new GatewayError('config_invalid', message);
}

async function writeAtomic(file: string, content: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, content, { mode: 0o644 });
  await rename(tmp, file);
}

export async function policySign(o: { policies: string; key: string; passphraseFile?: string; sequence?: string }): Promise<void> {
  let set: PolicySet;
  try {
    set = await loadPolicySet(o.policies);
  } catch (err) {
    if (err instanceof GatewayError && err.code === 'policy_invalid') fail(`${o.policies} does not load (${err.message}): run \`cordon policy lint\` first; only a set that loads can be signed`);
    throw err;
  }
  const armored = await readFile(o.key, 'utf8').catch((err: NodeJS.ErrnoException) => fail(`--key ${o.key}: ${err.code ?? err.message}`));
  const passphrase = o.passphraseFile === undefined ? undefined : (await readFile(o.passphraseFile, 'utf8').catch((err: NodeJS.ErrnoException) => fail(`--passphrase-file: ${err.code ?? err.message}`))).replace(/\r?\n$/, '');
  const wanted = o.sequence === undefined ? undefined : Number(o.sequence);
  if (wanted !== undefined && (!Number.isSafeInteger(wanted) || wanted < 1)) fail(`--sequence ${JSON.stringify(o.sequence)} is not a whole number from 1`);

  const found = await readSignatureDir(o.policies);
  const current = found.manifest?.value;
  const highest = Math.max(current?.sequence ?? 0, ...found.signatures.map((s) => s.sequence ?? 0));
  // The same files as the manifest already signed: add a signature to it (co-signing). Else a new
  // manifest whose sequence grows past every one signed before (no rollback).
  const coSign = current !== undefined && coverageProblems(set, current).length === 0 && (wanted === undefined || wanted === current.sequence);
  let text: string;
  let sequence: number;
  if (coSign) {
    text = found.manifest!.text;
    sequence = current.sequence;
  } else {
    sequence = wanted ?? highest + 1;
    if (sequence <= highest) fail(`--sequence ${sequence} must be above ${highest}, the highest sequence already signed here (an older sequence would be a rollback)`);
    text = manifestText(manifestFor(set, sequence));
  }
  const signed = await signWithSecretKey(text, armored, passphrase);
  const dir = path.join(o.policies, SIGNATURES_DIR);
  await mkdir(dir, { recursive: true });
  // The signature first, then the manifest it covers: a reload in between sees a set not yet signed.
  await writeAtomic(path.join(dir, `${sequence}-${signed.fingerprint}.asc`), signed.signature);
  if (!coSign) {
    await writeAtomic(path.join(dir, MANIFEST_NAME), text);
    for (const s of found.signatures) if (s.sequence !== sequence) await unlink(path.join(dir, s.file)).catch(() => undefined);
  }
  const others = found.signatures.filter((s) => coSign && s.sequence === sequence && !s.file.includes(signed.fingerprint)).length;
  out(`signed revision ${set.revision} at sequence ${sequence} as ${signed.fingerprint}${signed.userIds[0] ? ` (${signed.userIds[0]})` : ''}`);
  out(`  ${path.join(dir, `${sequence}-${signed.fingerprint}.asc`)}${coSign ? `, beside ${others} other signature${others === 1 ? '' : 's'} of this manifest` : `, new ${path.join(dir, MANIFEST_NAME)} (${Object.keys(manifestFor(set, sequence).files).length} files)`}`);
}

/** The signers file and quorum for lint and diff: --signers/--quorum, else CORDON_POLICY_SIGNERS/CORDON_POLICY_QUORUM. */
export async function signerOptions(o: { signers?: string; quorum?: string }): Promise<{ signers?: SignerKey[]; file?: string; quorum: number }> {
  const file = o.signers ?? (process.env.CORDON_POLICY_SIGNERS || undefined);
  const quorum = Number(o.quorum ?? (process.env.CORDON_POLICY_QUORUM || 1));
  if (!Number.isSafeInteger(quorum) || quorum < 1) fail(`--quorum ${JSON.stringify(o.quorum)} is not a whole number from 1`);
  if (file === undefined) return { quorum };
  const armored = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => fail(`signers file ${file}: ${err.code ?? err.message}`));
  return { signers: await readSignerKeys(armored, file), file, quorum };
}

export interface SignatureReport extends SignatureStatus {
  /** Without a signers file: who the signatures say made them (key ids), not verified. */
  unverifiedIssuers?: string[];
}

export async function signatureReport(dir: string, set: PolicySet, opts: { signers?: SignerKey[]; quorum: number }): Promise<SignatureReport> {
  const found = await readSignatureDir(dir);
  if (opts.signers) return signatureStatus(set, found, opts.signers, opts.quorum);
  const status: SignatureReport = await signatureStatus(set, found, [], opts.quorum);
  const seq = found.manifest?.value?.sequence;
  status.problems = status.problems.filter((p) => !/not in the signers file/.test(p));
  status.unverifiedIssuers = (await Promise.all(found.signatures.filter((s) => s.sequence === seq).map((s) => signatureIssuers(s.text)))).flat();
  return status;
}

/** Lines for a person: who signed, at which sequence, and whether that meets the quorum. */
export function signatureLines(r: SignatureReport): string[] {
  const lines: string[] = [];
  const seq = r.sequence !== undefined ? `sequence ${r.sequence}` : 'no manifest';
  if (r.sequence === undefined) {
    lines.push(`signatures: none${r.unverifiedIssuers === undefined ? `, 0 valid of ${r.quorum} required: quorum NOT met (this revision would be refused)` : ''}`);
  } else if (r.unverifiedIssuers !== undefined) {
    const by = r.unverifiedIssuers.length ? `signatures by key id ${r.unverifiedIssuers.join(', ')}` : 'no signatures';
    lines.push(`signatures: ${seq}, ${r.covers ? 'covers these files' : 'does NOT cover these files'}, ${by} (not verified: give --signers or CORDON_POLICY_SIGNERS)`);
  } else {
    lines.push(`signatures: ${seq}, ${r.signers.length} valid of ${r.quorum} required${r.covers ? '' : ', but over other files'}: ${r.met ? 'quorum met' : 'quorum NOT met (this revision would be refused)'}`);
    for (const s of r.signers) lines.push(`  signed by ${s.fingerprint}${s.userIds[0] ? ` ${s.userIds[0]}` : ''}`);
  }
  for (const p of r.problems) lines.push(`  - ${p}`);
  return lines;
}
