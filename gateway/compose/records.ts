/**
 * Authenticated records (store/record-mac.ts), wired: the MAC key from the keyring, every refused
 * record audited (`record.tampered`) and logged, and the one-time sealing of records written before
 * records were authenticated.
 *
 * The rule for those: a gateway starting on a state directory that has not sealed them yet seals every
 * dossier and packet record in Redis that has no MAC (`records.sealed`, with the count), then writes
 * `records-sealed.json` to the state directory; from then on a record without a MAC is tampered. So a
 * Redis writer who strips a record's MAC gains nothing unless an operator also starts a gateway on a
 * fresh state directory (which has a fresh master secret, so nothing sealed before would open anyway).
 */
import type { AuditLog } from '../audit/log.js';
import type { Keyring } from '../crypto/keyring.js';
import { readOrCreateStateFile } from '../crypto/state-file.js';
import { RecordMac, type Tampering } from '../store/record-mac.js';
import type { AuthenticatedRecords, RecordAuth } from '../store/records.js';
import type { Wiring } from './context.js';

const SEALED_FILE = 'records-sealed.json';

/** `audit`: the trail, once it exists (the stores are built before it). */
export function recordAuth({ logger }: Wiring, keyring: Keyring, audit: () => AuditLog | undefined): RecordAuth {
  return {
    mac: new RecordMac(keyring.recordMac),
    onTampered: async (t: Tampering) => {
      logger.error({ record: t.kind, id: t.id, problem: t.problem }, 'a stored record failed its integrity check and is refused');
      await audit()?.append({ kind: 'decision', action: 'record.tampered', record: t.kind, problem: t.problem, ...(t.kind === 'dossier' ? { dossier: t.id } : { packet: t.id }) });
    },
  };
}

/** Seals the records written before this version, once per state directory (see above). */
export async function sealLegacyRecords({ config, logger }: Wiring, records: AuthenticatedRecords, audit: AuditLog): Promise<void> {
  await readOrCreateStateFile(
    config.stateDir,
    SEALED_FILE,
    async () => {
      const count = await records.sealLegacy();
      if (count > 0) logger.warn({ count }, 'sealed the dossier and packet records written before records were authenticated');
      await audit.append({ kind: 'alteration', action: 'records.sealed', count, reason: 'records written before records were authenticated' });
      return JSON.stringify({ sealedAt: new Date().toISOString(), count }) + '\n';
    },
    async (content) => JSON.parse(content) as unknown,
  );
}
