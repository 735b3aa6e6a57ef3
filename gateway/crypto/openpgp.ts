/**
 * OpenPGP for the gateway: its own key, partners' pinned public keys, encrypt+sign of packets and
 * hits bundles, decrypt+verify of peer envelopes. Only this module, signers.ts (governance signatures
 * over policy manifests), party-keys.ts (the clients' own keys) and binary.ts (packets kept as bytes),
 * with the same CONFIG, import `openpgp`.
 *
 * Interoperability (packets must open with GnuPG 2.2 and Sequoia `sq`):
 * - The gateway key is a v4 key, Ed25519 (legacy EdDSA) primary + Curve25519 (legacy) ECDH subkey.
 *   openpgp.js v6's default `curve25519` type makes RFC 9580 v6 keys that GnuPG 2.2 cannot read.
 * - Messages are SEIPDv1 (MDC) unless *every* recipient key advertises the SEIPDv2 feature; GnuPG
 *   keys never do (2.4 advertises LibrePGP's OCB flag, which openpgp.js ignores). `aeadProtect` is
 *   off, so the gateway key does not advertise SEIPDv2 either and peers encrypt to it with SEIPDv1.
 * - Uncompressed, binary literal data: the partner gets back exactly the bytes we signed (text mode
 *   would turn LF into CRLF in what gpg writes out).
 *
 * Cost: parse keys once (`loadOrCreateGatewayKey`, `parseRecipientKey`) and reuse the objects.
 */
import * as openpgp from 'openpgp';
import { GatewayError } from '../errors/index.js';
import { readOrCreateStateFile } from './state-file.js';

export const GATEWAY_KEY_FILE = 'gateway-key.asc';
export const MAX_DECOMPRESSED_MESSAGE_SIZE = 16 * 1024 * 1024;
/** How long a successful `checkRecipientKey` is trusted before the signatures are verified again. */
export const RECIPIENT_CHECK_TTL_MS = 60_000;

/**
 * One config for every call: explicit, so a library default changing under us is visible here.
 * Exported for the benchmark's bare-openpgp.js baseline, which must run with exactly these settings.
 */
export const CONFIG: openpgp.PartialConfig = {
  v6Keys: false,
  aeadProtect: false,
  preferredSymmetricAlgorithm: openpgp.enums.symmetric.aes256,
  preferredHashAlgorithm: openpgp.enums.hash.sha512,
  preferredCompressionAlgorithm: openpgp.enums.compression.uncompressed,
  maxDecompressedMessageSize: MAX_DECOMPRESSED_MESSAGE_SIZE,
  allowUnauthenticatedMessages: false,
  allowUnauthenticatedStream: false,
  showVersion: false,
  showComment: false,
};

export interface GatewayKey {
  privateKey: openpgp.PrivateKey;
  publicKey: openpgp.PublicKey;
  publicArmored: string;
  /** Primary key fingerprint, 40 upper-case hex digits. */
  fingerprint: string;
}

export interface RecipientKey {
  fingerprint: string;
  key: openpgp.PublicKey;
  /** When the primary key or the selected encryption subkey stops being valid; null if never. */
  expiresAt: Date | null;
}

export type RecipientKeyProblem =
  | 'fingerprint_mismatch'
  | 'expired'
  | 'revoked'
  | 'no_encryption_key'
  | 'private_key'
  | 'unreadable';

export interface PublicKeyInfo {
  fingerprint: string;
  userIds: string[];
  expiresAt: Date | null;
  revoked: boolean;
  isPrivate: boolean;
}

function recipientError(reason: RecipientKeyProblem, message: string, cause?: unknown): GatewayError {
  return new GatewayError('recipient_key_invalid', `${reason}: ${message}`, [{ message, reason }], { cause });
}

export function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Upper-case hex without spaces (fingerprints are quoted as "ABCD 1234 ..." or lower case). */
export function normaliseFingerprint(fp: string): string {
  return fp.replace(/\s+/g, '').toUpperCase();
}

// ---------------------------------------------------------------------------------------------
// The gateway's own key

async function parseGatewayKey(armored: string): Promise<GatewayKey> {
  let privateKey: openpgp.PrivateKey;
  try {
    privateKey = await openpgp.readPrivateKey({ armoredKey: armored, config: CONFIG });
  } catch (err) {
    throw new GatewayError('key_invalid', `${GATEWAY_KEY_FILE} is not a readable OpenPGP private key: ${errMessage(err)}`, undefined, { cause: err });
  }
  if (!privateKey.isDecrypted()) {
    throw new GatewayError('key_invalid', `${GATEWAY_KEY_FILE} is passphrase-protected; the gateway key must not be`);
  }
  try {
    await privateKey.getSigningKey(undefined, new Date(), undefined, { ...openpgp.config, ...CONFIG });
    await privateKey.getEncryptionKey(undefined, new Date(), undefined, { ...openpgp.config, ...CONFIG });
  } catch (err) {
    throw new GatewayError('key_invalid', `${GATEWAY_KEY_FILE} cannot sign or encrypt now: ${errMessage(err)}`, undefined, { cause: err });
  }
  const publicKey = privateKey.toPublic();
  return { privateKey, publicKey, publicArmored: publicKey.armor({ ...openpgp.config, ...CONFIG }), fingerprint: normaliseFingerprint(privateKey.getFingerprint()) };
}

async function generateGatewayKeyArmored(): Promise<string> {
  const { privateKey } = await openpgp.generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ name: 'Cordon gateway' }], format: 'armored', config: CONFIG });
  return privateKey;
}

/**
 * Reads `<stateDir>/gateway-key.asc`, or generates and stores it (0600, dir 0700) if absent. When
 * several processes start at once, exactly one key is created and all of them end up using it.
 * Call once at start-up and pass the result around: it holds the parsed keys.
 */
export async function loadOrCreateGatewayKey(stateDir: string): Promise<GatewayKey> {
  return readOrCreateStateFile(stateDir, GATEWAY_KEY_FILE, generateGatewayKeyArmored, parseGatewayKey);
}

// ---------------------------------------------------------------------------------------------
// Recipients' public keys (partners, sources, peers), pinned by fingerprint

async function readSinglePublicKey(armored: string): Promise<openpgp.PublicKey> {
  if (/-----BEGIN PGP PRIVATE KEY BLOCK-----/.test(armored)) {
    throw recipientError('private_key', 'a private key block was supplied; only public keys are accepted');
  }
  const blocks = armored.match(/^-----BEGIN PGP [A-Z ]+-----/gm) ?? [];
  if (blocks.length !== 1) {
    throw recipientError('unreadable', `expected exactly one armored public key block, found ${blocks.length}`);
  }
  let keys: openpgp.Key[];
  try {
    keys = await openpgp.readKeys({ armoredKeys: armored, config: CONFIG });
  } catch (err) {
    throw recipientError('unreadable', `not a readable OpenPGP public key: ${errMessage(err)}`, err);
  }
  if (keys.length !== 1) {
    throw recipientError('unreadable', `expected exactly one public key, found ${keys.length}`);
  }
  const key = keys[0]!;
  if (key.isPrivate()) {
    throw recipientError('private_key', 'a private key was supplied; only public keys are accepted');
  }
  return key as openpgp.PublicKey;
}

/** Full validity check at `now`; returns the expiry. Throws `recipient_key_invalid`. */
async function validateRecipient(key: openpgp.PublicKey, now: Date): Promise<Date | null> {
  const config = { ...openpgp.config, ...CONFIG };
  const fp = normaliseFingerprint(key.getFingerprint());
  try {
    await key.verifyPrimaryKey(now, undefined, config);
  } catch (err) {
    const msg = errMessage(err);
    if (/revoked/i.test(msg)) throw recipientError('revoked', `key ${fp} is revoked`, err);
    if (/expired/i.test(msg)) throw recipientError('expired', `key ${fp} has expired`, err);
    throw recipientError('unreadable', `key ${fp} has no valid self-signature: ${msg}`, err);
  }
  let encryptionKey: openpgp.PublicKey | openpgp.Subkey;
  try {
    encryptionKey = await key.getEncryptionKey(undefined, now, undefined, config);
  } catch (err) {
    throw recipientError('no_encryption_key', `key ${fp} has no valid encryption key at ${now.toISOString()}`, err);
  }
  const primaryExpiry = await key.getExpirationTime(undefined, config);
  const subkeyExpiry =
    encryptionKey === key ? primaryExpiry : await (encryptionKey as openpgp.Subkey).getExpirationTime(now, config);
  const dates = [primaryExpiry, subkeyExpiry].filter((d): d is Date => d instanceof Date);
  if (dates.length === 0) return null;
  return new Date(Math.min(...dates.map((d) => d.getTime())));
}

const lastGoodCheck = new WeakMap<RecipientKey, number>();

/**
 * Parses a partner's (or source's, or peer's) public key, checks it is the pinned one and usable for
 * encryption at `now`. Refuses private key blocks: the gateway never holds partners' secrets.
 */
export async function parseRecipientKey(armored: string, pinnedFingerprint: string, now: Date = new Date()): Promise<RecipientKey> {
  const pinned = normaliseFingerprint(pinnedFingerprint);
  if (!/^[0-9A-F]{40}$|^[0-9A-F]{64}$/.test(pinned)) {
    throw recipientError('fingerprint_mismatch', 'the pinned fingerprint is not 40 (v4) or 64 (v6) hex digits');
  }
  const key = await readSinglePublicKey(armored);
  const fingerprint = normaliseFingerprint(key.getFingerprint());
  if (fingerprint !== pinned) {
    throw recipientError('fingerprint_mismatch', `key fingerprint ${fingerprint} does not match the pinned ${pinned}`);
  }
  const expiresAt = await validateRecipient(key, now);
  const rk: RecipientKey = { fingerprint, key, expiresAt };
  lastGoodCheck.set(rk, now.getTime());
  return rk;
}

/**
 * Re-checks a parsed recipient key at use time. Expiry is compared on every call; the full check
 * (revocation and self-signature verification, ~1 ms) is redone at most every 60 s per key. A parsed
 * key never changes, so a revocation only appears with a new key file (and a new `parseRecipientKey`).
 */
export async function checkRecipientKey(rk: RecipientKey, now: Date = new Date()): Promise<void> {
  if (rk.expiresAt !== null && now.getTime() >= rk.expiresAt.getTime()) {
    throw recipientError('expired', `key ${rk.fingerprint} expired at ${rk.expiresAt.toISOString()}`);
  }
  const last = lastGoodCheck.get(rk);
  const age = last === undefined ? Infinity : now.getTime() - last;
  if (age >= 0 && age <= RECIPIENT_CHECK_TTL_MS) return;
  await validateRecipient(rk.key, now);
  lastGoodCheck.set(rk, now.getTime());
}

/** For `cordon keys list/import`: what a key file holds, without judging it against a pin. */
export async function readPublicKeyInfo(armored: string): Promise<PublicKeyInfo> {
  let key: openpgp.Key;
  try {
    key = await openpgp.readKey({ armoredKey: armored, config: CONFIG });
  } catch (err) {
    throw new GatewayError('key_invalid', `not a readable OpenPGP key: ${errMessage(err)}`, undefined, { cause: err });
  }
  const config = { ...openpgp.config, ...CONFIG };
  const revoked = await key.isRevoked(undefined, undefined, new Date(), config).catch(() => false);
  const expiry = await key.getExpirationTime(undefined, config).catch(() => null);
  return {
    fingerprint: normaliseFingerprint(key.getFingerprint()),
    userIds: key.getUserIDs(),
    expiresAt: expiry instanceof Date ? expiry : null,
    revoked,
    isPrivate: key.isPrivate(),
  };
}

// ---------------------------------------------------------------------------------------------
// Messages

/**
 * Encrypts `plaintext` (UTF-8, carried as binary literal data so bytes are preserved exactly) to the
 * recipient and signs it with the gateway key. Returns an armored OpenPGP message.
 * Throws `recipient_key_invalid` if the recipient key is no longer usable, `crypto_failed` otherwise.
 */
export async function encryptAndSign(
  plaintext: string,
  recipient: RecipientKey,
  signer: GatewayKey,
  now: Date = new Date(),
): Promise<string> {
  await checkRecipientKey(recipient, now);
  try {
    const message = await openpgp.createMessage({ binary: Buffer.from(plaintext, 'utf8'), format: 'binary' });
    return await openpgp.encrypt({ message, encryptionKeys: recipient.key, signingKeys: signer.privateKey, date: now, format: 'armored', config: CONFIG });
  } catch (err) {
    throw new GatewayError('crypto_failed', `encrypt and sign failed: ${errMessage(err)}`, undefined, { cause: err });
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decrypts an armored message with `decryptionKey` and requires a valid signature by one of
 * `verificationKeys`. Any failure (malformed, tampered, unsigned, signed by someone else, too large
 * when decompressed, not UTF-8) throws `crypto_failed`.
 *
 * The signing key must be valid at `now` too, not only when the signature says it was made: openpgp.js
 * checks the key at the signature's own creation time, so a key that has expired (or been revoked)
 * since would still verify a back-dated signature. Such a signature, or one dated ahead of `now`,
 * throws `recipient_key_invalid` naming the key.
 */
export async function decryptAndVerify(
  armored: string,
  decryptionKey: openpgp.PrivateKey,
  verificationKeys: openpgp.PublicKey[],
  now: Date = new Date(),
): Promise<{ data: string; signerFingerprint: string }> {
  if (verificationKeys.length === 0) throw new GatewayError('crypto_failed', 'no verification keys given');
  let message: openpgp.Message<string>;
  try {
    message = await openpgp.readMessage({ armoredMessage: armored, config: CONFIG });
  } catch (err) {
    throw new GatewayError('crypto_failed', `not a readable OpenPGP message: ${errMessage(err)}`, undefined, { cause: err });
  }
  let result: Awaited<ReturnType<typeof decryptBinary>>;
  try {
    result = await decryptBinary(message, decryptionKey, verificationKeys);
  } catch (err) {
    throw new GatewayError('crypto_failed', `decrypt or verify failed: ${errMessage(err)}`, undefined, { cause: err });
  }
  let signerFingerprint: string | undefined;
  for (const sig of result.signatures) {
    try {
      await sig.verified;
    } catch {
      continue;
    }
    const signer = verificationKeys.find((k) => k.getKeys(sig.keyID).length > 0);
    if (signer) {
      await checkSignerNow(signer, sig, now);
      signerFingerprint = normaliseFingerprint(signer.getFingerprint());
      break;
    }
  }
  if (signerFingerprint === undefined) {
    throw new GatewayError('crypto_failed', 'message carries no valid signature from an expected signer');
  }
  let data: string;
  try {
    data = utf8.decode(result.data);
  } catch (err) {
    throw new GatewayError('crypto_failed', 'decrypted data is not valid UTF-8', undefined, { cause: err });
  }
  return { data, signerFingerprint };
}

/** How far ahead of this clock a signature's creation time may be (the signer's clock may run fast). */
export const SIGNATURE_CLOCK_SKEW_MS = 5 * 60_000;

/** The signing (sub)key valid now, and the signature made no later than now: else `recipient_key_invalid`. */
async function checkSignerNow(signer: openpgp.PublicKey, sig: { keyID: openpgp.KeyID; signature: Promise<openpgp.Signature> }, now: Date): Promise<void> {
  const config = { ...openpgp.config, ...CONFIG };
  const fp = normaliseFingerprint(signer.getFingerprint());
  const created = (await sig.signature).packets[0]?.created;
  if (!(created instanceof Date) || created.getTime() > now.getTime() + SIGNATURE_CLOCK_SKEW_MS) {
    throw new GatewayError('recipient_key_invalid', `the signature by key ${fp} is dated in the future (${created instanceof Date ? created.toISOString() : 'no date'}); nothing was stored`);
  }
  try {
    await signer.getSigningKey(sig.keyID, now, undefined, config);
  } catch (err) {
    const why = /revoked/i.test(errMessage(err)) ? 'revoked' : /expired/i.test(errMessage(err)) ? 'expired' : 'not valid';
    throw new GatewayError('recipient_key_invalid', `the signing key ${fp} is ${why} now: a signature dated ${created.toISOString()} by it is not accepted; nothing was stored`, undefined, { cause: err });
  }
}

function decryptBinary(message: openpgp.Message<string>, decryptionKey: openpgp.PrivateKey, verificationKeys: openpgp.PublicKey[]) {
  return openpgp.decrypt({ message, decryptionKeys: decryptionKey, verificationKeys, expectSigned: true, format: 'binary', config: CONFIG });
}

/** Armored key parsing for tools (CLI demo, tests) that hold keys outside the gateway. */
export async function parseArmoredPrivateKey(armored: string): Promise<openpgp.PrivateKey> {
  return openpgp.readPrivateKey({ armoredKey: armored, config: CONFIG });
}

export async function parseArmoredPublicKey(armored: string): Promise<openpgp.PublicKey> {
  return openpgp.readKey({ armoredKey: armored, config: CONFIG }) as Promise<openpgp.PublicKey>;
}

// ---------------------------------------------------------------------------------------------
// Detached signatures (audit checkpoints)

/** An armored detached signature by the gateway key over the UTF-8 bytes of `text`. */
export async function signDetached(text: string, signer: GatewayKey, now: Date = new Date()): Promise<string> {
  try {
    const message = await openpgp.createMessage({ binary: Buffer.from(text, 'utf8'), format: 'binary' });
    return await openpgp.sign({ message, signingKeys: signer.privateKey, detached: true, date: now, format: 'armored', config: CONFIG });
  } catch (err) {
    throw new GatewayError('crypto_failed', `detached signing failed: ${errMessage(err)}`, undefined, { cause: err });
  }
}

const verificationKeyCache = new Map<string, Promise<openpgp.Key>>();

/**
 * Checks an armored detached signature over `text` against `armoredKey` (a public key, or the
 * gateway's private key file, whose public part is used). Never throws for a bad signature: returns
 * `{ valid: false, problem }`; throws `key_invalid` only when the key itself is unreadable.
 */
export async function verifyDetached(
  text: string,
  signature: string,
  armoredKey: string,
): Promise<{ valid: true; fingerprint: string } | { valid: false; problem: string }> {
  let keyPromise = verificationKeyCache.get(armoredKey);
  if (!keyPromise) {
    keyPromise = openpgp.readKey({ armoredKey, config: CONFIG });
    verificationKeyCache.set(armoredKey, keyPromise);
    keyPromise.catch(() => verificationKeyCache.delete(armoredKey));
  }
  let key: openpgp.Key;
  try {
    key = await keyPromise;
  } catch (err) {
    throw new GatewayError('key_invalid', `not a readable OpenPGP key: ${errMessage(err)}`, undefined, { cause: err });
  }
  const verificationKey = key.isPrivate() ? key.toPublic() : key;
  try {
    const sig = await openpgp.readSignature({ armoredSignature: signature, config: CONFIG });
    const message = await openpgp.createMessage({ binary: Buffer.from(text, 'utf8'), format: 'binary' });
    const result = await openpgp.verify({ message, signature: sig, verificationKeys: verificationKey, expectSigned: true, format: 'binary', config: CONFIG });
    await result.signatures[0]!.verified;
    return { valid: true, fingerprint: normaliseFingerprint(verificationKey.getFingerprint()) };
  } catch (err) {
    return { valid: false, problem: errMessage(err) };
  }
}
