/**
 * Intake: the story of a dossier arriving from a force. Check the Idempotency-Key, validate the
 * dossier (a refusal is audited), check the sender may speak for its force and that the force is
 * configured, then accept it (gateway/pipeline/accept.ts: seal, store, audit the collection, schedule,
 * queue; all or nothing). A repeated Idempotency-Key with the same body gets the first answer.
 */
import { createHash } from 'node:crypto';
import { GatewayError } from '../errors/index.js';
import type { Client } from '../config/clients.js';
import type { AuditLog } from '../audit/log.js';
import type { Keyring } from '../crypto/keyring.js';
import { canonical } from '../audit/log.js';
import type { DossierQueue } from '../queue/queue.js';
import { accept, choiceEvents, newDossierId, newRecord, type AcceptDeps } from '../pipeline/accept.js';
import type { NotSent, Why } from '../policy/recipients.js';
import type { Delivery, DossierRecord, DossierStore } from '../store/dossiers.js';
import type { PolicySet } from '../policy/types.js';
import { validateDossier } from '../dossier/validate.js';
import { dossiersReceived } from '../metrics/metrics.js';
import { recallStatus, type RecallStatus } from '../recall/status.js';

const IDEMPOTENCY_KEY = /^[A-Za-z0-9._:-]{1,128}$/;

export interface IntakeDeps {
  store: DossierStore;
  audit: AuditLog;
  queue: Pick<DossierQueue, 'enqueue'>;
  policies: () => PolicySet;
  keyring: Keyring;
  /** The retention schedule: the dossier's status record is erased (and audited) when its retention ends. */
  retention?: { schedule(member: string, due: Date): Promise<void> };
  /** Deliveries to peer gateways (gateway/exchange), shown in the status as `peers` when there are any. */
  peerDeliveries?: (dossierId: string) => Promise<Array<{ peer: string; state: string; reason?: string }>>;
  /** Partners' answers per subject (gateway/hits/answers.ts), shown in the status as `matches`. */
  answers?: (dossierId: string, now: Date) => Promise<{ matches: Record<string, Record<string, string>>; withdrawals?: unknown[] }>;
  /** Per partner asked first (after-match): how far it has come (gateway/fanout/followup.ts), shown as `stage`. */
  stages?: (dossierId: string, deliveries: Record<string, Delivery>) => Promise<Record<string, string>>;
}

export interface Accepted {
  id: string;
  state: DossierRecord['state'];
  partners: string[];
  /** Who receives the dossier and why (policy/recipients.ts). */
  recipients: Array<{ partner: string; why: Why }>;
  /** Partners sent nothing: `not_requested` or `deferred`, with why. */
  notSent: Array<Pick<NotSent, 'partner' | 'state' | 'reason' | 'reviewBy'>>;
  replayed: boolean;
}

export class Intake {
  private readonly accepting: AcceptDeps;

  constructor(private readonly deps: IntakeDeps) {
    this.accepting = { ...deps, sealKey: deps.keyring.seal, enqueue: (id) => deps.queue.enqueue(id) };
  }

  async submit(client: Client, body: unknown, idempotencyKey?: string): Promise<Accepted> {
    try {
      const accepted = await this.accept(client, body, idempotencyKey);
      dossiersReceived.inc({ outcome: accepted.replayed ? 'replayed' : 'accepted', reason: '' });
      return accepted;
    } catch (err) {
      dossiersReceived.inc({ outcome: 'rejected', reason: err instanceof GatewayError ? err.code : 'internal' });
      throw err;
    }
  }

  private async accept(client: Client, body: unknown, idempotencyKey?: string): Promise<Accepted> {
    const { audit } = this.deps;
    if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
      throw new GatewayError('idempotency_key_invalid', 'Idempotency-Key must be 1–128 characters of A–Z, a–z, 0–9, ".", "_", ":" or "-"');
    }
    let dossier;
    try {
      dossier = validateDossier(body);
    } catch (err) {
      if (err instanceof GatewayError) await this.auditRefusal(client, err);
      throw err;
    }
    if (dossier.originator.force !== client.source) {
      throw new GatewayError('forbidden', `This credential may only send dossiers originated by "${client.source}"`, [
        { path: '/originator/force', message: `must be "${client.source}"` },
      ]);
    }
    const policies = this.deps.policies();
    if (!policies.sources.has(client.source!)) {
      throw new GatewayError('forbidden', `No source configuration for "${client.source}": the gateway cannot return hits to it`);
    }

    // The canonical body hash (~0.3 ms for 20 KB) only matters to an Idempotency-Key replay check.
    const idem = idempotencyKey
      ? {
          clientId: client.id,
          keyHash: createHash('sha256').update(idempotencyKey).digest('hex'),
          bodyHash: createHash('sha256').update(canonical(dossier)).digest('hex'),
        }
      : undefined;
    // Chosen before anything is stored: a dossier naming a partner that is not configured is refused.
    let chosen;
    try {
      chosen = newRecord(newDossierId(), client.source!, client.id, policies, dossier);
    } catch (err) {
      if (err instanceof GatewayError) await this.auditRefusal(client, err);
      throw err;
    }
    const { record, choice } = chosen;
    const { id } = record;
    const { existing } = await accept(this.accepting, {
      record,
      dossier,
      idem,
      collection: {
        kind: 'collection',
        action: 'dossier.received',
        actor: client.id,
        dossier: id,
        source: record.source,
        policyRevision: record.revision,
        classification: dossier.classification,
        subjects: dossier.subjects.length,
        // The dossier's purpose is dossier content: the record says where it is, never what it says.
        justification: { dossierPurpose: `sealed with dossier ${id}` },
        // Keyed HMACs of the reference and subject ids, so GET /v1/audit can find this dossier.
        index: audit.terms(record.source, dossier.reference, dossier.subjects.map((s) => s.id)),
      },
      choice: choiceEvents(record, choice, dossier),
      failure: 'The dossier could not be queued; nothing was kept, try again',
    });
    if (existing && idem) return this.replay(existing, idem.bodyHash);
    return {
      id,
      state: record.state,
      partners: record.partners,
      recipients: choice.recipients.map((r) => ({ partner: r.partner, why: r.why })),
      notSent: record.notSent ?? [],
      replayed: false,
    };
  }

  private async auditRefusal(client: Client, err: GatewayError): Promise<void> {
    await this.deps.audit
      .append({ kind: 'rejection', action: 'dossier.rejected', actor: client.id, reason: err.code, paths: err.details?.map((d) => d.path ?? '').slice(0, 50) })
      .catch(() => undefined); // the refusal stands whether or not it could be logged
  }

  /** A repeated Idempotency-Key: the same body gets the first answer (and a re-queue, a no-op if queued). */
  private async replay(existing: { dossierId: string; bodyHash: string }, bodyHash: string): Promise<Accepted> {
    if (existing.bodyHash !== bodyHash) {
      throw new GatewayError('idempotency_key_reused', 'This Idempotency-Key was already used for a different dossier');
    }
    const record = await this.deps.store.get(existing.dossierId);
    if (!record) throw new GatewayError('store_unavailable', 'The earlier submission with this key is still being stored; retry shortly');
    if (record.state === 'accepted') await this.deps.queue.enqueue(record.id);
    await this.deps.store.confirm(); // with replicas, answered once one holds it (store/replication.ts)
    return { id: record.id, state: record.state, partners: record.partners, recipients: recipientsOf(record), notSent: record.notSent ?? [], replayed: true };
  }

  /** The delivery status a source sees. Another source's dossier answers exactly like a missing one. */
  async status(client: Client, id: string): Promise<DossierStatus> {
    const record = await this.deps.store.get(id);
    if (!record || record.source !== client.source) throw new GatewayError('not_found', 'No such dossier');
    const deliveries = await this.deps.store.deliveries(id);
    const peers = (await this.deps.peerDeliveries?.(id)) ?? [];
    const now = Date.now();
    const answers = await this.deps.answers?.(id, new Date(now));
    const stages = (await this.deps.stages?.(id, deliveries)) ?? {};
    return {
      id: record.id,
      state: record.state,
      receivedAt: record.receivedAt,
      policyRevision: record.revision,
      deliveries: [...record.partners, ...(record.notSent ?? []).map((n) => n.partner)].map((partner) => {
        const d: Delivery = deliveries[partner] ?? { state: 'queued', updatedAt: record.receivedAt };
        const live = d.state === 'delivered' || d.state === 'retrieved' || d.state === 'acknowledged';
        const expired = live && d.expiresAt !== undefined && Date.parse(d.expiresAt) <= now;
        const why = record.why?.[partner];
        return { partner, ...d, state: expired ? 'expired' : d.state, ...(why ? { why } : {}), ...(stages[partner] ? { stage: stages[partner] } : {}) };
      }),
      ...(answers ? { matches: answers.matches, ...(answers.withdrawals ? { withdrawals: answers.withdrawals } : {}) } : {}),
      ...(peers.length ? { peers } : {}),
      ...(record.recall ? { recall: await recallStatus(this.deps.store, record.partners, record.recall, deliveries) } : {}),
    };
  }
}

function recipientsOf(record: DossierRecord): Accepted['recipients'] {
  return record.partners.map((partner) => ({ partner, why: record.why?.[partner] ?? {} }));
}

export interface DossierStatus {
  id: string;
  state: DossierRecord['state'];
  receivedAt: string;
  policyRevision: string;
  /**
   * One per partner: recipients with why they receive it, the others `not_requested` or `deferred`;
   * `stage` for a partner asked first (after-match): match_sent | no_trace | awaiting_approval | follow_up_queued | disclosed.
   */
  deliveries: Array<{ partner: string; why?: Why; stage?: string } & Delivery>;
  /**
   * Deliveries to peer gateways: queued | sent | failed (dead letter) | blocked, with a reason; once the
   * dossier is recalled, recalled (it never reached the peer) | recall_queued | recall_sent | recall_failed,
   * with `recall` (gateway/exchange).
   */
  peers?: Array<{ peer: string; state: string; reason?: string }>;
  /** Per partner and subject sent: hit | no_trace | pending | overdue (gateway/hits/answers.ts). */
  matches?: Record<string, Record<string, string>>;
  /** Answers and hits partners took back. */
  withdrawals?: unknown[];
  /** Once the source has recalled the dossier: when, by whom, why, and each partner's recall notice. */
  recall?: RecallStatus;
}
