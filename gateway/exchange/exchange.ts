/**
 * Cross-border exchange between forces' gateways (peers), in four parts on one shared context
 * (context.ts: records, keys, force, POST):
 *
 * - outbound.ts: a dossier asking for `requests.peers` is disclosed to each peer and sent in a signed,
 *   encrypted envelope (envelope.ts), retried, and dead-lettered once the retries are spent;
 * - inbound.ts: an envelope from a peer is verified against its pinned key, checked (addressed here,
 *   fresh, not seen before) and taken by type; a dossier is accepted like a force's;
 * - hits-relay.ts: hits on a peer's dossier go back to it, and hits coming back are merged in;
 * - recall-relay.ts: a recall is passed on to the peers a dossier reached, and a peer's recall is
 *   carried out here.
 *
 * The exchange records of a dossier (peer deliveries, envelopes, origin, the inbound envelope → dossier
 * map) live exactly as long as its status record; the inbound replay records, REPLAY_RECORD_TTL_SECONDS
 * (store/exchange.ts).
 */
import type { Dossier } from '../dossier/types.js';
import type { ExchangeJob } from '../queue/exchange-queue.js';
import type { PeerDelivery, PeerDeliveryState } from '../store/exchange.js';
import { ExchangeContext, type ExchangeDeps } from './context.js';
import { HitsRelay } from './hits-relay.js';
import { Inbound, type InboundResult } from './inbound.js';
import { MatchIn } from './match-in.js';
import { PeerFollowUps } from './match-followup.js';
import { MatchOut } from './match-out.js';
import { Outbound } from './outbound.js';
import { RecallRelay } from './recall-relay.js';

export class Exchange {
  private readonly cx: ExchangeContext;
  private readonly outbound: Outbound;
  private readonly inbound: Inbound;
  private readonly hits: HitsRelay;
  private readonly recalls: RecallRelay;
  /** Match first, then disclose: asking a peer (match-out.ts, match-followup.ts) and being asked (match-in.ts). */
  readonly followUps: PeerFollowUps;
  readonly matchOut: MatchOut;
  readonly matchIn: MatchIn;

  constructor(deps: ExchangeDeps) {
    this.cx = new ExchangeContext(deps);
    this.recalls = new RecallRelay(this.cx);
    this.hits = new HitsRelay(this.cx);
    this.followUps = new PeerFollowUps(this.cx);
    this.matchOut = new MatchOut(this.cx, this.followUps);
    this.matchIn = new MatchIn(this.cx);
    this.outbound = new Outbound(this.cx, this.recalls, this.matchOut);
    this.inbound = new Inbound(this.cx, this.hits, this.recalls, this.matchIn, this.matchOut);
  }

  envelopeId(dossierId: string, peer: string): string {
    return this.cx.envelopeId(dossierId, peer);
  }

  recallEnvelopeId(dossierId: string, peer: string): string {
    return this.cx.recallEnvelopeId(dossierId, peer);
  }

  forceId(): string {
    return this.cx.forceId();
  }

  /** A dossier's peer deliveries (its status shows them as `peers`). */
  deliveries(dossierId: string): Promise<Array<{ peer: string } & PeerDelivery>> {
    return this.outbound.deliveries(dossierId);
  }

  /** The deliveries as the status shows them: an after-match peer's with its `stage` (match-followup.ts). */
  async status(dossierId: string): Promise<Array<{ peer: string; stage?: string } & PeerDelivery>> {
    const out: Array<{ peer: string; stage?: string } & PeerDelivery> = [];
    for (const d of await this.deliveries(dossierId)) {
      const stage = d.matchEnvelopeId ? await this.followUps.stage(dossierId, d.peer, d.envelopeId, d.state === 'sent') : undefined;
      out.push(stage ? { ...d, stage } : d);
    }
    return out;
  }

  /** In the fan-out job, once the dossier is open: prepares and queues an envelope per requested peer. */
  prepare(dossierId: string, source: string, dossier: Dossier): Promise<void> {
    return this.outbound.prepare(dossierId, source, dossier);
  }

  /** The exchange job: encrypt, sign and POST one envelope. Throws to be retried. */
  async run(job: ExchangeJob): Promise<void> {
    if (job.type === 'dossier') return this.outbound.send(job.envelopeId);
    if (job.type === 'recall') return this.recalls.send(job.dossierId, job.peer, job.envelopeId);
    if (job.type === 'answers') return this.matchIn.send(job.matchId, job.envelopeId);
    return this.hits.send(job.dossierId, job.envelopeId);
  }

  /** Retries spent, or the peer refused: the delivery is dead-lettered with the reason. */
  async failed(job: ExchangeJob, err: Error): Promise<void> {
    if (job.type === 'recall') return this.recalls.failed(job.dossierId, job.peer, job.envelopeId, err);
    if (job.type === 'answers') {
      const peer = (await this.cx.deps.matchStore.get(job.matchId))?.peer;
      await this.cx.deps.audit.append({ kind: 'decision', action: 'exchange.answers_failed', match: job.matchId, packet: job.envelopeId, ...(peer ? { recipient: `peer:${peer}` } : {}), reason: err.message.slice(0, 200) });
      return;
    }
    return this.outbound.failed(job, err);
  }

  /** After the source's recall of a dossier: passes it on to the peers it reached (recall-relay.ts). */
  async recallPeers(dossierId: string, source: string, recall: { reason: string; issuedAt: string }): Promise<Array<{ peer: string; state: PeerDeliveryState }>> {
    const deliveries = await this.deliveries(dossierId);
    const out = await this.recalls.recallPeers(dossierId, source, recall, deliveries);
    // Nothing follows a recall: the copy of the dossier an after-match peer's follow-up needed goes now.
    for (const d of deliveries) if (d.matchEnvelopeId) await this.followUps.dropHeld(dossierId, d.peer, d.matchEnvelopeId, 'the dossier was recalled');
    return out;
  }

  /** After new hits on a dossier: relays them to the peer it came from, if it came from one. */
  onNewHits(dossierId: string, source: string, total: number): Promise<void> {
    return this.hits.onNewHits(dossierId, source, total);
  }

  /** `POST /v1/exchange/inbound` from the peer `peerId` (the credential's). */
  receive(clientId: string, peerId: string, armored: unknown, clientCert?: string): Promise<InboundResult> {
    return this.inbound.receive(clientId, peerId, armored, clientCert);
  }
}
