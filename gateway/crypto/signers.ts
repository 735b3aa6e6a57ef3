/**
 * Detached OpenPGP signatures by governance signers over a policy manifest (governance/signatures.ts):
 * `cordon policy sign` makes them with a signer's secret key; the gateway checks them against the
 * signers file (`CORDON_POLICY_SIGNERS`). Same settings as every other OpenPGP call (openpgp.ts CONFIG).
 *
 * A signature counts only when it verifies over the exact manifest bytes, by a key in the signers file
 * that is neither expired nor revoked now; every other outcome is a problem in words, never a throw,
 * so one bad file does not hide the good ones beside it.
 */
import * as openpgp from 'openpgp';
import { GatewayError } from '../errors/index.js';
import { CONFIG, normaliseFingerprint } from './openpgp.js';

const config = () => ({ ...openpgp.config, ...CONFIG });

export interface SignerKey {
  fingerprint: string;
  userIds: string[];
  key: openpgp.PublicKey;
}

export type SignatureCheck = { valid: true; fingerprint: string } | { valid: false; problem: string };

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Every public key of a signers file (armored, one or more blocks). Throws `key_invalid` naming the problem. */
export async function readSignerKeys(armored: string, file: string): Promise<SignerKey[]> {
  if (/-----BEGIN PGP PRIVATE KEY BLOCK-----/.test(armored)) throw new GatewayError('key_invalid', `${file} holds a SECRET key: a signers file holds public keys only`);
  const blocks = armored.match(/-----BEGIN PGP PUBLIC KEY BLOCK-----[\s\S]*?-----END PGP PUBLIC KEY BLOCK-----/g) ?? [];
  if (blocks.length === 0) throw new GatewayError('key_invalid', `${file} holds no armored public key`);
  const keys: SignerKey[] = [];
  for (const block of blocks) {
    let read: openpgp.Key[];
    try {
      read = await openpgp.readKeys({ armoredKeys: block, config: CONFIG });
    } catch (err) {
      throw new GatewayError('key_invalid', `${file}: not a readable OpenPGP public key: ${message(err)}`, undefined, { cause: err });
    }
    for (const k of read) keys.push({ fingerprint: normaliseFingerprint(k.getFingerprint()), userIds: k.getUserIDs(), key: k as openpgp.PublicKey });
  }
  return keys;
}

/** A detached signature over the UTF-8 bytes of `text` with a governance secret key (armored; decrypted with `passphrase` if protected). */
export async function signWithSecretKey(text: string, armoredSecret: string, passphrase?: string, now = new Date()): Promise<{ signature: string; fingerprint: string; userIds: string[] }> {
  let key: openpgp.PrivateKey;
  try {
    key = await openpgp.readPrivateKey({ armoredKey: armoredSecret, config: CONFIG });
  } catch (err) {
    throw new GatewayError('key_invalid', `not a readable OpenPGP secret key: ${message(err)}`, undefined, { cause: err });
  }
  if (!key.isDecrypted()) {
    if (passphrase === undefined) throw new GatewayError('key_invalid', 'the secret key is passphrase-protected: give --passphrase-file');
    try {
      key = await openpgp.decryptKey({ privateKey: key, passphrase, config: CONFIG });
    } catch (err) {
      throw new GatewayError('key_invalid', `cannot unlock the secret key: ${message(err)}`, undefined, { cause: err });
    }
  }
  try {
    await key.getSigningKey(undefined, now, undefined, config());
  } catch (err) {
    throw new GatewayError('key_invalid', `the key cannot sign now: ${message(err)}`, undefined, { cause: err });
  }
  const msg = await openpgp.createMessage({ binary: Buffer.from(text, 'utf8'), format: 'binary' });
  const signature = await openpgp.sign({ message: msg, signingKeys: key, detached: true, date: now, format: 'armored', config: CONFIG });
  return { signature, fingerprint: normaliseFingerprint(key.getFingerprint()), userIds: key.getUserIDs() };
}

/** One check per signature packet in `armoredSignature`, against the signers' keys at `now`. */
export async function checkSignature(text: string, armoredSignature: string, signers: readonly SignerKey[], now = new Date()): Promise<SignatureCheck[]> {
  let sig: openpgp.Signature;
  try {
    sig = await openpgp.readSignature({ armoredSignature, config: CONFIG });
  } catch (err) {
    return [{ valid: false, problem: `not a readable OpenPGP signature: ${message(err)}` }];
  }
  const issuers = sig.getSigningKeyIDs().map((id) => id.toHex().toUpperCase());
  const known = signers.filter((s) => s.key.getKeys().some((k) => issuers.includes(k.getKeyID().toHex().toUpperCase())));
  if (known.length === 0) return [{ valid: false, problem: `signed by key ${issuers.join(', ') || '(none named)'}, which is not in the signers file` }];
  const msg = await openpgp.createMessage({ binary: Buffer.from(text, 'utf8'), format: 'binary' });
  let result: { signatures: Array<{ keyID: openpgp.KeyID; verified: Promise<true> }> };
  try {
    result = await openpgp.verify({ message: msg, signature: sig, verificationKeys: known.map((s) => s.key), format: 'binary', date: now, config: CONFIG });
  } catch (err) {
    return [{ valid: false, problem: `cannot be verified: ${message(err)}` }];
  }
  const checks: SignatureCheck[] = [];
  for (const s of result.signatures) {
    const signer = known.find((k) => k.key.getKeys(s.keyID).length > 0);
    if (!signer) {
      checks.push({ valid: false, problem: `signed by key ${s.keyID.toHex().toUpperCase()}, which is not in the signers file` });
      continue;
    }
    try {
      await s.verified;
      // Valid when made is not enough: a signer revoked or expired since signs nothing any more.
      await signer.key.verifyPrimaryKey(now, undefined, config());
      checks.push({ valid: true, fingerprint: signer.fingerprint });
    } catch (err) {
      checks.push({ valid: false, problem: `by ${signer.fingerprint}: ${message(err)}` });
    }
  }
  return checks;
}

/** Who a signature says made it (key ids, unverified): for tools run without a signers file. */
export async function signatureIssuers(armoredSignature: string): Promise<string[]> {
  try {
    const sig = await openpgp.readSignature({ armoredSignature, config: CONFIG });
    return sig.getSigningKeyIDs().map((id) => id.toHex().toUpperCase());
  } catch {
    return [];
  }
}
