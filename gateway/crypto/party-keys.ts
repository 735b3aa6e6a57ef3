/**
 * A party's own OpenPGP secret key (a partner's or a force's), for the partner and force clients
 * (gateway/client/): they decrypt what the gateway sent them and sign what they send back. Unlike the
 * gateway's key, it may be passphrase-protected: it is unlocked in memory only.
 */
import * as openpgp from 'openpgp';
import { GatewayError } from '../errors/index.js';
import { CONFIG, normaliseFingerprint, type GatewayKey } from './openpgp.js';

/** Reads an armored secret key, unlocks it with `passphrase` when protected, and checks it can sign and decrypt now. */
export async function loadPartyKey(armored: string, passphrase?: string, now: Date = new Date()): Promise<GatewayKey> {
  let key: openpgp.PrivateKey;
  try {
    key = await openpgp.readPrivateKey({ armoredKey: armored, config: CONFIG });
  } catch (err) {
    throw new GatewayError('key_invalid', `not a readable OpenPGP secret key: ${(err as Error).message}`, undefined, { cause: err });
  }
  if (!key.isDecrypted()) {
    if (passphrase === undefined) throw new GatewayError('key_invalid', 'the secret key is passphrase-protected: give its passphrase');
    try {
      key = await openpgp.decryptKey({ privateKey: key, passphrase, config: CONFIG });
    } catch (err) {
      throw new GatewayError('key_invalid', `the passphrase does not unlock the secret key: ${(err as Error).message}`, undefined, { cause: err });
    }
  }
  const config = { ...openpgp.config, ...CONFIG };
  try {
    await key.getSigningKey(undefined, now, undefined, config);
    await key.getDecryptionKeys(undefined, now, undefined, config);
  } catch (err) {
    throw new GatewayError('key_invalid', `the secret key cannot sign or decrypt now: ${(err as Error).message}`, undefined, { cause: err });
  }
  const publicKey = key.toPublic();
  return { privateKey: key, publicKey, publicArmored: publicKey.armor(config), fingerprint: normaliseFingerprint(key.getFingerprint()) };
}
