/**
 * Outbound: a dossier whose source asks for `requests.peers` is disclosed to each peer under
 * `policies/peers/<id>.yaml` (like any recipient, gateway.yaml included: gateway/pipeline/disclose.ts),
 * its subject ids replaced by envelope refs, and kept sealed; a BullMQ job encrypts it to the peer
 * gateway's pinned key, signs it with this gateway's key and POSTs it to `<peer url>/v1/exchange/inbound`,
 * with retries and backoff, and `failed` (dead letter) once they are spent. The envelope id is derived
 * from (dossier, peer), so every retry carries the same id and the peer never makes a second dossier.
 * A dossier that came from a peer is never sent on to another peer.
 *
 * What protects always crosses: a peer file must keep roles, vulnerability flags and handling-condition
 * codes (policy/peer-checks.ts, at load), so the peer's own protective rules fire on them; an
 * intelligence item whose codes the peer has not declared it enforces (`peer.enforcesConditions`) is
 * withheld, and a dossier whose own codes it does not enforce is blocked (policy/handling.ts).
 */
import { seal, unseal } from '../crypto/seal.js';
import type { Dossier } from '../dossier/types.js';
import { disclose } from '../pipeline/disclose.js';
import { PermanentExchangeError } from '../queue/exchange-queue.js';
import type { PeerDelivery, PeerDeliveryState } from '../store/exchange.js';
import { isPeerSource, type ExchangeContext } from './context.js';
import { agreementOf } from './envelope.js';
import type { MatchOut } from './match-out.js';
import type { RecallRelay } from './recall-relay.js';
import { isAfterMatch } from '../policy/match.js';

/** Deliveries whose dossier has left for good: a dossier job finding one of these has nothing to do. */
const LEFT_OR_RECALLED = new Set<PeerDeliveryState>(['sent', 'recalled', 'recall_queued', 'recall_sent', 'recall_failed']);

export class Outbound {
  constructor(
    private readonly cx: ExchangeContext,
    private readonly recalls: RecallRelay,
    private readonly matches: MatchOut,
  ) {}

  /** A dossier's peer deliveries, by peer. */
  async deliveries(dossierId: string): Promise<Array<{ peer: string } & PeerDelivery>> {
    const all = await this.cx.records.deliveries(dossierId);
    return Object.entries(all)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([peer, d]) => ({ peer, ...d }));
  }

  /**
   * Runs in the fan-out job once the dossier is open (before it is erased): prepares one sealed
   * envelope per requested peer and queues its delivery. Idempotent: a retried job re-queues only.
   */
  async prepare(dossierId: string, source: string, dossier: Dossier): Promise<void> {
    const wanted = dossier.requests?.peers ?? [];
    if (wanted.length === 0) return;
    if (isPeerSource(source)) {
      // Loop prevention: a dossier that came from a peer never goes on to another peer.
      await this.cx.deps.audit.append({ kind: 'decision', action: 'exchange.not_forwarded', dossier: dossierId, source, reason: 'received_from_peer', peers: wanted });
      return;
    }
    const existing = await this.cx.records.deliveries(dossierId);
    for (const peer of wanted) {
      const prior = existing[peer];
      if (prior) {
        if (prior.state === 'queued' && prior.envelopeId) await this.cx.deps.queue().enqueue({ type: 'dossier', envelopeId: prior.envelopeId });
        continue;
      }
      await this.prepareOne(dossierId, source, dossier, peer);
    }
  }

  private async block(dossierId: string, peer: string, reason: string, message: string, revision: string): Promise<void> {
    await this.cx.deps.audit.append({ kind: 'decision', action: 'exchange.blocked', dossier: dossierId, recipient: `peer:${peer}`, policyRevision: revision, reason });
    await this.cx.records.setDelivery(dossierId, peer, { state: 'blocked', reason, message, updatedAt: new Date().toISOString() });
  }

  private async prepareOne(dossierId: string, source: string, dossier: Dossier, peer: string): Promise<void> {
    const { deps, records } = this.cx;
    const now = new Date();
    const view = deps.peers.view();
    const revision = deps.live().set.revision;
    const policy = view.policies.get(peer);
    if (!policy) return this.block(dossierId, peer, 'no_agreement', `No peer file policies/peers/${peer}.yaml is configured`, revision);
    try {
      this.cx.forceId();
    } catch (err) {
      return this.block(dossierId, peer, 'config_invalid', (err as Error).message, revision);
    }
    // After-match: a match envelope first, only the identifiers the peer matches on (match-out.ts).
    const match = isAfterMatch(policy.agreement) ? (policy.match ?? []) : undefined;
    const disclosed = await disclose({
      dossierId,
      source,
      dossier,
      recipient: `peer:${peer}`,
      policy,
      ...(match ? { match } : {}),
      decide: () => view.decider.decide(peer, dossier, now),
      key: () => this.cx.peerKeyOrBlock(peer),
      pseudonymKey: deps.keyring.peerPseudonym(peer),
    });
    if ('block' in disclosed) return this.block(dossierId, peer, disclosed.block.reason, disclosed.block.message, disclosed.revision);
    if (match) return this.matches.prepared(dossierId, source, dossier, peer, disclosed, now);

    const envelopeId = this.cx.envelopeId(dossierId, peer);
    // The header says which handling-condition codes this gateway enforces: the items sent carry only
    // codes the peer declared it enforces (policy/handling.ts), and they bind its own fan-out in turn.
    const enforcesConditions = Object.keys(deps.live().set.gateway.handlingConditions ?? {}).sort();
    const body = { policy: { id: `peer:${peer}`, revision: disclosed.revision }, agreement: agreementOf(policy), enforcesConditions, dossier: disclosed.redacted };
    await deps.audit.append(disclosed.event('exchange.envelope_prepared', envelopeId));
    await records.putEnvelope(envelopeId, {
      dossier: dossierId,
      peer,
      source,
      sealed: seal(deps.keyring.seal, JSON.stringify(body), envelopeId),
      refs: seal(deps.keyring.seal, JSON.stringify(disclosed.byRef), `${envelopeId}:refs`),
    });
    await records.setDelivery(dossierId, peer, { state: 'queued', envelopeId, updatedAt: now.toISOString() });
    await deps.queue().enqueue({ type: 'dossier', envelopeId });
  }

  /** The dossier job: encrypt, sign and POST one envelope. Throws to be retried. */
  async send(envelopeId: string): Promise<void> {
    const { deps, records } = this.cx;
    const env = await records.envelope(envelopeId);
    const current = env.peer && env.dossier ? await records.delivery(env.dossier, env.peer) : undefined;
    // A duplicate job; or one superseded by a follow-up (after-match: the delivery moved on to its envelope).
    if (current && LEFT_OR_RECALLED.has(current.state) && (current.envelopeId === envelopeId || current.state !== 'sent' || env.kind !== 'followup')) return;
    if (current?.envelopeId !== undefined && current.envelopeId !== envelopeId && env.kind !== 'followup') return;
    // Recalled before this job ran: the dossier is not sent (cancelled, or recalled if an attempt may have arrived).
    if (env.recall && env.peer && env.dossier && current?.state === 'queued') {
      await this.recalls.settleRecalled(env.dossier, env.peer, false);
      return;
    }
    if (!env.sealed || !env.peer || !env.dossier) throw new PermanentExchangeError(`envelope ${envelopeId} is no longer held`);
    const body = JSON.parse(unseal(deps.keyring.seal, env.sealed, envelopeId).toString('utf8')) as Record<string, unknown>;
    const { policy, key } = await this.cx.peerAndKey(env.peer);
    const { header, message } = await this.cx.seal(env.kind === 'match' ? 'match' : 'dossier', envelopeId, policy, key, body);
    const prior = await records.delivery(env.dossier, env.peer);
    // An after-match delivery keeps its match envelope while follow-ups move it on; a follow-up replaces the match's `sent`.
    const asked = prior?.matchEnvelopeId ? { matchEnvelopeId: prior.matchEnvelopeId } : {};
    const from: PeerDeliveryState[] = env.kind === 'followup' ? ['queued', 'sent'] : ['queued'];
    let answer: { id?: string };
    try {
      answer = await this.cx.post(policy, message);
    } catch (err) {
      await records.replaceDelivery(
        env.dossier,
        env.peer,
        { state: 'queued', envelopeId, reason: 'retrying', message: (err as Error).message.slice(0, 500), attempts: (prior?.attempts ?? 0) + 1, ...asked, updatedAt: new Date().toISOString() },
        from,
      );
      // Recalled during the attempt: no more attempts; the attempt may have arrived, so the peer gets the recall.
      if (await records.recallMark(envelopeId)) {
        await this.recalls.settleRecalled(env.dossier, env.peer, false);
        return;
      }
      throw err;
    }
    await deps.audit.append({
      kind: 'disclosure',
      action: env.kind === 'match' ? 'exchange.match_sent' : 'exchange.dossier_sent',
      dossier: env.dossier,
      packet: envelopeId,
      recipient: `peer:${env.peer}`,
      source: env.source,
      agreement: agreementOf(policy),
      keyFingerprint: key.fingerprint,
      issuedAt: header.issuedAt,
    });
    // Sent: the sealed body goes (the refs stay, to map the peer's hits back).
    await records.dropSealedBody(envelopeId);
    await records.replaceDelivery(
      env.dossier,
      env.peer,
      { state: 'sent', envelopeId, ...(typeof answer.id === 'string' ? { remoteDossier: answer.id } : {}), attempts: (prior?.attempts ?? 0) + 1, ...asked, updatedAt: new Date().toISOString() },
      from,
    );
    // Recalled while it was on its way (the mark is set before the recall reads the delivery): recall it there.
    if (await records.recallMark(envelopeId)) await this.recalls.settleRecalled(env.dossier, env.peer, false);
  }

  /** Retries spent, or the peer refused, for a dossier or hits envelope: dead-lettered with the reason. */
  async failed(job: { type: 'dossier'; envelopeId: string } | { type: 'hits'; dossierId: string; envelopeId: string }, err: Error): Promise<void> {
    const { deps, records } = this.cx;
    const env = await records.envelope(job.envelopeId);
    const dossierId = job.type === 'dossier' ? env.dossier : job.dossierId;
    const peer = job.type === 'dossier' ? env.peer : (await records.origin(job.dossierId)).peer;
    await deps.audit.append({ kind: 'decision', action: `exchange.${job.type}_failed`, dossier: dossierId, packet: job.envelopeId, recipient: `peer:${peer}`, reason: err.message.slice(0, 200) });
    if (job.type === 'dossier' && dossierId && peer) {
      await records.dropSealedBody(job.envelopeId);
      const prior = await records.delivery(dossierId, peer);
      if (prior?.envelopeId !== undefined && prior.envelopeId !== job.envelopeId) return; // superseded by a follow-up
      await records.replaceDelivery(
        dossierId,
        peer,
        {
          state: 'failed',
          envelopeId: job.envelopeId,
          reason: 'dead_letter',
          message: err.message.slice(0, 500),
          ...(prior?.attempts ? { attempts: prior.attempts } : {}),
          ...(prior?.matchEnvelopeId ? { matchEnvelopeId: prior.matchEnvelopeId } : {}),
          updatedAt: new Date().toISOString(),
        },
        ['queued'],
      );
      // Recalled while it was being tried: an attempt may have reached the peer, so it gets the recall.
      if (await records.recallMark(job.envelopeId)) await this.recalls.settleRecalled(dossierId, peer, false);
    }
  }
}
