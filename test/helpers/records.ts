/** The record authentication (gateway/store/record-mac.ts) a test's own stores use. */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Keyring } from '../../gateway/crypto/keyring.js';
import { MASTER_KEY_FILE } from '../../gateway/crypto/seal.js';
import type { Redis } from 'ioredis';
import { RecordMac, type RecordKind } from '../../gateway/store/record-mac.js';
import { AuthenticatedRecords, type RecordAuth } from '../../gateway/store/records.js';
import { Keys } from '../../gateway/store/redis.js';

/** The running gateway's (its state directory's master secret): its records read, and are written, as its own. */
export function gatewayRecordAuth(stateDir: string): RecordAuth {
  const master = Buffer.from(readFileSync(path.join(stateDir, MASTER_KEY_FILE), 'utf8').trim(), 'hex');
  return { mac: new RecordMac(new Keyring(master).recordMac) };
}

/** A store of a test's own, with no gateway: any key. */
export function testRecordAuth(): RecordAuth {
  return { mac: new RecordMac(randomBytes(32)) };
}

/**
 * Changes a record the way the gateway itself would (signed with its key, compare-and-set): for tests
 * that set up a state (an expired packet, a notice not sent) which the gateway would reach in time.
 */
export async function changeRecordAsGateway(
  gw: { redis: Redis; prefix: string; config: { stateDir: string } },
  kind: RecordKind,
  id: string,
  change: { set?: Record<string, string>; del?: string[] },
): Promise<void> {
  const changed = await new AuthenticatedRecords(gw.redis, new Keys(gw.prefix), gatewayRecordAuth(gw.config.stateDir)).update(kind, id, () => change);
  if (!changed) throw new Error(`no ${kind} record ${id} to change`);
}
