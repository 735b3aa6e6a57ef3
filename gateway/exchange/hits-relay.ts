/**
 * Hits relay. Hits this gateway's partners report on a peer's dossier are relayed back to the
 * originating gateway (an envelope of type `hits` quoting the original envelope id); there they are
 * mapped from the envelope refs back to the dossier's own subject ids and merged into its hits bundle,
 * marked `via` the force they came through. What of the hits crosses is the peer file's hits policy
 * (hits-policy.ts: kinds, detail kept, dropped or generalised, record refs kept or dropped). Hits relayed onto a dossier its source has recalled are
 * refused (`dossier_recalled`), like a partner's. Every step is audited on both sides.
 */
import { hmacId, unseal } from '../crypto/seal.js';
import { validateHits } from '../dossier/validate.js';
import { GatewayError, type ErrorDetail } from '../errors/index.js';
import type { StoredHit } from '../hits/store.js';
import type { PeerPolicy } from '../policy/types.js';
import { PermanentExchangeError } from '../queue/exchange-queue.js';
import { isRecalled } from '../store/dossiers.js';
import type { EnvelopeRecord } from '../store/exchange.js';
import { isPeerSource, type ExchangeContext } from './context.js';
import { agreementOf, pick, type EnvelopeHeader } from './envelope.js';
import { applyHitsPolicy } from './hits-policy.js';

export class HitsRelay {
  constructor(private readonly cx: ExchangeContext) {}

  /** After new hits on a dossier: if it came from a peer, queue the relay of all its hits so far. */
  async onNewHits(dossierId: string, source: string, total: number): Promise<void> {
    if (!isPeerSource(source)) return;
    if (!(await this.cx.records.hasOrigin(dossierId))) return;
    await this.cx.deps.queue().enqueue({ type: 'hits', dossierId, envelopeId: this.cx.hitsEnvelopeId(dossierId, total) });
  }

  /** The relay job: every hit on the dossier so far, to the gateway it came from. */
  async send(dossierId: string, envelopeId: string): Promise<void> {
    const { deps } = this.cx;
    const origin = await this.cx.records.origin(dossierId);
    if (!origin.peer || !origin.envelopeId) throw new PermanentExchangeError(`dossier ${dossierId} has no peer origin`);
    const { policy, key } = await this.cx.peerAndKey(origin.peer);
    // The peer file's hits policy says what of the partners' hits may cross (hits-policy.ts).
    const { relayed: hits, notRelayed } = applyHitsPolicy(await deps.hitStore.hits(dossierId), policy.hits);
    if (hits.length === 0) {
      if (notRelayed > 0) {
        await deps.audit.append({ kind: 'decision', action: 'exchange.blocked', dossier: dossierId, packet: envelopeId, recipient: `peer:${origin.peer}`, reason: 'hit_kind_not_permitted' });
      }
      return;
    }
    const { message } = await this.cx.seal('hits', envelopeId, policy, key, { hits }, origin.envelopeId);
    // Audit first: a transfer that cannot be logged does not happen (a retried relay is logged again).
    await deps.audit.append({
      kind: 'disclosure',
      action: 'exchange.hits_relayed',
      dossier: dossierId,
      packet: envelopeId,
      recipient: `peer:${origin.peer}`,
      agreement: agreementOf(policy),
      count: hits.length,
      notRelayed,
      hitsPolicy: { detail: policy.hits.detail, partnerRecordRef: policy.hits.partnerRecordRef },
      partners: [...new Set(hits.map((h) => h.partner))].sort(),
      keyFingerprint: key.fingerprint,
    });
    await this.cx.post(policy, message);
  }

  /** Hits a peer relays back on a dossier envelope this gateway sent it. */
  async receive(clientId: string, peerId: string, policy: PeerPolicy, header: EnvelopeHeader, raw: unknown) {
    const { deps, records } = this.cx;
    const env = await records.envelope(header.inReplyTo!);
    if (!env.dossier || env.peer !== peerId || !env.refs) throw new GatewayError('not_found', 'No dossier envelope of this gateway to that peer has this id');
    const dossierId = env.dossier;
    await this.refuseRecalled(clientId, peerId, policy, header, env);
    const list = Array.isArray(raw) ? (raw as Array<Record<string, unknown>>) : [];
    // The hits' content is checked against the hits schema, like a partner's.
    const checked = validateHits({
      schema: 'cordon.hits/v1',
      packet: header.inReplyTo,
      hits: list.map((h) => pick(h ?? {}, ['subject', 'kind', 'detail', 'matchedOn', 'confidence', 'partnerRecordRef'])),
    });
    const refs = JSON.parse(unseal(deps.keyring.seal, env.refs, `${header.inReplyTo}:refs`).toString('utf8')) as Record<string, string>;
    const problems: ErrorDetail[] = [];
    const hits: StoredHit[] = checked.hits.map((h, i) => {
      const subject = Object.hasOwn(refs, h.subject) ? refs[h.subject]! : '';
      if (!subject) problems.push({ path: `/hits/${i}/subject`, message: 'is not a subject ref of that envelope' });
      const src = list[i]!;
      const partner = typeof src.partner === 'string' && /^[a-z0-9][a-z0-9-]{0,63}$/.test(src.partner) ? src.partner : 'unknown';
      const reference = typeof (src.agreement as { reference?: unknown })?.reference === 'string' ? String((src.agreement as { reference: string }).reference).slice(0, 100) : 'unknown';
      const receivedAt = typeof src.receivedAt === 'string' && Number.isFinite(Date.parse(src.receivedAt)) ? src.receivedAt : new Date().toISOString();
      return {
        id: hmacId(deps.keyring.hitId, 'peer', peerId, String(src.id ?? i)),
        subject,
        partner,
        packet: header.inReplyTo!,
        kind: h.kind,
        detail: h.detail,
        matchedOn: h.matchedOn,
        confidence: h.confidence,
        ...(h.partnerRecordRef !== undefined ? { partnerRecordRef: h.partnerRecordRef } : {}),
        receivedAt,
        agreement: { reference },
        // Whether the peer's partner signed it, as the peer gateway (whose signature the envelope carries) says.
        signed: src.signed === true,
        via: policy.peer.force,
      };
    });
    if (problems.length) throw new GatewayError('unknown_subject_ref', 'Some hits name subjects that were not in the envelope; nothing was stored', problems.slice(0, 50));
    if (!(await records.claimSeen(peerId, header.id, dossierId))) {
      return { type: 'hits', envelope: header.id, accepted: 0, duplicates: hits.length, replayed: true };
    }
    const held = await deps.hitStore.existing(dossierId, hits.map((h) => h.id));
    const fresh = hits.filter((h) => !held.has(h.id));
    try {
      await deps.audit.append({
        kind: 'combination',
        action: 'exchange.hits_received',
        actor: clientId,
        dossier: dossierId,
        packet: header.id,
        recipient: env.source,
        source: `peer:${peerId}`,
        agreement: agreementOf(policy),
        count: fresh.length,
        duplicates: hits.length - fresh.length,
        kinds: [...new Set(fresh.map((h) => h.kind))].sort(),
        partners: [...new Set(fresh.map((h) => h.partner))].sort(),
      });
      const { added } = fresh.length
        ? await deps.hitStore.add(dossierId, env.source ?? '', fresh, [], { refuseRecalled: true }).catch(async (err: unknown) => {
            // Recalled between the check above and now: the log says nothing was kept after all.
            if (err instanceof GatewayError && err.code === 'dossier_recalled') await this.auditRefusal(clientId, peerId, policy, header, env, 'recalled while the hits were being stored');
            throw err;
          })
        : { added: 0 };
      return { type: 'hits', envelope: header.id, accepted: added, duplicates: hits.length - added, replayed: false };
    } catch (err) {
      await records.forgetSeen(peerId, header.id).catch(() => undefined);
      throw err;
    }
  }

  /**
   * A dossier its source has recalled (withdrawn or corrected) takes no more hits, relayed or not:
   * like a partner's (hits/hits.ts), a peer's are refused with `dossier_recalled` before they are read,
   * nothing is stored (no replay record either, so a resend is refused the same way), and the refusal is
   * audited as `hits.refused` (and as `exchange.rejected`, like every envelope refused). The sending
   * gateway dead-letters the relay on the 409 and audits that (`exchange.hits_failed`).
   */
  private async refuseRecalled(clientId: string, peerId: string, policy: PeerPolicy, header: EnvelopeHeader, env: EnvelopeRecord): Promise<void> {
    const record = await this.cx.deps.store.get(env.dossier!);
    if (!record || !isRecalled(record.state)) return;
    await this.auditRefusal(clientId, peerId, policy, header, env, 'refused before reading the hits');
    const when = record.recall?.at ? ` at ${record.recall.at}` : '';
    throw new GatewayError(
      'dossier_recalled',
      `The dossier that envelope ${header.inReplyTo} carried was recalled ("${record.state}") by its originator${when}: hits can no longer be relayed onto it; nothing was stored`,
      [{ path: '/envelope/inReplyTo', message: 'the dossier was recalled', reason: record.state, ...(record.recall?.at ? { recalledAt: record.recall.at } : {}) }],
    );
  }

  private async auditRefusal(clientId: string, peerId: string, policy: PeerPolicy, header: EnvelopeHeader, env: EnvelopeRecord, note: string): Promise<void> {
    await this.cx.deps.audit
      .append({
        kind: 'rejection',
        action: 'hits.refused',
        actor: clientId,
        source: `peer:${peerId}`,
        via: policy.peer.force,
        packet: header.inReplyTo,
        envelope: header.id,
        dossier: env.dossier,
        recipient: env.source,
        reason: 'dossier_recalled',
        note,
      })
      .catch(() => undefined); // the refusal stands whether or not it could be logged
  }
}
