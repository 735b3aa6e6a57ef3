/**
 * Packets kept as bytes: the same encrypt+sign as `encryptAndSign` (openpgp.ts, same CONFIG) without
 * the ASCII armor, a quarter smaller in the store, and the armor put back from those very bytes when a
 * partner retrieves the packet.
 */
import * as openpgp from 'openpgp';
import { GatewayError } from '../errors/index.js';
import { CONFIG, checkRecipientKey, errMessage, type GatewayKey, type RecipientKey } from './openpgp.js';

/** `encryptAndSign` as a binary OpenPGP message. */
export async function encryptAndSignBinary(plaintext: string, recipient: RecipientKey, signer: GatewayKey, now: Date = new Date()): Promise<Uint8Array> {
  await checkRecipientKey(recipient, now);
  try {
    const message = await openpgp.createMessage({ binary: Buffer.from(plaintext, 'utf8'), format: 'binary' });
    // A message made from a Buffer is written out as bytes, never as a stream.
    return (await openpgp.encrypt({ message, encryptionKeys: recipient.key, signingKeys: signer.privateKey, date: now, format: 'binary', config: CONFIG })) as Uint8Array;
  } catch (err) {
    throw new GatewayError('crypto_failed', `encrypt and sign failed: ${errMessage(err)}`, undefined, { cause: err });
  }
}

/**
 * A stored message as partners receive it: armored. A binary OpenPGP message (its first byte has the
 * high bit set) is armored as `encryptAndSign` would have armored it; text (an armored message stored
 * before packets were kept binary, or a recall notice) is returned as it is.
 */
export async function armorMessage(stored: string | Uint8Array): Promise<string> {
  if (typeof stored === 'string') return stored;
  if (stored.length === 0 || (stored[0]! & 0x80) === 0) return Buffer.from(stored).toString('utf8');
  try {
    // A copy of its own: a Buffer from the Redis client is a view into a larger one, and openpgp.js
    // reads some inputs through their whole underlying ArrayBuffer.
    const bytes = new Uint8Array(stored);
    // Parsed to check it is a message and to choose the CRC24 footer as Message.armor() does (none
    // after a v2 SEIPD packet); armored from the stored bytes themselves, not a re-encoding.
    const message = await openpgp.readMessage({ binaryMessage: bytes, config: CONFIG });
    const last = message.packets[message.packets.length - 1];
    const version = (p: unknown) => (p as { version: number }).version;
    const emitChecksum =
      last instanceof openpgp.SymEncryptedIntegrityProtectedDataPacket ? version(last) !== 2 : message.packets.some((p) => p instanceof openpgp.SignaturePacket && version(p) !== 6);
    return openpgp.armor(openpgp.enums.armor.message, bytes, undefined, undefined, undefined, emitChecksum, { ...openpgp.config, ...CONFIG } as openpgp.Config);
  } catch (err) {
    throw new GatewayError('crypto_failed', `a stored message does not parse: ${errMessage(err)}`, undefined, { cause: err });
  }
}
