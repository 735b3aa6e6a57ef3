/** The record MAC (gateway/store/record-mac.ts): what it binds, and what it leaves to other seals. */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RecordMac } from '../../gateway/store/record-mac.js';

const mac = new RecordMac(randomBytes(32));
const ID = `pkt_${'a'.repeat(52)}`;
const fields = { id: ID, partner: 'dvla', dossier: `dos_${'1'.repeat(32)}`, state: 'delivered', expiresAt: '2027-01-01T00:00:00.000Z' };

function stored(version: number, f: Record<string, string> = fields): Record<string, string> {
  return { ...f, v: String(version), mac: mac.sign('packet', ID, version, f) };
}

describe('RecordMac', () => {
  it('accepts a record as signed, whatever the order of its fields', () => {
    const reversed = Object.fromEntries(Object.entries(stored(3)).reverse());
    expect(mac.check('packet', ID, reversed, '3')).toEqual({ version: 3 });
  });

  it('refuses any changed, added or removed authenticated field', () => {
    expect(mac.check('packet', ID, { ...stored(1), partner: 'hmrc' }, '1')).toEqual({ problem: 'mac_invalid' });
    expect(mac.check('packet', ID, { ...stored(1), type: 'recall' }, '1')).toEqual({ problem: 'mac_invalid' });
    const { state: _state, ...without } = stored(1);
    expect(mac.check('packet', ID, without, '1')).toEqual({ problem: 'mac_invalid' });
  });

  it('binds the id, the kind and the version', () => {
    expect(mac.check('packet', `pkt_${'b'.repeat(52)}`, stored(1), '1')).toEqual({ problem: 'mac_invalid' });
    expect(mac.check('dossier', ID, stored(1), '1')).toEqual({ problem: 'mac_invalid' });
    expect(mac.check('packet', ID, { ...stored(1), v: '2' }, '2')).toEqual({ problem: 'mac_invalid' });
  });

  it('refuses a record older than its version key, or without one, or without a MAC', () => {
    expect(mac.check('packet', ID, stored(1), '2')).toEqual({ problem: 'version_stale' });
    expect(mac.check('packet', ID, stored(1), null)).toEqual({ problem: 'version_missing' });
    const { mac: _m, ...bare } = stored(1);
    expect(mac.check('packet', ID, bare, '1')).toEqual({ problem: 'mac_missing' });
  });

  it('leaves out the fields sealed or encrypted elsewhere (message, refs, subjects)', () => {
    expect(mac.check('packet', ID, { ...stored(1), message: 'other ciphertext', refs: 'x', subjects: 'y' }, '1')).toEqual({ version: 1 });
  });

  it('is keyed: another key refuses the record', () => {
    expect(new RecordMac(randomBytes(32)).check('packet', ID, stored(1), '1')).toEqual({ problem: 'mac_invalid' });
  });
});
