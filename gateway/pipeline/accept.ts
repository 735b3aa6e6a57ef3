/**
 * Accept: the step every dossier entering the gateway goes through, whoever sent it (a force over
 * HTTP, gateway/intake; another force's gateway in an envelope, gateway/exchange/inbound.ts). Seal it
 * under its new id, store it with one queued delivery per partner, audit the collection, schedule the
 * erasure of its status record, and queue its fan-out. If any step after storing fails, everything
 * stored is undone and the sender is told to retry: a dossier is accepted whole or not at all.
 */
import { randomBytes } from 'node:crypto';
import type { AuditEvent, AuditLog } from '../audit/log.js';
import { seal } from '../crypto/seal.js';
import type { Dossier } from '../dossier/types.js';
import { GatewayError } from '../errors/index.js';
import { dossierDueMember, STATUS_RETENTION_MS } from '../retention/schedule.js';
import type { DossierRecord, DossierStore } from '../store/dossiers.js';

export function newDossierId(): string {
  return 'dos_' + randomBytes(16).toString('hex');
}

/** A new dossier's status record: accepted, for every partner of the policy set in force. */
export function newRecord(id: string, source: string, client: string, set: { revision: string; partners: Map<string, unknown> }): DossierRecord {
  return { id, source, client, receivedAt: new Date().toISOString(), state: 'accepted', revision: set.revision, partners: [...set.partners.keys()].sort() };
}

export interface AcceptDeps {
  store: DossierStore;
  audit: AuditLog;
  sealKey: Buffer;
  /** The retention schedule: the dossier's status record is erased (and audited) when its retention ends. */
  retention?: { schedule(member: string, due: Date): Promise<void> };
  /** Queues the dossier's fan-out. */
  enqueue(id: string): Promise<void>;
}

export interface Acceptance {
  record: DossierRecord;
  dossier: Dossier;
  /** A source's Idempotency-Key: an earlier dossier under the same key is answered, nothing is stored. */
  idem?: { clientId: string; keyHash: string; bodyHash: string };
  /** The collection record (audited once the dossier is stored). */
  collection: AuditEvent;
  /** Further records kept with the dossier, written once it is stored (before it is audited). */
  alsoStore?: () => Promise<void>;
  /** Undoes those, should a later step fail. */
  undo?: () => Promise<void>;
  /** What the sender is told when a step after storing fails. */
  failure: string;
}

/**
 * Stores, audits, schedules and queues the dossier. Returns the earlier dossier when the
 * Idempotency-Key was used already (then nothing was stored). A failure of the store itself is thrown
 * as it is, with nothing to undo here.
 */
export async function accept(deps: AcceptDeps, a: Acceptance): Promise<{ existing?: { dossierId: string; bodyHash: string } }> {
  const { id } = a.record;
  // Stored pending (invisible, short-lived) until audited and scheduled: a fail-over that keeps the
  // record but loses what follows leaves nothing that a retry would take for an accepted dossier.
  const { existing } = await deps.store.create(a.record, seal(deps.sealKey, JSON.stringify(a.dossier), id), a.idem, { pending: true });
  if (existing) return { existing };
  try {
    await a.alsoStore?.();
    const collected = deps.audit.append(a.collection);
    // The erasure date is written alongside the record; the job is queued only once both are kept.
    const scheduled = deps.retention?.schedule(dossierDueMember(id), new Date(Date.parse(a.record.receivedAt) + STATUS_RETENTION_MS));
    await Promise.all([collected, scheduled]);
    await deps.store.settle(id, a.idem);
    // With replicas, queued only once one holds all of it (no worker can deliver what a refusal then
    // undoes); a refusal undoes it like any failure.
    await deps.store.confirm();
    await deps.enqueue(id);
  } catch (err) {
    await deps.store.discard(id, a.idem).catch(() => undefined);
    await a.undo?.().catch(() => undefined);
    if (err instanceof GatewayError) throw err;
    throw new GatewayError('store_unavailable', a.failure, undefined, { cause: err });
  }
  // The queued job too. If no replica confirms it, the dossier is whole and queued here, so it stays:
  // the sender is told to retry, and the same Idempotency-Key answers it (and queues it again).
  await deps.store.confirm();
  return {};
}
