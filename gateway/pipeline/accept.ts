/**
 * Accept: the step every dossier entering the gateway goes through, whoever sent it (a force over
 * HTTP, gateway/intake; another force's gateway in an envelope, gateway/exchange/inbound.ts). Seal it
 * under its new id, store it with one queued delivery per recipient (policy/recipients.ts: only the
 * partners it needs; the others stored `not_requested` or `deferred`), audit the collection and the
 * choice, schedule the
 * erasure of its status record, and queue its fan-out. If any step after storing fails, everything
 * stored is undone and the sender is told to retry: a dossier is accepted whole or not at all.
 */
import { randomBytes } from 'node:crypto';
import type { AuditEvent, AuditLog } from '../audit/log.js';
import { sealBytes } from '../crypto/seal.js';
import type { Dossier } from '../dossier/types.js';
import { GatewayError } from '../errors/index.js';
import { chooseRecipients, type RecipientChoice } from '../policy/recipients.js';
import type { GatewayRules, PartnerPolicy } from '../policy/types.js';
import { dossierDueMember, STATUS_RETENTION_MS } from '../retention/schedule.js';
import type { DossierRecord, DossierStore } from '../store/dossiers.js';

export function newDossierId(): string {
  return 'dos_' + randomBytes(16).toString('hex');
}

/**
 * A new dossier's status record: accepted, for the recipients the policy set in force chooses for it
 * (throws, before anything is stored, when the dossier names a partner that is not configured).
 */
export function newRecord(
  id: string,
  source: string,
  client: string,
  set: { revision: string; gateway: GatewayRules; partners: ReadonlyMap<string, PartnerPolicy> },
  dossier: Dossier,
): { record: DossierRecord; choice: RecipientChoice } {
  const choice = chooseRecipients(dossier, set);
  const record: DossierRecord = {
    id,
    source,
    client,
    receivedAt: new Date().toISOString(),
    state: 'accepted',
    revision: set.revision,
    partners: choice.recipients.map((r) => r.partner),
    notSent: choice.notSent.map((n) => ({ partner: n.partner, state: n.state, reason: n.reason, ...(n.reviewBy ? { reviewBy: n.reviewBy } : {}) })),
    kinds: Object.fromEntries(choice.recipients.map((r) => [r.partner, r.kinds])),
    why: Object.fromEntries(choice.recipients.map((r) => [r.partner, r.why])),
  };
  return { record, choice };
}

/** The audit records of the choice: every partner sent nothing, and every statutory delivery, with why. */
export function choiceEvents(record: DossierRecord, choice: RecipientChoice, dossier: Dossier): AuditEvent[] {
  const common = { dossier: record.id, source: record.source, policyRevision: record.revision };
  const checks = dossier.requests?.checks ?? [];
  return [
    ...choice.recipients.flatMap((r): AuditEvent[] =>
      r.why.statutory
        ? [{ kind: 'decision', action: 'delivery.statutory', ...common, recipient: r.partner, reason: r.why.statutory.name, statutory: r.why.statutory.name, legalReason: r.why.statutory.reason, subjects: r.why.statutory.subjects, checks: r.why.requested?.checks ?? [] }]
        : [],
    ),
    ...choice.notSent.map((n): AuditEvent =>
      n.state === 'deferred'
        ? { kind: 'decision', action: 'delivery.deferred', ...common, recipient: n.partner, reason: 'deferred by the source', statutory: n.statutory?.name, legalReason: n.statutory?.reason, reviewBy: n.reviewBy }
        : { kind: 'decision', action: 'delivery.not_requested', ...common, recipient: n.partner, reason: n.reason, checks },
    ),
  ];
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
  /** Audited with it: why partners were sent nothing, or sent it under a statutory condition (choiceEvents). */
  choice?: AuditEvent[];
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
  const { existing } = await deps.store.create(a.record, sealBytes(deps.sealKey, JSON.stringify(a.dossier), id), a.idem, { pending: true });
  if (existing) return { existing };
  try {
    await a.alsoStore?.();
    const collected = deps.audit.appendAll([a.collection, ...(a.choice ?? [])]);
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
