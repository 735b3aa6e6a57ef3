import { describe, expect, it } from 'vitest';
import { Keyring } from '../../gateway/crypto/keyring.js';
import { deriveKey } from '../../gateway/crypto/seal.js';
import { GatewayError } from '../../gateway/errors/index.js';

const master = Buffer.alloc(32, 9);

describe('Keyring', () => {
  it('derives every named key under the labels used since the first stored data', () => {
    const ring = new Keyring(master);
    expect(ring.seal.equals(deriveKey(master, 'seal'))).toBe(true);
    expect(ring.packetId.equals(deriveKey(master, 'packet-id'))).toBe(true);
    expect(ring.envelopeId.equals(deriveKey(master, 'envelope-id'))).toBe(true);
    expect(ring.hitId.equals(deriveKey(master, 'hit-id'))).toBe(true);
    expect(ring.auditIndex.equals(deriveKey(master, 'audit-index'))).toBe(true);
    expect(ring.linkIndex('west-midlands').equals(deriveKey(master, 'link-index:west-midlands'))).toBe(true);
    expect(ring.pseudonym('dvla').equals(deriveKey(master, 'pseudonym:dvla'))).toBe(true);
    expect(ring.peerPseudonym('met').equals(deriveKey(master, 'pseudonym:peer:met'))).toBe(true);
  });

  it('derives each key once and keeps it, and keeps the keys apart', () => {
    const ring = new Keyring(master);
    expect(ring.seal).toBe(ring.seal);
    expect(ring.pseudonym('dvla')).toBe(ring.pseudonym('dvla'));
    expect(ring.pseudonym('dvla').equals(ring.pseudonym('hmrc'))).toBe(false);
    expect(ring.pseudonym('met').equals(ring.peerPseudonym('met'))).toBe(false);
  });

  it('refuses a master secret that is too short when it is built', () => {
    expect(() => new Keyring(Buffer.alloc(16))).toThrow(GatewayError);
  });
});
