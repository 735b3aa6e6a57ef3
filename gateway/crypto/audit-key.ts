/**
 * The audit signing key: an Ed25519 key (node:crypto) with which the gateway signs every group commit
 * of audit records, so that whoever can write Redis cannot extend or rewrite the chain (a plain hash
 * chain they could recompute). It lives in the state directory beside the gateway's OpenPGP key
 * (`audit-signing-key.pem`, PKCS#8, created once like the other state files). Ed25519 rather than a
 * shared HMAC key: whoever verifies holds only the public half and so cannot forge.
 *
 * The public half is published in every signed checkpoint (the OpenPGP-signed statement names it), so
 * an auditor holding only the gateway's OpenPGP public key and an export learns it from the export.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readOrCreateStateFile } from './state-file.js';

export const AUDIT_KEY_FILE = 'audit-signing-key.pem';

/** The public half: verifies batch signatures. */
export interface AuditVerifyKey {
  /** SPKI DER, base64: how checkpoints publish it. */
  spki: string;
  /** SHA-256 of the SPKI DER, hex: a short name for it. */
  id: string;
  verify(text: string, signature: string): boolean;
}

/** The private key as well: signs batches (about 50 µs a signature). */
export interface AuditSigningKey extends AuditVerifyKey {
  sign(text: string): string;
}

function verifier(publicKey: KeyObject): AuditVerifyKey {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return {
    spki: der.toString('base64'),
    id: createHash('sha256').update(der).digest('hex'),
    verify(text, signature) {
      try {
        return verify(null, Buffer.from(text), publicKey, Buffer.from(signature, 'base64url'));
      } catch {
        return false;
      }
    },
  };
}

function signer(privateKey: KeyObject): AuditSigningKey {
  return { ...verifier(createPublicKey(privateKey)), sign: (text) => sign(null, Buffer.from(text), privateKey).toString('base64url') };
}

/** Parses a PKCS#8 PEM Ed25519 private key (the state directory's file). */
export function parseAuditSigningKey(pem: string): AuditSigningKey {
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`${AUDIT_KEY_FILE} is not an Ed25519 key`);
  return signer(key);
}

/** A public key as published: SPKI DER in base64, or a PEM public (or private) key. */
export function parseAuditVerifyKey(text: string): AuditVerifyKey {
  const trimmed = text.trim();
  const key = trimmed.startsWith('-----BEGIN')
    ? createPublicKey(trimmed)
    : createPublicKey({ key: Buffer.from(trimmed, 'base64'), format: 'der', type: 'spki' });
  if (key.asymmetricKeyType !== 'ed25519') throw new Error('the audit key is not an Ed25519 key');
  return verifier(key);
}

/** The gateway's audit signing key, created on first start (exactly once across processes). */
export function loadOrCreateAuditKey(stateDir: string): Promise<AuditSigningKey> {
  return readOrCreateStateFile(
    stateDir,
    AUDIT_KEY_FILE,
    async () => generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    async (pem) => parseAuditSigningKey(pem),
  );
}
