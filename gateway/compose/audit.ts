/**
 * The audit trail, wired before the services that record to it (all but the store and mailbox). At
 * start-up its anchor is checked (a trail cut short, replaced or wiped refuses the start, unless the
 * operator accepts a new one), a trail written before group commits were signed gets its format-change
 * checkpoint, the policy set in force is recorded and a signed checkpoint is written. The shutdown checkpoint is pushed here, early
 * among the closers, so that on a clean stop it runs after the api and workers (pushed later, closed
 * first) have stopped, and before Redis (pushed earlier) is closed: the trail ends signed.
 */
import { gatewaySigner } from '../audit/checkpoint.js';
import { AuditLog } from '../audit/log.js';
import { loadOrCreateAuditKey } from '../crypto/audit-key.js';
import type { GatewayKey } from '../crypto/openpgp.js';
import type { Keyring } from '../crypto/keyring.js';
import { RedisAuditChain } from '../store/audit.js';
import type { Connection, Keys } from '../store/redis.js';
import type { Wiring } from './context.js';

export interface Secrets {
  master: Buffer;
  gatewayKey: GatewayKey;
}

export async function startAuditTrail(
  { config, logger, closers }: Wiring,
  redis: Connection,
  keys: Keys,
  { gatewayKey }: Secrets,
  keyring: Keyring,
  policyRevision: string,
  signed?: { policySequence: number; signers: string[] },
): Promise<AuditLog> {
  const audit = new AuditLog(new RedisAuditChain(redis, keys), {
    indexKey: keyring.auditIndex,
    signer: gatewaySigner(gatewayKey),
    auditKey: await loadOrCreateAuditKey(config.stateDir),
    checkpointEvery: config.auditCheckpointEvery,
    stateDir: config.stateDir,
    onBackgroundError: (err) => logger.error({ err: err.message }, 'audit checkpoint or anchor failed'),
  });
  // A trail cut short or replaced under us: refuse to start. A wiped one: the same, unless the operator
  // accepted a new trail, whose first record then says so.
  const restarted = await audit.checkAnchor(config.auditAcceptNewTrail);
  if (restarted) logger.error(restarted);
  // What was written after the anchored record (the last second before a crash) must chain from it.
  await audit.checkTail();
  // A trail from before group commits were signed: one checkpoint (OpenPGP-signed, naming the audit
  // key) vouches for it as it is; from the next record on every batch is signed.
  const head = await audit.head();
  if (head.seq > 0 && !head.sig) await audit.checkpoint('format-change');
  await audit.append({ kind: 'alteration', action: 'policy.loaded', policyRevision, reason: 'start-up', ...signed });
  await audit.checkpoint('start-up');
  // A checkpoint on a clean stop, so the trail ends signed; pushed early, it runs after the api and
  // workers have stopped and before Redis is closed.
  // The anchor is brought up to date even when the checkpoint cannot be written (a trail gone bad).
  closers.push(() => audit.checkpoint('shutdown').finally(() => audit.stopAnchoring()));
  const stopCheckpoints = audit.startCheckpointTimer(config.auditCheckpointIntervalMs);
  closers.push(async () => stopCheckpoints());
  return audit;
}
