/**
 * Inbound: `POST /v1/exchange/inbound` from a peer gateway. Only the pinned key of the peer the bearer
 * credential speaks for verifies the signature; the envelope must be addressed to this force, fresh and
 * not seen before (a replay answers with what it made the first time); then it goes by type: a dossier
 * is validated and accepted like a force's (gateway/pipeline/accept.ts) with the source `peer:<id>`, and
 * fanned out to this gateway's own partners under its own policies; hits go to the hits relay, a recall
 * to the recall relay. A peer whose agreement is not in force (policy/agreement.ts) has every envelope
 * refused before it is opened. Nothing is stored unless it all holds; every refusal is audited.
 */
import { validateDossier } from '../dossier/validate.js';
import { GatewayError } from '../errors/index.js';
import { accept, choiceEvents, newDossierId, newRecord } from '../pipeline/accept.js';
import type { PeerPolicy } from '../policy/types.js';
import { PEER_SOURCE_PREFIX, peerAgreementLapsed, type ExchangeContext } from './context.js';
import { agreementOf, checkHeader, openEnvelope, type EnvelopeHeader } from './envelope.js';
import type { HitsRelay } from './hits-relay.js';
import type { MatchIn } from './match-in.js';
import type { MatchOut } from './match-out.js';
import type { RecallRelay } from './recall-relay.js';

export interface InboundResult {
  type: string;
  envelope: string;
  id?: string;
  state?: string;
  accepted?: number;
  duplicates?: number;
  replayed: boolean;
}

export class Inbound {
  constructor(
    private readonly cx: ExchangeContext,
    private readonly hits: HitsRelay,
    private readonly recalls: RecallRelay,
    private readonly matchIn: MatchIn,
    private readonly matchOut: MatchOut,
  ) {}

  /** From the peer `peerId` (the credential's). Nothing is stored unless it all holds. */
  async receive(clientId: string, peerId: string, armored: unknown, clientCert?: string): Promise<InboundResult> {
    try {
      return await this.receiveChecked(clientId, peerId, armored, clientCert);
    } catch (err) {
      if (err instanceof GatewayError) {
        await this.cx.deps.audit
          .append({ kind: 'rejection', action: 'exchange.rejected', actor: clientId, source: `peer:${peerId}`, reason: err.code, paths: err.details?.map((d) => d.path ?? '').slice(0, 50) })
          .catch(() => undefined);
      }
      throw err;
    }
  }

  private async receiveChecked(clientId: string, peerId: string, armored: unknown, clientCert?: string): Promise<InboundResult> {
    const view = this.cx.deps.peers.view();
    const policy = view.policies.get(peerId);
    if (!policy) throw new GatewayError('forbidden', `No peer file for "${peerId}": this gateway does not exchange with it`);
    // Before anything is read: nothing is taken from a peer whose agreement is not in force.
    const lapsed = peerAgreementLapsed(policy, new Date());
    if (lapsed) throw new GatewayError(lapsed.code, `${lapsed.message}; nothing was stored`);
    const pinned = policy.peer.tls?.clientCertFingerprint;
    if (pinned !== undefined && clientCert?.toUpperCase() !== pinned) {
      throw new GatewayError('forbidden', `Peer ${peerId} must present its pinned TLS client certificate (mutual TLS)`);
    }
    if (typeof armored !== 'string' || armored.length === 0) throw new GatewayError('signature_invalid', 'The body must be an armored OpenPGP message');
    const key = await view.keys.get(peerId);
    if (!key || 'invalid' in key) throw new GatewayError('recipient_key_invalid', `The pinned key of peer ${peerId} cannot be used (${key?.invalid ?? 'no key'}); nothing was stored`);
    const doc = await openEnvelope(armored, this.cx.deps.gatewayKey, key, peerId);
    let me: string | undefined;
    try {
      me = this.cx.forceId();
    } catch {
      /* reported by the header check */
    }
    const header = checkHeader(doc?.envelope, policy, me, Date.now(), this.cx.deps.freshness);
    if (header.type === 'dossier') return this.receiveDossier(clientId, peerId, policy, header, doc.dossier);
    if (header.type === 'match') return this.matchIn.receive(clientId, peerId, policy, header, doc as Record<string, unknown>);
    if (header.type === 'answers') return this.matchOut.receive(clientId, peerId, policy, header, doc.matches);
    if (header.type === 'recall') {
      // A recall of a match envelope closes the match request it made here; otherwise it recalls a dossier.
      const closed = await this.matchIn.recall(clientId, peerId, policy, header, doc as Record<string, unknown>);
      return closed ?? this.recalls.receive(clientId, peerId, policy, header, doc as Record<string, unknown>);
    }
    return this.hits.receive(clientId, peerId, policy, header, doc.hits);
  }

  private async receiveDossier(clientId: string, peerId: string, policy: PeerPolicy, header: EnvelopeHeader, body: unknown): Promise<InboundResult> {
    const { deps, records } = this.cx;
    const prior = await records.seen(peerId, header.id);
    if (prior) return { type: 'dossier', envelope: header.id, id: prior, replayed: true };
    const dossier = validateDossier(body);
    if (dossier.originator.force !== header.from) {
      throw new GatewayError('envelope_invalid', 'The dossier was not originated by the force that sent it; nothing was stored', [
        { path: '/dossier/originator/force', message: `must be "${header.from}"` },
      ]);
    }
    const enqueue = deps.enqueueDossier;
    if (!enqueue) throw new GatewayError('internal', 'inbound exchange needs the api role');
    // The same recipient choice as a force's own dossier: this gateway's partners get what the peer's dossier asks of them.
    const { record, choice } = newRecord(newDossierId(), `${PEER_SOURCE_PREFIX}${peerId}`, clientId, deps.live().set, dossier);
    const { id } = record;
    // First writer wins: a concurrent or later copy of this envelope gets this dossier's id.
    if (!(await records.claimSeen(peerId, header.id, id))) {
      return { type: 'dossier', envelope: header.id, id: (await records.seen(peerId, header.id)) ?? '', replayed: true };
    }
    const undo = () => records.discardInbound(id, peerId, header.id);
    const failure = 'The envelope could not be stored; nothing was kept, try again';
    try {
      await accept(
        { store: deps.store, audit: deps.audit, sealKey: deps.keyring.seal, retention: deps.retention, enqueue },
        {
          record,
          dossier,
          collection: {
            kind: 'collection',
            action: 'exchange.dossier_received',
            actor: clientId,
            dossier: id,
            packet: header.id,
            source: record.source,
            policyRevision: record.revision,
            agreement: agreementOf(policy),
            classification: dossier.classification,
            subjects: dossier.subjects.length,
            justification: { agreement: policy.agreement.reference, agreementPurpose: policy.agreement.purpose, dossierPurpose: `sealed with dossier ${id}` },
            index: deps.audit.terms(record.source, dossier.reference, dossier.subjects.map((s) => s.id)),
          },
          // Hits on this dossier are relayed back, and a recall of its envelope finds it, for as long as it is kept.
          choice: choiceEvents(record, choice, dossier),
          alsoStore: () => records.recordOrigin(id, peerId, header.id),
          undo,
          failure,
        },
      );
    } catch (err) {
      // The store itself failed (accept undoes every later step): nothing of it stays either.
      await deps.store.discard(id).catch(() => undefined);
      await undo().catch(() => undefined);
      if (err instanceof GatewayError) throw err;
      throw new GatewayError('store_unavailable', failure, undefined, { cause: err });
    }
    return { type: 'dossier', envelope: header.id, id, replayed: false };
  }
}
