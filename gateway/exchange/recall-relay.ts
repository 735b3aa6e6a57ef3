/**
 * Recall relay. When the source recalls a dossier (gateway/recall), every peer whose delivery may have
 * left gets a `recall` envelope quoting the dossier envelope's id, with the reason code and when it was
 * issued (never the note); its id is derived from (dossier, peer), so a repeated recall sends nothing
 * twice. A delivery that has not left yet is cancelled instead. The peer finds the dossier it made from
 * that envelope (only the peer that sent it may recall it) and recalls it there, as `peer:<id>`: its
 * partners get recall notices, their unretrieved packets are erased. See recallPeers and receive.
 */
import { GatewayError, type ErrorDetail } from '../errors/index.js';
import type { PeerPolicy } from '../policy/types.js';
import { RECALL_REASONS, type RecallReason } from '../recall/recall.js';
import { isRecalled, type DossierRecord } from '../store/dossiers.js';
import type { PeerDelivery, PeerDeliveryState } from '../store/exchange.js';
import { isPeerSource, PEER_SOURCE_PREFIX, PeerRefusal, type ExchangeContext } from './context.js';
import { agreementOf, type EnvelopeHeader } from './envelope.js';

export class RecallRelay {
  constructor(private readonly cx: ExchangeContext) {}

  // ---- outbound --------------------------------------------------------------------------------

  /**
   * After the source's recall of a dossier (gateway/recall, once it is done and audited here): every
   * peer delivery whose dossier has left, or may have (sent; queued or failed after an attempt whose
   * answer may have been lost), gets a recall envelope on the exchange queue; one that has not left is
   * cancelled (`recalled`, audited `exchange.dossier_cancelled`). Idempotent: the mark on the dossier
   * envelope is written once, the recall envelope id is derived from (dossier, peer), and a delivery
   * already moved on is left as it is. Returns each peer delivery's state after. A dossier that came
   * from a peer was never sent to one.
   */
  async recallPeers(dossierId: string, source: string, recall: { reason: string; issuedAt: string }, deliveries: Array<{ peer: string } & PeerDelivery>): Promise<Array<{ peer: string; state: PeerDeliveryState }>> {
    if (isPeerSource(source)) return [];
    const out: Array<{ peer: string; state: PeerDeliveryState }> = [];
    for (const d of deliveries) {
      if (!d.envelopeId) {
        out.push({ peer: d.peer, state: d.state }); // blocked: nothing was prepared, nothing left
        continue;
      }
      // The mark first, then the delivery read anew: a dossier job that settles after that read finds the mark.
      await this.cx.records.markRecalled(dossierId, d.envelopeId, { reason: recall.reason, issuedAt: recall.issuedAt });
      out.push({ peer: d.peer, state: await this.settleRecalled(dossierId, d.peer, true) });
    }
    return out;
  }

  /**
   * Moves a peer delivery of a recalled dossier on; returns its state after. `withdraw`: the caller is
   * not the dossier job, so a dossier job not started yet is taken off the queue first, and one a
   * worker holds is left to settle it itself (it reads the mark once its attempt is over).
   */
  async settleRecalled(dossierId: string, peer: string, withdraw: boolean): Promise<PeerDeliveryState> {
    const { records, deps } = this.cx;
    for (let round = 0; ; round++) {
      const d = await records.delivery(dossierId, peer);
      if (!d?.envelopeId) return d?.state ?? 'blocked';
      const mark = await records.recallMark(d.envelopeId);
      if (!mark) return d.state;
      if (round >= 5) return d.state; // moved on under us again and again: what it is now
      const now = new Date().toISOString();
      if (d.state === 'recall_queued') {
        // Queued before (perhaps cut short): queue it again; the job id makes that a no-op if it is there.
        await this.enqueueRecall(dossierId, peer, d);
        return d.state;
      }
      if (d.state === 'queued' && withdraw && (await deps.queue().withdraw(d.envelopeId)) === 'active') return d.state;
      if (d.state === 'queued' && !d.attempts && d.reason !== 'retrying') {
        // Never tried: it has not left. Cancelled, and its sealed body goes.
        await deps.audit.append({ kind: 'decision', action: 'exchange.dossier_cancelled', dossier: dossierId, packet: d.envelopeId, recipient: `peer:${peer}`, reason: 'recalled' });
        const cancelled: PeerDelivery = {
          state: 'recalled',
          envelopeId: d.envelopeId,
          reason: 'cancelled_before_sending',
          recall: { reason: mark.reason, issuedAt: mark.issuedAt, after: 'queued' },
          ...(d.matchEnvelopeId ? { matchEnvelopeId: d.matchEnvelopeId } : {}),
          updatedAt: now,
        };
        if (await records.replaceDelivery(dossierId, peer, cancelled, ['queued'])) {
          await records.dropSealedBody(d.envelopeId);
          return cancelled.state;
        }
        continue;
      }
      if (d.state === 'sent' || d.state === 'failed' || d.state === 'queued') {
        const next: PeerDelivery = {
          state: 'recall_queued',
          envelopeId: d.envelopeId,
          ...(d.remoteDossier ? { remoteDossier: d.remoteDossier } : {}),
          ...(d.attempts ? { attempts: d.attempts } : {}),
          // An after-match peer's answers stay shown (its match envelope) after the recall.
          ...(d.matchEnvelopeId ? { matchEnvelopeId: d.matchEnvelopeId } : {}),
          recall: { reason: mark.reason, issuedAt: mark.issuedAt, envelopeId: this.cx.recallEnvelopeId(dossierId, peer), after: d.state },
          updatedAt: now,
        };
        if (await records.replaceDelivery(dossierId, peer, next, [d.state])) {
          if (d.state === 'queued') await records.dropSealedBody(d.envelopeId);
          await this.enqueueRecall(dossierId, peer, next);
          return next.state;
        }
        continue;
      }
      return d.state; // blocked, recalled, recall_sent, recall_failed: nothing more to do
    }
  }

  private async enqueueRecall(dossierId: string, peer: string, d: PeerDelivery): Promise<void> {
    if (!d.recall?.envelopeId) return;
    await this.cx.deps.queue().enqueue({ type: 'recall', dossierId, peer, envelopeId: d.recall.envelopeId });
  }

  /** The recall job: `{"envelope": {type: "recall", inReplyTo: <dossier envelope>, …}, "recall": {reason, issuedAt}}`. */
  async send(dossierId: string, peer: string, envelopeId: string): Promise<void> {
    const { records, deps } = this.cx;
    const d = await records.delivery(dossierId, peer);
    // Taken by the peer already, or not this envelope's: a duplicate job.
    if (!d?.envelopeId || d.state !== 'recall_queued' || d.recall?.envelopeId !== envelopeId) return;
    const recall = d.recall;
    const { policy, key } = await this.cx.peerAndKey(peer);
    const { header, message } = await this.cx.seal('recall', envelopeId, policy, key, { recall: { reason: recall.reason, issuedAt: recall.issuedAt } }, d.envelopeId);
    const attempts = (recall.attempts ?? 0) + 1;
    try {
      await this.cx.post(policy, message);
    } catch (err) {
      if (err instanceof PeerRefusal && err.code === 'envelope_unknown' && recall.after !== 'sent') {
        // The dossier was never confirmed sent and the peer does not know it: it never arrived, nothing to recall there.
        await deps.audit.append({ kind: 'decision', action: 'exchange.recall_not_received', dossier: dossierId, packet: envelopeId, inReplyTo: d.envelopeId, recipient: `peer:${peer}`, reason: 'envelope_unknown' });
        await records.replaceDelivery(dossierId, peer, { ...omitOutcome(d), state: 'recalled', reason: 'not_received', recall: { ...recall, attempts }, updatedAt: new Date().toISOString() }, ['recall_queued']);
        return;
      }
      await records.replaceDelivery(
        dossierId,
        peer,
        { ...omitOutcome(d), state: 'recall_queued', reason: 'retrying', message: (err as Error).message.slice(0, 500), recall: { ...recall, attempts }, updatedAt: new Date().toISOString() },
        ['recall_queued'],
      );
      throw err;
    }
    await deps.audit.append({
      kind: 'disclosure',
      action: 'exchange.recall_sent',
      dossier: dossierId,
      packet: envelopeId,
      inReplyTo: d.envelopeId,
      recipient: `peer:${peer}`,
      reason: recall.reason,
      agreement: agreementOf(policy),
      keyFingerprint: key.fingerprint,
      issuedAt: header.issuedAt,
    });
    const now = new Date().toISOString();
    await records.replaceDelivery(dossierId, peer, { ...omitOutcome(d), state: 'recall_sent', recall: { ...recall, attempts, sentAt: now }, updatedAt: now }, ['recall_queued']);
  }

  /** Retries spent, or the peer refused: the recall is dead-lettered. */
  async failed(dossierId: string, peer: string, envelopeId: string, err: Error): Promise<void> {
    await this.cx.deps.audit.append({ kind: 'decision', action: 'exchange.recall_failed', dossier: dossierId, packet: envelopeId, recipient: `peer:${peer}`, reason: err.message.slice(0, 200) });
    const d = await this.cx.records.delivery(dossierId, peer);
    if (d?.state !== 'recall_queued') return;
    await this.cx.records.replaceDelivery(dossierId, peer, { ...omitOutcome(d), state: 'recall_failed', reason: 'dead_letter', message: err.message.slice(0, 500), updatedAt: new Date().toISOString() }, ['recall_queued']);
  }

  // ---- inbound ---------------------------------------------------------------------------------

  /**
   * A peer recalls a dossier it sent here: the dossier made from its envelope `inReplyTo` is recalled
   * here as `peer:<id>` (its partners get recall notices, unretrieved packets are erased: gateway/recall).
   * Only the peer that sent that envelope may (another: `403 envelope_wrong_peer`); an envelope this
   * gateway made no dossier from (or one erased since) is `404 envelope_unknown`; either way nothing
   * changes. A replay answers `200` with the same dossier and does nothing again; a recall arriving
   * while the dossier is still being fanned out is `409 dossier_not_settled` (the sender retries).
   */
  async receive(clientId: string, peerId: string, policy: PeerPolicy, header: EnvelopeHeader, doc: Record<string, unknown>) {
    const { records, deps } = this.cx;
    const request = parseRecallEnvelope(doc);
    const inReplyTo = header.inReplyTo!;
    const dossierId = await this.inboundDossier(peerId, inReplyTo);
    const record = dossierId ? await deps.store.get(dossierId) : undefined;
    if (!dossierId || !record || record.source !== `${PEER_SOURCE_PREFIX}${peerId}`) {
      const others = [...deps.peers.view().policies.keys()].filter((p) => p !== peerId);
      for (const other of others) {
        if (await this.inboundDossier(other, inReplyTo)) {
          throw new GatewayError('envelope_wrong_peer', `Envelope ${inReplyTo} was not received from peer ${peerId}: only the peer that sent a dossier can recall it; nothing was changed`, [
            { path: '/envelope/inReplyTo', message: 'names a dossier another peer sent' },
          ]);
        }
      }
      throw new GatewayError('envelope_unknown', `No dossier received from peer ${peerId} was made from envelope ${inReplyTo} (never received, or erased since); nothing was changed`, [
        { path: '/envelope/inReplyTo', message: 'is not a dossier envelope received from this peer' },
      ]);
    }
    if (!deps.recall) throw new GatewayError('internal', 'inbound exchange needs the api role');
    if (record.state === 'accepted') {
      throw new GatewayError('dossier_not_settled', 'The dossier is still being delivered here; the recall is taken once every delivery has settled (retry in a few seconds); nothing was changed');
    }
    if (isRecalled(record.state) && record.state !== request.reason) {
      throw new GatewayError('dossier_recalled', `The dossier was already recalled here as "${record.state}"; nothing was changed`, [{ path: '/recall/reason', message: `already recalled as "${record.state}"` }]);
    }
    const claimed = await records.claimSeen(peerId, header.id, dossierId);
    if (!claimed && (await records.seen(peerId, header.id)) !== dossierId) {
      throw new GatewayError('envelope_invalid', 'This envelope id was already used for another envelope; nothing was changed', [{ path: '/envelope/id', message: 'was already used' }]);
    }
    // Recalled already and every partner reached: the same answer, nothing done again. A recall cut
    // short (a partner without its notice) is completed below: every step of it is idempotent.
    if (record.state === request.reason && (await this.recallComplete(dossierId, record))) {
      return { type: 'recall', envelope: header.id, id: dossierId, state: record.state, replayed: true };
    }
    try {
      await deps.audit.append({
        kind: 'alteration',
        action: 'exchange.recall_received',
        actor: clientId,
        dossier: dossierId,
        packet: header.id,
        inReplyTo,
        source: record.source,
        via: policy.peer.force,
        agreement: agreementOf(policy),
        reason: request.reason,
        issuedAt: request.issuedAt,
      });
      const result = await deps.recall(dossierId, record.source, request.reason);
      return { type: 'recall', envelope: header.id, id: dossierId, state: result.state, replayed: false };
    } catch (err) {
      if (claimed) await records.forgetSeen(peerId, header.id).catch(() => undefined);
      throw err;
    }
  }

  /** The dossier this gateway made from `peer`'s dossier envelope `envelopeId`, checked against its origin record. */
  private async inboundDossier(peer: string, envelopeId: string): Promise<string | undefined> {
    const id = await this.cx.records.inboundDossier(peer, envelopeId);
    if (!id || !/^dos_[0-9a-f]{32}$/.test(id)) return undefined;
    const origin = await this.cx.records.origin(id);
    return origin.peer === peer && origin.envelopeId === envelopeId ? id : undefined;
  }

  /** Whether a recall here reached every partner sent a packet (a notice, or why none could be sent). */
  private async recallComplete(dossierId: string, record: DossierRecord): Promise<boolean> {
    const deliveries = await this.cx.deps.store.deliveries(dossierId);
    return record.partners.every((p) => !deliveries[p]?.packetId || record.recall?.notices[p] !== undefined);
  }
}

/**
 * The body of a recall envelope: `{"recall": {"reason": "withdrawn"|"corrected", "issuedAt": <date-time>}}`
 * and nothing else (codes and times only: a note, or anything else, is refused).
 */
function parseRecallEnvelope(doc: Record<string, unknown>): { reason: RecallReason; issuedAt: string } {
  const problems: ErrorDetail[] = [];
  for (const k of Object.keys(doc)) if (k !== 'envelope' && k !== 'recall') problems.push({ path: `/${k}`, message: 'is not allowed in a recall envelope' });
  const r = doc.recall;
  if (!r || typeof r !== 'object' || Array.isArray(r)) {
    problems.push({ path: '/recall', message: 'must be an object {reason, issuedAt}' });
    throw new GatewayError('schema_violation', 'The recall envelope is not valid; nothing was changed', problems);
  }
  const o = r as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'reason' && k !== 'issuedAt') problems.push({ path: `/recall/${k}`, message: 'is not allowed (a recall envelope carries a reason code and a time only)' });
  if (!RECALL_REASONS.includes(o.reason as RecallReason)) problems.push({ path: '/recall/reason', message: `must be one of ${RECALL_REASONS.join(', ')}` });
  const issuedAt = typeof o.issuedAt === 'string' && o.issuedAt.length <= 40 ? Date.parse(o.issuedAt) : NaN;
  if (!Number.isFinite(issuedAt)) problems.push({ path: '/recall/issuedAt', message: 'must be a date-time' });
  if (problems.length) throw new GatewayError('schema_violation', 'The recall envelope is not valid; nothing was changed', problems);
  return { reason: o.reason as RecallReason, issuedAt: o.issuedAt as string };
}

/** A delivery without the last attempt's reason and message (a new state says its own). */
function omitOutcome(d: PeerDelivery): PeerDelivery {
  const { reason: _reason, message: _message, ...rest } = d;
  return rest;
}
