/**
 * The clients' keys: the party's own secret key (an armored file, or exported from its GnuPG home) and
 * the gateway's public key, pinned: a file the party saved once (`GET /v1/keys/gateway`, checked out of
 * band) and optionally its fingerprint. Nothing signed by another key is ever accepted.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { normaliseFingerprint, parseRecipientKey, readPublicKeyInfo, type GatewayKey, type RecipientKey } from '../crypto/openpgp.js';
import { loadPartyKey } from '../crypto/party-keys.js';
import { GatewayError } from '../errors/index.js';
import { ClientError } from './http.js';

export interface OwnKeySource {
  /** An armored secret key file. */
  secretKeyFile?: string;
  /** Or a GnuPG home holding the secret key, with the key's fingerprint (or user id) in `keyId`. */
  gnupgHome?: string;
  keyId?: string;
  /** A file holding the key's passphrase, when it is protected. */
  passphraseFile?: string;
}

export interface PinnedGateway {
  /** For verifying: the gateway's public key. */
  verify: RecipientKey['key'];
  /** For encrypting hits and answers to it. */
  recipient: RecipientKey;
  fingerprint: string;
}

async function readText(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new ClientError('config', `${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** `gpg --export-secret-keys`: the key stays protected as it is in the keyring; it is unlocked in memory only. */
async function exportFromGnupg(home: string, keyId: string, passphraseFile?: string): Promise<string> {
  const args = ['--homedir', home, '--batch', '--no-tty', '--armor', '--pinentry-mode', 'loopback'];
  if (passphraseFile) args.push('--passphrase-file', passphraseFile);
  args.push('--export-secret-keys', keyId);
  try {
    const { stdout } = await promisify(execFile)('gpg', args, { encoding: 'utf8', maxBuffer: 1 << 20 });
    if (!stdout.includes('-----BEGIN PGP PRIVATE KEY BLOCK-----')) throw new Error(`no secret key ${keyId} there`);
    return stdout;
  } catch (err) {
    throw new ClientError('config', `cannot export secret key ${keyId} from the GnuPG home ${home}: ${(err as Error).message.split('\n')[0]}`);
  }
}

export async function loadOwnKey(src: OwnKeySource): Promise<GatewayKey> {
  const passphrase = src.passphraseFile ? (await readText(src.passphraseFile, 'passphrase file')).replace(/\r?\n$/, '') : undefined;
  let armored: string;
  if (src.secretKeyFile) armored = await readText(src.secretKeyFile, 'secret key file');
  else if (src.gnupgHome) {
    if (!src.keyId) throw new ClientError('config', 'with a GnuPG home, name the key (--key-id FINGERPRINT)');
    armored = await exportFromGnupg(src.gnupgHome, src.keyId, src.passphraseFile);
  } else throw new ClientError('config', 'no secret key given (--key FILE, or --gnupg-home DIR with --key-id)');
  try {
    const key = await loadPartyKey(armored, passphrase);
    if (src.keyId && /^[0-9A-Fa-f\s]{40,}$/.test(src.keyId) && normaliseFingerprint(src.keyId) !== key.fingerprint) {
      throw new ClientError('config', `the secret key's fingerprint is ${key.fingerprint}, not ${normaliseFingerprint(src.keyId)}`);
    }
    return key;
  } catch (err) {
    if (err instanceof GatewayError) throw new ClientError('config', err.message);
    throw err;
  }
}

/** The gateway's pinned key: the file's key, and when `fingerprint` is given it must be that one. */
export async function loadPinnedGateway(file: string, fingerprint?: string): Promise<PinnedGateway> {
  const armored = await readText(file, "gateway's pinned public key");
  try {
    const info = await readPublicKeyInfo(armored);
    if (info.isPrivate) throw new ClientError('config', `${file} holds a secret key: pin the gateway's public key (GET /v1/keys/gateway)`);
    if (fingerprint !== undefined && normaliseFingerprint(fingerprint) !== info.fingerprint) {
      throw new ClientError('config', `${file} holds key ${info.fingerprint}, not the pinned ${normaliseFingerprint(fingerprint)}`);
    }
    const recipient = await parseRecipientKey(armored, info.fingerprint);
    return { verify: recipient.key, recipient, fingerprint: info.fingerprint };
  } catch (err) {
    if (err instanceof GatewayError) throw new ClientError('config', `${file}: ${err.message}`);
    throw err;
  }
}
