/** The record authentication (gateway/store/record-mac.ts) a test's own stores use. */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Keyring } from '../../gateway/crypto/keyring.js';
import { MASTER_KEY_FILE } from '../../gateway/crypto/seal.js';
import { RecordMac } from '../../gateway/store/record-mac.js';
import type { RecordAuth } from '../../gateway/store/records.js';

/** The running gateway's (its state directory's master secret): its records read, and are written, as its own. */
export function gatewayRecordAuth(stateDir: string): RecordAuth {
  const master = Buffer.from(readFileSync(path.join(stateDir, MASTER_KEY_FILE), 'utf8').trim(), 'hex');
  return { mac: new RecordMac(new Keyring(master).recordMac) };
}

/** A store of a test's own, with no gateway: any key. */
export function testRecordAuth(): RecordAuth {
  return { mac: new RecordMac(randomBytes(32)) };
}
