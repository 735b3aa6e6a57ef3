/**
 * Rectification (DPA 2018 s.38: tell recipients without delay when shared data turns out wrong). The
 * force that sent a dossier recalls it as `withdrawn` or `corrected`:
 *   1. the recall is audited with its reason (the note, free text, never leaves the sealed notices);
 *   2. the dossier is marked withdrawn or corrected (its status shows it; fan-out never resumes it);
 *   3. every partner that was sent a packet gets a recall notice in its mailbox: an OpenPGP message
 *      encrypted to the partner and signed by the gateway, JSON `{"recall": {id, packet, reason,
 *      issuedAt, action, note?}}`, listed in GET /v1/packets with `type: "recall"`; each is audited;
 *   4. packets not yet retrieved are erased (audited): nobody pulls withdrawn data from now on;
 *   5. then (`onRecalled`) every peer gateway the dossier was sent to gets a recall envelope, and a
 *      delivery to a peer that has not left is cancelled (gateway/exchange: recallPeers). A gateway that
 *      received the dossier from a peer recalls it on that peer's envelope (`recallFromPeer`).
 * The dossier's record keeps the recall (reason, time, client) and each partner's notice id or problem,
 * which the source's status shows (status.ts); hits on its packets are refused from step 2 on.
 * Every step is idempotent (notice ids derive from the packet id), so a recall interrupted half-way is
 * completed by sending the same request again. Such a repeat changes nothing recorded: the first
 * recall's time and client stay on the record (and in the notices still to send), and it writes no
 * second `dossier.recalled` record (the recall happened once; notices and erasures it completes are
 * audited as they happen).
 */
import type { AuditLog } from '../audit/log.js';
import type { Client } from '../config/clients.js';
import { encryptAndSign, type GatewayKey, type RecipientKey } from '../crypto/openpgp.js';
import type { Keyring } from '../crypto/keyring.js';
import { hmacId, seal } from '../crypto/seal.js';
import { GatewayError, type ErrorDetail } from '../errors/index.js';
import { isInvalid, type LiveSet } from '../policy/live.js';
import type { Eraser } from '../retention/erase.js';
import { DAY_MS, packetDueMember, STORE_BACKSTOP_MS } from '../retention/schedule.js';
import type { DossierStore } from '../store/dossiers.js';
import type { MailboxStore } from '../store/mailbox.js';

export type RecallReason = 'withdrawn' | 'corrected';
export const RECALL_REASONS: RecallReason[] = ['withdrawn', 'corrected'];
const MAX_NOTE_LENGTH = 500;
/** A notice stays at least this long in the mailbox, even when the packet it recalls expires sooner. */
const MIN_NOTICE_DAYS = 7;

const ACTION: Record<RecallReason, string> = {
  withdrawn: 'The originator has withdrawn this data: stop using it, do not share it further, and delete your copy.',
  corrected: 'The originator has found this data wrong: stop relying on it; a corrected dossier may follow.',
};

export interface RecallRequest {
  reason: RecallReason;
  note?: string;
}

export interface RecallDeps {
  store: DossierStore;
  /** The partners' mailboxes, where the notices go. */
  mailboxes: MailboxStore;
  audit: AuditLog;
  eraser: Eraser;
  live: () => LiveSet<RecipientKey>;
  gatewayKey: GatewayKey;
  keyring: Keyring;
  now?: () => Date;
  /**
   * Once the recall is done here and audited: passes it on to the peer gateways the dossier was sent to
   * (reason code and time only, never the note); answers each peer delivery's state.
   */
  onRecalled?: (recall: { dossierId: string; source: string; reason: RecallReason; issuedAt: string }) => Promise<Array<{ peer: string; state: string }>>;
}

/** Who recalls: a source's client, or for a dossier received from a peer gateway, that peer (`peer:<id>`). */
interface RecallActor {
  id: string;
  source?: string;
}

export interface RecallOutcome {
  partner: string;
  packet: string;
  /** The notice's id in the partner's mailbox; absent when it could not be sent. */
  notice?: string;
  /** True when the packet was still unretrieved and has been erased. */
  erased: boolean;
  /** Why no notice could be sent (e.g. the partner's key is no longer valid): tell them another way. */
  problem?: string;
}

export interface RecallResult {
  id: string;
  state: RecallReason;
  recall: { reason: RecallReason; issuedAt: string };
  partners: RecallOutcome[];
  /** The peer gateways the dossier was sent to, and where their delivery stands (gateway/exchange). */
  peers?: Array<{ peer: string; state: string }>;
  /** True when this dossier had already been recalled for this reason and the recall was completed again. */
  replayed: boolean;
}

/** Validates the request body: `{ "reason": "withdrawn"|"corrected", "note"?: string ≤ 500 }`. */
function parseRecallRequest(body: unknown): RecallRequest {
  const problems: ErrorDetail[] = [];
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new GatewayError('schema_violation', 'The recall must be a JSON object', [{ path: '', message: 'must be an object with a "reason"' }]);
  }
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) if (k !== 'reason' && k !== 'note') problems.push({ path: `/${k}`, message: 'is not allowed' });
  if (!RECALL_REASONS.includes(b.reason as RecallReason)) problems.push({ path: '/reason', message: `must be one of ${RECALL_REASONS.join(', ')}` });
  if (b.note !== undefined && (typeof b.note !== 'string' || b.note.length === 0 || b.note.length > MAX_NOTE_LENGTH)) {
    problems.push({ path: '/note', message: `must be a string of 1–${MAX_NOTE_LENGTH} characters` });
  }
  if (problems.length) throw new GatewayError('schema_violation', 'The recall request is not valid', problems);
  return { reason: b.reason as RecallReason, ...(b.note !== undefined ? { note: b.note as string } : {}) };
}

export class Recall {
  private readonly idKey: Buffer;
  private readonly sealKey: Buffer;
  private readonly now: () => Date;

  constructor(private readonly deps: RecallDeps) {
    this.idKey = deps.keyring.packetId;
    this.sealKey = deps.keyring.seal;
    this.now = deps.now ?? (() => new Date());
  }

  noticeId(packetId: string): string {
    return 'pkt_' + hmacId(this.idKey, 'recall', packetId);
  }

  async recall(client: Client, dossierId: string, body: unknown): Promise<RecallResult> {
    return this.run({ id: client.id, source: client.source }, dossierId, body);
  }

  /**
   * The recall of a dossier this gateway received from a peer gateway, on that peer's recall envelope
   * (gateway/exchange checks it is that peer's): `peerSource` is the dossier's source, `peer:<id>`, and
   * acts as the client.
   */
  recallFromPeer(dossierId: string, peerSource: string, reason: RecallReason): Promise<RecallResult> {
    return this.run({ id: peerSource, source: peerSource }, dossierId, { reason });
  }

  private async run(client: RecallActor, dossierId: string, body: unknown): Promise<RecallResult> {
    const { store, audit } = this.deps;
    const record = /^dos_[0-9a-f]{32}$/.test(dossierId) ? await store.get(dossierId) : undefined;
    if (!record || client.source === undefined || record.source !== client.source) throw new GatewayError('not_found', 'No such dossier');
    const request = parseRecallRequest(body);
    const state = record.state as string;
    if (state === 'accepted') {
      throw new GatewayError('dossier_not_settled', 'The dossier is still being delivered; recall it once every delivery has settled (a few seconds)');
    }
    const replayed = state === request.reason;
    if (RECALL_REASONS.includes(state as RecallReason) && !replayed) {
      throw new GatewayError('dossier_recalled', `The dossier was already recalled as "${state}"`);
    }
    // A repeat keeps the first recall's time, so notices, peers and later refusals all tell one story.
    const issuedAt = (replayed && record.recall?.at) || this.now().toISOString();
    const deliveries = await store.deliveries(dossierId);
    const sent = record.partners.filter((p) => deliveries[p]?.packetId);

    if (!replayed) {
      await audit.append({
        kind: 'alteration',
        action: 'dossier.recalled',
        actor: client.id,
        dossier: dossierId,
        source: record.source,
        reason: request.reason,
        recipients: sent,
        ...(request.note ? { note: 'given; sent sealed in the recall notices only' } : {}),
      });
    }
    const marked = await this.deps.store.markRecalled(dossierId, request.reason, { reason: request.reason, at: issuedAt, by: client.id });
    if (!marked) throw new GatewayError('not_found', 'No such dossier');
    // Kept for a match request's follow-up (after-match agreements): a recalled dossier is followed up never.
    if (await store.getSealed(dossierId)) {
      await audit.append({ kind: 'erasure', action: 'dossier.sealed_content_erased', dossier: dossierId, reason: 'recalled' });
      await store.eraseSealed(dossierId);
    }

    const partners: RecallOutcome[] = [];
    for (const partner of sent) {
      const d = deliveries[partner]!;
      partners.push(await this.notify(dossierId, record.source, partner, d.packetId!, d.expiresAt, request, issuedAt, d.matchPacketId));
    }
    const peers = (await this.deps.onRecalled?.({ dossierId, source: record.source, reason: request.reason, issuedAt })) ?? [];
    return { id: dossierId, state: request.reason, recall: { reason: request.reason, issuedAt }, partners, ...(peers.length ? { peers } : {}), replayed };
  }

  private async notify(
    dossierId: string,
    source: string,
    partner: string,
    packetId: string,
    packetExpiresAt: string | undefined,
    request: RecallRequest,
    issuedAt: string,
    /** The match request sent before the packet (after-match), when it is another packet. */
    matchPacketId?: string,
  ): Promise<RecallOutcome> {
    const match = matchPacketId !== undefined && matchPacketId !== packetId ? matchPacketId : undefined;
    const { audit, mailboxes } = this.deps;
    const outcome: RecallOutcome = { partner, packet: packetId, erased: false };
    const noticeId = this.noticeId(packetId);
    const key = this.deps.live().keys.get(partner);
    if (await mailboxes.exists(noticeId)) {
      outcome.notice = noticeId;
    } else if (isInvalid(key)) {
      outcome.problem = 'recipient_key_invalid';
      await audit.append({ kind: 'decision', action: 'recall.notice_blocked', dossier: dossierId, packet: packetId, recipient: partner, reason: 'recipient_key_invalid' });
    } else {
      const now = this.now();
      const floor = now.getTime() + MIN_NOTICE_DAYS * DAY_MS;
      const expiresMs = Math.max(packetExpiresAt ? Date.parse(packetExpiresAt) : 0, floor);
      const expiresAt = new Date(expiresMs).toISOString();
      const plaintext = JSON.stringify({
        recall: { id: noticeId, packet: packetId, ...(match ? { matchRequest: match } : {}), reason: request.reason, issuedAt, action: ACTION[request.reason], ...(request.note ? { note: request.note } : {}) },
      });
      let message: string;
      try {
        message = await encryptAndSign(plaintext, key, this.deps.gatewayKey, now);
      } catch (err) {
        if (!(err instanceof GatewayError) || err.code !== 'recipient_key_invalid') throw err;
        outcome.problem = 'recipient_key_invalid';
        await audit.append({ kind: 'decision', action: 'recall.notice_blocked', dossier: dossierId, packet: packetId, recipient: partner, reason: 'recipient_key_invalid' });
        message = '';
      }
      if (message) {
        // Audit first: a notice that cannot be logged is not sent.
        await audit.append({
          kind: 'disclosure',
          action: 'recall.notice_sent',
          dossier: dossierId,
          packet: packetId,
          notice: noticeId,
          recipient: partner,
          reason: request.reason,
          keyFingerprint: key.fingerprint,
        });
        const fields = {
          id: noticeId,
          type: 'recall' as const,
          recalls: packetId,
          partner,
          dossier: dossierId,
          source,
          createdAt: now.toISOString(),
          expiresAt,
          state: 'delivered' as const,
          message,
          refs: seal(this.sealKey, '{}', noticeId),
        };
        await mailboxes.createNotice(fields, { member: packetDueMember(noticeId, dossierId, partner), dueMs: expiresMs, storeExpiryMs: expiresMs + STORE_BACKSTOP_MS });
        outcome.notice = noticeId;
      }
    }
    // The source's status shows, per partner, the notice (and whether it was pulled) or why there is none.
    await this.deps.store.recordRecallNotice(dossierId, partner, { notice: outcome.notice, problem: outcome.problem });
    // Only a packet still unretrieved is erased: one the partner holds stays until its retention ends.
    outcome.erased = await this.deps.eraser.erasePacket({ id: packetId, dossier: dossierId, partner }, 'recalled', 'delivered');
    // The match request the notice also names goes the same way.
    if (match) await this.deps.eraser.erasePacket({ id: match, dossier: dossierId, partner }, 'recalled', 'delivered');
    return outcome;
  }
}
