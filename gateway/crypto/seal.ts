/**
 * At-rest sealing for everything the gateway keeps in Redis (node:crypto only).
 *
 * One master secret per deployment (`<stateDir>/master.key`, 32 random bytes, hex, mode 0600) is
 * never used directly: each use gets its own key through HKDF-SHA-256 with a label
 * (`deriveKey(master, 'dossier-store')`, `deriveKey(master, 'packet-ids')`, ...).
 *
 * `seal` is AES-256-GCM with a random 96-bit IV and a caller-chosen AAD that binds the ciphertext to
 * where it belongs (e.g. `dossier:<id>`), so a sealed value copied to another key does not unseal.
 * Format: `v1.<iv>.<tag>.<ciphertext>`, each part base64url without padding; `sealBytes` writes the
 * same in binary (`0x02 iv tag ciphertext`, a third smaller) for values Redis keeps as bytes, and
 * `unseal` opens either.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, randomFillSync } from 'node:crypto';
import { GatewayError } from '../errors/index.js';
import { readOrCreateStateFile } from './state-file.js';

export const MASTER_KEY_FILE = 'master.key';
const MASTER_KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const VERSION = 'v1';

/** Reads `<stateDir>/master.key` or creates it once (exclusive create, 0600, dir 0700). */
export async function loadOrCreateMasterSecret(stateDir: string): Promise<Buffer> {
  return readOrCreateStateFile(
    stateDir,
    MASTER_KEY_FILE,
    async () => `${randomBytes(MASTER_KEY_BYTES).toString('hex')}\n`,
    async (content) => {
      const hex = content.trim();
      if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
        throw new GatewayError('key_invalid', `${MASTER_KEY_FILE} must hold ${MASTER_KEY_BYTES} bytes as hex`);
      }
      return Buffer.from(hex, 'hex');
    },
  );
}

/** A 32-byte key for one purpose, derived from the master secret with HKDF-SHA-256. */
export function deriveKey(master: Buffer, label: string): Buffer {
  if (master.length < 32) throw new GatewayError('key_invalid', 'master secret must be at least 32 bytes');
  if (label.length === 0) throw new GatewayError('key_invalid', 'key derivation label must not be empty');
  return Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), Buffer.from(`cordon/v1/${label}`, 'utf8'), 32));
}

/**
 * IVs come from a pool of CSPRNG bytes refilled 4 KB at a time: a fan-out seals a dozen small values,
 * and one `randomBytes` call each cost more than the sealing. Each IV is copied out and its bytes never
 * handed out again, so no two seals share one.
 */
const ivPool = Buffer.alloc(4096);
let ivNext = ivPool.length;

function freshIv(): Buffer {
  if (ivNext + IV_BYTES > ivPool.length) {
    randomFillSync(ivPool);
    ivNext = 0;
  }
  const iv = Buffer.from(ivPool.subarray(ivNext, ivNext + IV_BYTES));
  ivNext += IV_BYTES;
  return iv;
}

function checkKey(key: Buffer): void {
  if (key.length !== 32) throw new GatewayError('key_invalid', 'sealing key must be 32 bytes');
}

/** AES-256-GCM; `aad` binds the result to its context and must be given again to unseal. */
export function seal(key: Buffer, plaintext: Buffer | string, aad: string): string {
  checkKey(key);
  const iv = freshIv();
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const data = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext;
  const ciphertext = Buffer.concat([cipher.update(data), cipher.final()]);
  const tag = cipher.getAuthTag();
  return [VERSION, iv.toString('base64url'), tag.toString('base64url'), ciphertext.toString('base64url')].join('.');
}

/** The first byte of a binary sealed value (a text one starts with `v`, 0x76). */
const BINARY_VERSION = 0x02;

/** `seal` in binary: `0x02 iv tag ciphertext`, for values stored as bytes. */
export function sealBytes(key: Buffer, plaintext: Buffer | string, aad: string): Buffer {
  checkKey(key);
  const iv = freshIv();
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const data = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext;
  const head = Buffer.allocUnsafe(1 + IV_BYTES + TAG_BYTES);
  head[0] = BINARY_VERSION;
  iv.copy(head, 1);
  const body = cipher.update(data);
  const last = cipher.final();
  cipher.getAuthTag().copy(head, 1 + IV_BYTES);
  return Buffer.concat([head, body, last]);
}

const B64URL = /^[A-Za-z0-9_-]*$/;

/**
 * Inverse of `seal` and `sealBytes` (a Buffer holding either form, as Redis returns it, opens too);
 * throws `crypto_failed` if the value was altered or the aad/key differ.
 */
export function unseal(key: Buffer, sealed: string | Buffer, aad: string): Buffer {
  checkKey(key);
  if (Buffer.isBuffer(sealed)) {
    if (sealed[0] !== BINARY_VERSION) return unseal(key, sealed.toString('utf8'), aad);
    if (sealed.length < 1 + IV_BYTES + TAG_BYTES) throw new GatewayError('crypto_failed', 'sealed value is malformed');
    return open(key, sealed.subarray(1, 1 + IV_BYTES), sealed.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES), sealed.subarray(1 + IV_BYTES + TAG_BYTES), aad);
  }
  const parts = sealed.split('.');
  if (parts.length !== 4 || parts[0] !== VERSION || !parts.slice(1).every((p) => B64URL.test(p))) {
    throw new GatewayError('crypto_failed', 'sealed value is malformed or of an unknown version');
  }
  const iv = Buffer.from(parts[1]!, 'base64url');
  const tag = Buffer.from(parts[2]!, 'base64url');
  const ciphertext = Buffer.from(parts[3]!, 'base64url');
  return open(key, iv, tag, ciphertext, aad);
}

function open(key: Buffer, iv: Buffer, tag: Buffer, ciphertext: Buffer, aad: string): Buffer {
  if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) {
    throw new GatewayError('crypto_failed', 'sealed value is malformed');
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch (err) {
    throw new GatewayError('crypto_failed', 'sealed value failed authentication (tampered, wrong key or wrong context)', undefined, {
      cause: err,
    });
  }
}

/** RFC 4648 base32 (lower case, no padding): opaque ids and pseudonyms that are safe in URLs and files. */
export function base32(bytes: Uint8Array): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let out = '';
  let bits = 0;
  let acc = 0;
  for (const b of bytes) {
    acc = ((acc << 8) | b) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(acc << (5 - bits)) & 31];
  return out;
}

/**
 * Deterministic opaque id: HMAC-SHA-256 over the parts (length-prefixed, so ('ab','c') and ('a','bc')
 * differ), base32 lower-case, first 26 characters (130 bits).
 */
export function hmacId(key: Buffer, ...parts: string[]): string {
  if (key.length < 16) throw new GatewayError('key_invalid', 'id key must be at least 16 bytes');
  // Length-prefixed parts in one buffer and one update: ids are made in hot loops (links, audit terms).
  const bytes = parts.map((part) => Buffer.from(part, 'utf8'));
  const input = Buffer.allocUnsafe(bytes.reduce((n, b) => n + 4 + b.length, 0));
  let at = 0;
  for (const b of bytes) {
    at = input.writeUInt32BE(b.length, at);
    at += b.copy(input, at);
  }
  return base32(createHmac('sha256', key).update(input).digest()).slice(0, 26);
}
