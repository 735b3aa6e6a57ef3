/**
 * Follow-up: the story of a match request answered. A partner under an after-match agreement was sent
 * identifiers only (fanout.ts); for each subject it answers `hit`, and only those, it now gets the
 * disclosure its full policy allows, with the same refs as in the match request (one code path:
 * pipeline/disclose.ts, narrowed to those subjects; associates, locations and details that point only
 * at subjects left out are dropped by redact). Under `followUp: automatic` that happens at once, under
 * `followUp: approval` once the force approves it (approvals.ts), naming the approving officer. No hit,
 * no disclosure, ever. A recalled dossier, an expired match request or an agreement no longer in force
 * stops it.
 *
 * Exactly once, whatever retries and races happen: each follow-up packet is first claimed in the
 * partner's follow-up record (a compare-and-set, store/followups.ts) with its subjects and an id derived
 * from them, then made and filed under that id (the mailbox files an id once). The sealed dossier, kept
 * while match requests await answers, is erased once every after-match partner is settled.
 */
import type { AuditLog } from '../audit/log.js';
import type { GatewayKey, RecipientKey } from '../crypto/openpgp.js';
import { encryptAndSignBinary } from '../crypto/binary.js';
import type { Keyring } from '../crypto/keyring.js';
import { hmacId, seal, unseal } from '../crypto/seal.js';
import { GatewayError } from '../errors/index.js';
import type { Mailbox, PacketRecord } from '../mailbox/mailbox.js';
import type { LiveSet } from '../policy/live.js';
import { followUpMode } from '../policy/match.js';
import type { PartnerPolicy } from '../policy/types.js';
import { agreementOf, disclose, packetPlaintext } from '../pipeline/disclose.js';
import { packetExpiry } from '../retention/schedule.js';
import { packets as packetsMetric } from '../metrics/metrics.js';
import { isRecalled, type Delivery, type DossierStore } from '../store/dossiers.js';
import type { FollowUpRecord, FollowUpRound, FollowUpStore, HeldFollowUp } from '../store/followups.js';
import type { AnswerStore, StoredAnswer } from '../store/matches.js';
import { openSealed, usableRecipientKey, type KeptSealed } from './fanout.js';

export interface FollowUpDeps {
  store: DossierStore;
  mailbox: Mailbox;
  audit: AuditLog;
  live: () => LiveSet<RecipientKey>;
  gatewayKey: GatewayKey;
  keyring: Keyring;
  answerStore: Pick<AnswerStore, 'all'>;
  followUps: FollowUpStore;
  packetTtlDays?: number;
}

/** What an after-match partner's delivery has come to (shown as `stage` in the dossier's status). */
export type MatchStage = 'match_sent' | 'no_trace' | 'awaiting_approval' | 'follow_up_queued' | 'disclosed';

/** An after-match partner's match request, its policy, and what was answered and approved so far. */
export interface Context {
  match: PacketRecord;
  policy: PartnerPolicy;
  /** The dossier's own ids of the subjects the match request asked about. */
  asked: Set<string>;
  answers: StoredAnswer[];
  /** The subjects answered hit. */
  hits: string[];
  held: HeldFollowUp;
}

/** Attempts when another job or approval changes the same record at the same moment. */
const ATTEMPTS = 3;

export class FollowUps {
  constructor(private readonly deps: FollowUpDeps) {}

  /** The job: makes every follow-up due for the partner, then erases the sealed dossier if all are settled. */
  async run(dossierId: string, partner: string): Promise<void> {
    const ctx = await this.context(dossierId, partner);
    if (!ctx) return;
    const { match, policy } = ctx;
    const now = new Date();
    if (Date.parse(match.expiresAt) > now.getTime()) {
      const record = await this.claim(dossierId, partner, ctx, now);
      for (const round of record.rounds) if (!(await this.deps.mailbox.store.exists(round.packet))) await this.make(dossierId, match, policy, round, now);
    }
    await this.eraseIfSettled(dossierId);
  }

  /** The partner's match request and what was answered on it, or undefined when nothing may follow. */
  async context(dossierId: string, partner: string): Promise<Context | undefined> {
    const { store, mailbox } = this.deps;
    const record = await store.get(dossierId);
    if (!record || isRecalled(record.state)) return undefined; // a recall stops every follow-up
    const delivery = (await store.deliveries(dossierId))[partner];
    const match = delivery?.matchPacketId ? await mailbox.get(delivery.matchPacketId) : undefined;
    const policy = this.deps.live().set.partners.get(partner);
    if (!match || !policy) return undefined;
    const asked = new Set(this.subjectsOf(match));
    const answers = (await this.deps.answerStore.all(dossierId)).filter((a) => a.partner === partner && asked.has(a.subject));
    const hits = answers.filter((a) => a.result === 'hit').map((a) => a.subject);
    return { match, policy, asked, answers, hits, held: await this.deps.followUps.get(dossierId, partner) };
  }

  /** Claims the subjects due (answered hit, approved if approval is needed, not yet claimed) as one new round. */
  private async claim(dossierId: string, partner: string, first: Context, now: Date): Promise<FollowUpRecord> {
    let ctx: Context | undefined = first;
    for (let attempt = 1; ctx; attempt++) {
      const { record, sealed } = ctx.held;
      const claimed = new Set(record.rounds.flatMap((r) => r.subjects));
      const approval = followUpMode(ctx.policy.agreement) === 'approval';
      const due = ctx.hits.filter((s) => !claimed.has(s) && (!approval || record.approvals.some((a) => a.subjects.includes(s)))).sort();
      if (!due.length) return record;
      const approvedBy = approval ? dedupe(record.approvals.filter((a) => a.subjects.some((s) => due.includes(s))).map((a) => a.officer)) : undefined;
      const round: FollowUpRound = { packet: this.packetId(dossierId, partner, due), subjects: due, at: now.toISOString(), ...(approvedBy ? { approvedBy } : {}) };
      const next = { ...record, rounds: [...record.rounds, round] };
      if (await this.deps.followUps.put(dossierId, partner, next, sealed)) return next;
      if (attempt >= ATTEMPTS) throw new GatewayError('store_unavailable', 'The follow-up record kept changing; the job is retried');
      ctx = await this.context(dossierId, partner);
    }
    return { approvals: [], rounds: [] };
  }

  /** A follow-up packet's id: derived from the dossier, the partner and the subjects it discloses. */
  packetId(dossierId: string, partner: string, subjects: string[]): string {
    return 'pkt_' + hmacId(this.deps.keyring.packetId, dossierId, partner, 'follow-up', ...subjects);
  }

  /** Makes, audits and files one claimed follow-up packet (a block is recorded on the delivery instead). */
  private async make(dossierId: string, match: PacketRecord, policy: PartnerPolicy, round: FollowUpRound, now: Date): Promise<void> {
    const { deps } = this;
    const partner = match.partner;
    const live = deps.live();
    const dossier = openSealed(deps.keyring.seal, dossierId, await deps.store.getSealed(dossierId));
    const byRef = JSON.parse(unseal(deps.keyring.seal, match.refs, match.id).toString('utf8')) as Record<string, string>;
    const disclosed = await disclose({
      dossierId,
      source: match.source,
      dossier,
      recipient: partner,
      policy,
      decide: () => live.decider.decide(partner, dossier, now),
      key: () => usableRecipientKey(live, partner, now),
      pseudonymKey: deps.keyring.pseudonym(partner),
      only: new Set(round.subjects),
      refs: new Map(Object.entries(byRef).map(([ref, id]) => [id, ref])),
    });
    if ('block' in disclosed) {
      await deps.audit.append({ kind: 'decision', action: 'delivery.blocked', dossier: dossierId, recipient: partner, policyRevision: disclosed.revision, reason: disclosed.block.reason, agreement: agreementOf(policy) });
      const delivery: Delivery = { state: 'blocked', reason: disclosed.block.reason, message: disclosed.block.message, updatedAt: now.toISOString(), matchPacketId: match.id };
      await deps.store.setDelivery(dossierId, partner, delivery);
      return;
    }
    const expires = packetExpiry(now, policy.agreement.retentionDays, deps.packetTtlDays);
    const plaintext = packetPlaintext({ id: round.packet, recipient: partner, issuedAt: now, expiresAt: expires, dossier, revision: disclosed.revision, policy }, disclosed.redacted);
    const message = await encryptAndSignBinary(plaintext, disclosed.key, deps.gatewayKey);
    const terms = deps.audit.dossierTerms(match.source, dossier.reference);
    await deps.audit.append(
      disclosed.event('followup.created', round.packet, terms, { matchPacket: match.id, subjects: disclosed.subjects.length, ...(round.approvedBy ? { approvedBy: round.approvedBy } : {}) }),
    );
    const packet: PacketRecord = {
      id: round.packet,
      partner,
      dossier: dossierId,
      source: match.source,
      createdAt: now.toISOString(),
      expiresAt: expires.toISOString(),
      state: 'delivered',
      message,
      refs: seal(deps.keyring.seal, JSON.stringify(disclosed.byRef), round.packet),
      subjects: seal(deps.keyring.seal, JSON.stringify(disclosed.subjects), `${round.packet}:subjects`),
    };
    const { created } = await deps.mailbox.create([{ packet, delivery: { state: 'delivered', packetId: packet.id, expiresAt: packet.expiresAt, updatedAt: packet.createdAt, matchPacketId: match.id } }]);
    if (created[0]) packetsMetric.inc({ partner, outcome: 'delivered', reason: '', revision: disclosed.revision });
  }

  /**
   * The stage of each after-match partner's delivery: `match_sent` until a hit or every answer is in,
   * `no_trace` when every subject was answered no trace, `awaiting_approval` while a hit waits for the
   * force, `follow_up_queued` while it is being made, `disclosed` once every hit so far is.
   */
  async stages(dossierId: string, deliveries: Record<string, Delivery>): Promise<Record<string, MatchStage>> {
    const out: Record<string, MatchStage> = {};
    for (const [partner, d] of Object.entries(deliveries)) {
      if (!d.matchPacketId) continue;
      const ctx = await this.context(dossierId, partner);
      if (!ctx) continue;
      const claimed = new Set(ctx.held.record.rounds.flatMap((r) => r.subjects));
      const waiting = ctx.hits.filter((s) => !claimed.has(s));
      const approved = (s: string) => ctx.held.record.approvals.some((a) => a.subjects.includes(s));
      // Claimed is not made: the last follow-up is disclosed once the delivery (as read) is of its packet.
      const last = ctx.held.record.rounds.at(-1);
      if (waiting.length) out[partner] = followUpMode(ctx.policy.agreement) === 'approval' && waiting.some((s) => !approved(s)) ? 'awaiting_approval' : 'follow_up_queued';
      else if (last) out[partner] = d.packetId === last.packet ? 'disclosed' : 'follow_up_queued';
      else if (ctx.asked.size > 0 && [...ctx.asked].every((s) => ctx.answers.some((a) => a.subject === s && a.result === 'no_trace'))) out[partner] = 'no_trace';
      else out[partner] = 'match_sent';
    }
    return out;
  }

  /**
   * Erases the sealed dossier once no follow-up can come from it any more: every after-match partner
   * has answered every subject and been sent every hit, or its match request has expired. `kept`: from
   * the fan-out that has just kept it (fanout.ts), which has decided and knows the deliveries.
   */
  async eraseIfSettled(dossierId: string, kept?: KeptSealed): Promise<void> {
    const { store } = this.deps;
    let deliveries = kept?.deliveries;
    if (!deliveries) {
      const record = await store.get(dossierId);
      if (!record || record.state === 'accepted') return; // the fan-out decides first
      // A recall stops every follow-up: nothing is left to wait for.
      deliveries = isRecalled(record.state) ? {} : await store.deliveries(dossierId);
    }
    const matched = Object.entries(deliveries).flatMap(([partner, d]) => (d.matchPacketId ? [{ partner, matchId: d.matchPacketId }] : []));
    // Every partner's answers in one read, made after the fan-out decided: an answer stored later brings
    // its own follow-up job, which checks again.
    const answers = matched.length ? await this.deps.answerStore.all(dossierId) : [];
    for (const { partner, matchId } of matched) if (!(await this.settled(dossierId, partner, matchId, answers, kept?.created))) return;
    if (await store.eraseSealed(dossierId)) {
      await this.deps.audit.append({ kind: 'erasure', action: 'dossier.sealed_content_erased', dossier: dossierId, reason: 'every match request answered and followed up' });
    }
  }

  /**
   * True when no follow-up can come to the partner any more: its match request has expired (or is gone,
   * or its agreement), or every subject is answered and every hit made. `known`: packets just created.
   */
  private async settled(dossierId: string, partner: string, matchId: string, answers: StoredAnswer[], known: PacketRecord[] = []): Promise<boolean> {
    const match = known.find((p) => p.id === matchId) ?? (await this.deps.mailbox.get(matchId));
    const policy = this.deps.live().set.partners.get(partner);
    if (!match || !policy || Date.parse(match.expiresAt) <= Date.now()) return true;
    const asked = new Set(this.subjectsOf(match));
    const mine = answers.filter((a) => a.partner === partner && asked.has(a.subject));
    const answered = new Set(mine.filter((a) => a.result !== undefined).map((a) => a.subject));
    if ([...asked].some((s) => !answered.has(s))) return false;
    // Only now the follow-up record (most checks end above, before every answer is in).
    const { record } = await this.deps.followUps.get(dossierId, partner);
    const claimed = new Set(record.rounds.flatMap((r) => r.subjects));
    if (mine.some((a) => a.result === 'hit' && !claimed.has(a.subject))) return false;
    // Claimed is not made: another job may have claimed a round and not yet read the sealed dossier
    // to make its packet. Erasing now would leave that follow-up unmakeable for ever.
    for (const round of record.rounds) if (!(await this.deps.mailbox.store.exists(round.packet))) return false;
    return true;
  }

  private subjectsOf(packet: PacketRecord): string[] {
    if (packet.subjects) return JSON.parse(unseal(this.deps.keyring.seal, packet.subjects, `${packet.id}:subjects`).toString('utf8')) as string[];
    return Object.values(JSON.parse(unseal(this.deps.keyring.seal, packet.refs, packet.id).toString('utf8')) as Record<string, string>);
  }
}

function dedupe<T extends { id: string; name: string }>(officers: T[]): T[] {
  const seen = new Set<string>();
  return officers.filter((o) => !seen.has(`${o.id}\u0000${o.name}`) && seen.add(`${o.id}\u0000${o.name}`) !== undefined);
}
