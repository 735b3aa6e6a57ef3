/**
 * What the force and governance see of partners' answers (matches.ts). For a dossier: per partner and
 * per subject it was sent, `hit` (answered hit, or a hit reported and not withdrawn), `no_trace`, or,
 * unanswered, `pending` until the agreement's `respondWithinDays` have passed since the packet was
 * made and `overdue` after; withdrawals are listed so the force knows what it can no longer rely on.
 * Subjects are those of the packet's sealed refs (mapped back to the dossier's own ids, as for hits).
 * For governance: answers given per agreement and the hit rate, so fishing shows.
 */
import type { Mailbox } from '../mailbox/mailbox.js';
import type { PolicySet } from '../policy/types.js';
import type { DossierStore } from '../store/dossiers.js';
import type { AnswerResult, AnswerStore, StoredAnswer } from '../store/matches.js';
import { compareIds } from './links.js';
import type { HitStore, StoredHit } from './store.js';
import { packetRefs, packetSubjects } from './submission.js';

export type SubjectAnswer = AnswerResult | 'pending' | 'overdue';

export interface Withdrawal {
  partner: string;
  subject: string;
  at: string;
  /** The answer withdrawn, if there was one. */
  answer?: AnswerResult;
  /** How many of the partner's hits on the subject were withdrawn with it. */
  hits: number;
}

export interface AnswersSummary {
  matches: Record<string, Record<string, SubjectAnswer>>;
  withdrawals?: Withdrawal[];
}

export interface AgreementRates {
  partner: string;
  agreement: string;
  hit: number;
  noTrace: number;
  withdrawn: number;
  /** hit / (hit + noTrace), or null before any answer. */
  hitRate: number | null;
}

export interface AnswersDeps {
  store: Pick<DossierStore, 'deliveries'>;
  mailbox: Pick<Mailbox, 'get'>;
  answerStore: AnswerStore;
  hitStore: Pick<HitStore, 'hits'>;
  policies: () => PolicySet;
  sealKey: Buffer;
  /** After-match peers' answers per subject, as `peer:<id>` (gateway/exchange/match-out.ts). */
  peerMatches?: (dossierId: string, now: Date) => Promise<Record<string, Record<string, SubjectAnswer>>>;
}

const DAY_MS = 86_400_000;

/** The partner's own hits on the subject not taken back by its last withdrawal (relayed hits aside). */
export function activeHits(hits: StoredHit[], partner: string, subject: string, answer?: StoredAnswer): StoredHit[] {
  const since = answer?.withdrawn?.at;
  return hits.filter((h) => h.via === undefined && h.partner === partner && h.subject === subject && (since === undefined || h.receivedAt > since));
}

/** Whether a hit was taken back by its partner (for the bundle). */
export function isWithdrawn(hit: StoredHit, answers: StoredAnswer[]): boolean {
  if (hit.via !== undefined) return false;
  const since = answers.find((a) => a.partner === hit.partner && a.subject === hit.subject)?.withdrawn?.at;
  return since !== undefined && hit.receivedAt <= since;
}

export class Answers {
  constructor(private readonly deps: AnswersDeps) {}

  /** Held answers and hits for a dossier (the bundle reads them once for both). */
  async held(dossierId: string, hits?: StoredHit[]): Promise<{ answers: StoredAnswer[]; hits: StoredHit[] }> {
    const [answers, all] = await Promise.all([this.deps.answerStore.all(dossierId), hits ?? this.deps.hitStore.hits(dossierId)]);
    return { answers, hits: all };
  }

  /** Per partner sent a packet and per subject in it: the answer, or pending / overdue. */
  async summary(dossierId: string, now: Date, held?: { answers: StoredAnswer[]; hits: StoredHit[] }): Promise<AnswersSummary> {
    const { answers, hits } = held ?? (await this.held(dossierId));
    const deliveries = await this.deps.store.deliveries(dossierId);
    const set = this.deps.policies();
    const matches: AnswersSummary['matches'] = {};
    for (const partner of Object.keys(deliveries).sort()) {
      // After a match request, the subjects asked about are its own (a follow-up holds the hits only).
      const packetId = deliveries[partner]?.matchPacketId ?? deliveries[partner]?.packetId;
      const packet = packetId ? await this.deps.mailbox.get(packetId) : undefined;
      const sent = packet && packet.type !== 'recall' ? (packetSubjects(this.deps.sealKey, packet) ?? Object.values(packetRefs(this.deps.sealKey, packet))) : [];
      const subjects = new Set<string>(sent);
      // A packet erased with its retention still leaves what was answered on it.
      for (const a of answers) if (a.partner === partner) subjects.add(a.subject);
      if (!subjects.size) continue;
      const days = set.partners.get(partner)?.agreement.respondWithinDays;
      const overdue = packet !== undefined && days !== undefined && now.getTime() >= Date.parse(packet.createdAt) + days * DAY_MS;
      const row: Record<string, SubjectAnswer> = {};
      for (const subject of [...subjects].sort(compareIds)) row[subject] = this.state(partner, subject, answers, hits, overdue);
      matches[partner] = row;
    }
    const withdrawals = answers
      .filter((a) => a.withdrawn)
      .map((a) => ({ partner: a.partner, subject: a.subject, at: a.withdrawn!.at, ...(a.withdrawn!.answer ? { answer: a.withdrawn!.answer } : {}), hits: a.withdrawn!.hits }))
      .sort((a, b) => a.at.localeCompare(b.at) || a.partner.localeCompare(b.partner) || compareIds(a.subject, b.subject));
    Object.assign(matches, await this.deps.peerMatches?.(dossierId, now));
    return { matches, ...(withdrawals.length ? { withdrawals } : {}) };
  }

  /** Answers given per agreement, for governance. */
  async rates(): Promise<AgreementRates[]> {
    const counts = await this.deps.answerStore.rates();
    const out: AgreementRates[] = [];
    for (const [partner, agreements] of Object.entries(counts)) {
      for (const [agreement, c] of Object.entries(agreements)) {
        const hit = c.hit ?? 0;
        const noTrace = c.no_trace ?? 0;
        out.push({ partner, agreement, hit, noTrace, withdrawn: c.withdrawn ?? 0, hitRate: hit + noTrace ? Math.round((hit / (hit + noTrace)) * 1000) / 1000 : null });
      }
    }
    return out.sort((a, b) => a.partner.localeCompare(b.partner) || a.agreement.localeCompare(b.agreement));
  }

  private state(partner: string, subject: string, answers: StoredAnswer[], hits: StoredHit[], overdue: boolean): SubjectAnswer {
    const answer = answers.find((a) => a.partner === partner && a.subject === subject);
    if (answer?.result === 'hit' || activeHits(hits, partner, subject, answer).length) return 'hit';
    if (answer?.result === 'no_trace') return 'no_trace';
    return overdue ? 'overdue' : 'pending';
  }
}

