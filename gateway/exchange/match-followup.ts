/**
 * Follow-up after a peer's match answers (the asking side). For each subject the peer force answered
 * `hit`, and only those, the peer gets a dossier envelope under its full peer policy, with the same refs
 * as in the match envelope (pipeline/disclose.ts narrowed to those subjects): at once under `followUp:
 * automatic`, or once an officer of the force approves it under `followUp: approval`
 * (`POST /v1/dossiers/:id/approvals` with `"partner": "peer:<id>"`). No hit: nothing more, ever.
 *
 * Exactly once, as for partners (fanout/followup.ts): each follow-up is first claimed in the peer's
 * follow-up record (a compare-and-set, store/followups.ts, under `peer:<id>`) with its subjects and an
 * envelope id derived from them, then prepared under that id (kept once) and queued under it (a job id
 * is queued once). Once every ref is answered and every hit followed up, the match envelope's copy of
 * the dossier is erased. A recall, or an agreement no longer in force, stops it.
 */
import type { Client } from '../config/clients.js';
import type { Dossier } from '../dossier/types.js';
import { hmacId, seal, unseal } from '../crypto/seal.js';
import { GatewayError, type ErrorDetail } from '../errors/index.js';
import { disclose } from '../pipeline/disclose.js';
import { followUpMode } from '../policy/match.js';
import type { PeerPolicy } from '../policy/types.js';
import { isRecalled } from '../store/dossiers.js';
import type { EnvelopeRecord } from '../store/exchange.js';
import type { FollowUpRecord, FollowUpRound, HeldFollowUp } from '../store/followups.js';
import type { StoredAnswer } from '../store/matches.js';
import { peerAgreementLapsed, type ExchangeContext } from './context.js';
import { agreementOf } from './envelope.js';

export type PeerMatchStage = 'match_sent' | 'no_trace' | 'awaiting_approval' | 'follow_up_queued' | 'disclosed';

interface Context {
  matchId: string;
  env: EnvelopeRecord;
  policy: PeerPolicy;
  asked: string[];
  answers: StoredAnswer[];
  hits: string[];
  held: HeldFollowUp;
}

/** An approval of a follow-up to a peer (the body of `POST /v1/dossiers/:id/approvals`, already checked). */
export interface PeerApproval {
  partner: string;
  officer: { name: string; id: string };
  subjects?: string[];
}

const ATTEMPTS = 3;

export class PeerFollowUps {
  constructor(private readonly cx: ExchangeContext) {}

  private answerer(peer: string): string {
    return `peer:${peer}`;
  }

  /** The peer's match envelope, its policy and what was answered and approved so far; undefined when nothing may follow. */
  async context(dossierId: string, peer: string): Promise<Context | undefined> {
    const { deps, records } = this.cx;
    const delivery = await records.delivery(dossierId, peer);
    const matchId = delivery?.matchEnvelopeId;
    if (!matchId) return undefined;
    const env = await records.envelope(matchId);
    const record = await deps.store.get(dossierId);
    if (!record || isRecalled(record.state)) {
      // A recall stops every follow-up: the copy of the dossier goes at once.
      if (env.held) await this.dropHeld(dossierId, peer, matchId, 'the dossier was recalled');
      return undefined;
    }
    const policy = deps.peers.view().policies.get(peer);
    if (!policy || !env.asked) return undefined;
    const asked = JSON.parse(unseal(deps.keyring.seal, env.asked, `${matchId}:asked`).toString('utf8')) as string[];
    const answers = (await deps.answerStore.all(dossierId)).filter((a) => a.partner === this.answerer(peer) && asked.includes(a.subject));
    const hits = answers.filter((a) => a.result === 'hit').map((a) => a.subject);
    return { matchId, env, policy, asked, answers, hits, held: await deps.followUps.get(dossierId, this.answerer(peer)) };
  }

  /** Makes every follow-up due for the peer, then erases the copy of the dossier if nothing more can follow. */
  async run(dossierId: string, peer: string): Promise<void> {
    const ctx = await this.context(dossierId, peer);
    if (!ctx) return;
    const record = await this.claim(dossierId, peer, ctx);
    for (const round of record.rounds) if (!(await this.cx.records.envelope(round.packet)).dossier) await this.make(dossierId, peer, ctx, round);
    const answered = new Set(ctx.answers.map((a) => a.subject));
    const claimed = new Set(record.rounds.flatMap((r) => r.subjects));
    if (ctx.asked.every((s) => answered.has(s)) && ctx.hits.every((s) => claimed.has(s))) {
      await this.dropHeld(dossierId, peer, ctx.matchId, 'every ref of the match envelope answered and followed up');
    }
  }

  /** Erases the match envelope's copy of the dossier (audited, once): nothing more can follow from it. */
  async dropHeld(dossierId: string, peer: string, matchId: string, reason: string): Promise<void> {
    if (!(await this.cx.records.dropHeld(matchId))) return;
    await this.cx.deps.audit.append({ kind: 'erasure', action: 'dossier.sealed_content_erased', dossier: dossierId, packet: matchId, recipient: `peer:${peer}`, reason });
  }

  /** Claims the subjects due (answered hit, approved if approval is needed, not yet claimed) as one new round. */
  private async claim(dossierId: string, peer: string, first: Context): Promise<FollowUpRecord> {
    let ctx: Context | undefined = first;
    for (let attempt = 1; ctx; attempt++) {
      const { record, sealed } = ctx.held;
      const claimed = new Set(record.rounds.flatMap((r) => r.subjects));
      const approval = followUpMode(ctx.policy.agreement) === 'approval';
      const due = ctx.hits.filter((s) => !claimed.has(s) && (!approval || record.approvals.some((a) => a.subjects.includes(s)))).sort();
      if (!due.length) return record;
      const approvedBy = approval ? record.approvals.filter((a) => a.subjects.some((s) => due.includes(s))).map((a) => a.officer) : undefined;
      const round: FollowUpRound = { packet: this.envelopeId(dossierId, peer, due), subjects: due, at: new Date().toISOString(), ...(approvedBy ? { approvedBy } : {}) };
      const next = { ...record, rounds: [...record.rounds, round] };
      if (await this.cx.deps.followUps.put(dossierId, this.answerer(peer), next, sealed)) return next;
      if (attempt >= ATTEMPTS) throw new GatewayError('store_unavailable', 'The follow-up record kept changing; try again');
      ctx = await this.context(dossierId, peer);
    }
    return { approvals: [], rounds: [] };
  }

  /** A follow-up envelope's id: derived from the dossier, the peer and the subjects it discloses. */
  private envelopeId(dossierId: string, peer: string, subjects: string[]): string {
    return 'env_' + hmacId(this.cx.deps.keyring.envelopeId, 'follow-up', dossierId, peer, ...subjects);
  }

  /** Prepares, audits and queues one claimed follow-up envelope (a block is recorded on the delivery instead). */
  private async make(dossierId: string, peer: string, ctx: Context, round: FollowUpRound): Promise<void> {
    const { deps, records } = this.cx;
    const now = new Date();
    const { env, matchId, policy } = ctx;
    if (!env.held || !env.refs || !env.source) return;
    const lapsed = peerAgreementLapsed(policy, now);
    const dossier = JSON.parse(unseal(deps.keyring.seal, env.held, `${matchId}:held`).toString('utf8')) as Dossier;
    const byRef = JSON.parse(unseal(deps.keyring.seal, env.refs, `${matchId}:refs`).toString('utf8')) as Record<string, string>;
    const view = deps.peers.view();
    const disclosed = lapsed
      ? { revision: deps.live().set.revision, block: { reason: lapsed.code, message: lapsed.message } }
      : await disclose({
          dossierId,
          source: env.source,
          dossier,
          recipient: `peer:${peer}`,
          policy,
          decide: () => view.decider.decide(peer, dossier, now),
          key: () => this.cx.peerKeyOrBlock(peer),
          pseudonymKey: deps.keyring.peerPseudonym(peer),
          only: new Set(round.subjects),
          refs: new Map(Object.entries(byRef).map(([ref, id]) => [id, ref])),
        });
    if ('block' in disclosed) {
      await deps.audit.append({ kind: 'decision', action: 'exchange.blocked', dossier: dossierId, packet: round.packet, recipient: `peer:${peer}`, policyRevision: disclosed.revision, reason: disclosed.block.reason });
      await records.replaceDelivery(dossierId, peer, { state: 'blocked', reason: disclosed.block.reason, message: disclosed.block.message, matchEnvelopeId: matchId, updatedAt: now.toISOString() }, ['sent', 'queued']);
      return;
    }
    const enforcesConditions = Object.keys(deps.live().set.gateway.handlingConditions ?? {}).sort();
    const body = { policy: { id: `peer:${peer}`, revision: disclosed.revision }, agreement: agreementOf(policy), enforcesConditions, dossier: disclosed.redacted };
    await deps.audit.append(
      disclosed.event('exchange.followup_prepared', round.packet, undefined, { matchPacket: matchId, subjects: disclosed.subjects.length, ...(round.approvedBy ? { approvedBy: round.approvedBy } : {}) }),
    );
    await records.putEnvelope(round.packet, {
      dossier: dossierId,
      peer,
      source: env.source,
      kind: 'followup',
      sealed: seal(deps.keyring.seal, JSON.stringify(body), round.packet),
      refs: seal(deps.keyring.seal, JSON.stringify(disclosed.byRef), `${round.packet}:refs`),
    });
    await records.replaceDelivery(dossierId, peer, { state: 'queued', envelopeId: round.packet, matchEnvelopeId: matchId, updatedAt: now.toISOString() }, ['sent', 'queued']);
    await deps.queue().enqueue({ type: 'dossier', envelopeId: round.packet });
  }

  /** Where an after-match peer's delivery stands (shown as `stage` in the dossier's `peers`). */
  async stage(dossierId: string, peer: string, currentEnvelope: string | undefined, sent: boolean): Promise<PeerMatchStage | undefined> {
    const ctx = await this.context(dossierId, peer);
    if (!ctx) return undefined;
    const claimed = new Set(ctx.held.record.rounds.flatMap((r) => r.subjects));
    const waiting = ctx.hits.filter((s) => !claimed.has(s));
    const approved = (s: string) => ctx.held.record.approvals.some((a) => a.subjects.includes(s));
    const last = ctx.held.record.rounds.at(-1);
    if (waiting.length) return followUpMode(ctx.policy.agreement) === 'approval' && waiting.some((s) => !approved(s)) ? 'awaiting_approval' : 'follow_up_queued';
    if (last) return currentEnvelope === last.packet && sent ? 'disclosed' : 'follow_up_queued';
    if (ctx.asked.length > 0 && ctx.asked.every((s) => ctx.answers.some((a) => a.subject === s && a.result === 'no_trace'))) return 'no_trace';
    return 'match_sent';
  }

  /**
   * The force approves a follow-up to a peer (`partner: "peer:<id>"`), naming the officer; the dossier
   * was checked by the caller (the force's own, not recalled). Audited before it is kept; then the
   * follow-up is made at once.
   */
  async approve(client: Client, dossierId: string, request: PeerApproval): Promise<{ dossier: string; partner: string; approved: string[]; officer: { name: string; id: string } }> {
    const peer = request.partner.slice('peer:'.length);
    for (let attempt = 1; ; attempt++) {
      const ctx = await this.context(dossierId, peer);
      if (!ctx || followUpMode(ctx.policy.agreement) !== 'approval') {
        throw new GatewayError('nothing_to_approve', `${request.partner} is not asked first under an agreement that needs approval for this dossier`, [{ path: '/partner', message: 'has no match envelope awaiting approval on this dossier' }]);
      }
      const { record: held, sealed } = ctx.held;
      const claimed = new Set(held.rounds.flatMap((r) => r.subjects));
      const approved = new Set(held.approvals.flatMap((a) => a.subjects));
      const awaiting = ctx.hits.filter((s) => !claimed.has(s) && !approved.has(s));
      const asked = request.subjects ?? awaiting;
      const problems: ErrorDetail[] = [];
      if (request.subjects) request.subjects.forEach((s, i) => awaiting.includes(s) || problems.push({ path: `/subjects/${i}`, message: 'has no hit awaiting approval from this peer' }));
      else if (!awaiting.length) problems.push({ path: '/partner', message: 'has no hit awaiting approval on this dossier' });
      if (problems.length) throw new GatewayError('nothing_to_approve', 'Nothing was approved: some of it is not awaiting approval', problems);
      const next = { ...held, approvals: [...held.approvals, { officer: request.officer, client: client.id, at: new Date().toISOString(), subjects: [...asked].sort() }] };
      await this.cx.deps.audit.append({
        kind: 'decision',
        action: 'followup.approved',
        actor: client.id,
        dossier: dossierId,
        recipient: request.partner,
        partner: request.partner,
        officer: request.officer,
        subjects: asked.length,
        matchPacket: ctx.matchId,
        agreement: agreementOf(ctx.policy),
      });
      if (await this.cx.deps.followUps.put(dossierId, this.answerer(peer), next, sealed)) {
        await this.run(dossierId, peer);
        return { dossier: dossierId, partner: request.partner, approved: [...asked].sort(), officer: request.officer };
      }
      if (attempt >= ATTEMPTS) throw new GatewayError('store_unavailable', 'The follow-up record kept changing; nothing was approved, try again');
    }
  }
}
