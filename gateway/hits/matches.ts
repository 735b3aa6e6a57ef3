/**
 * Answers: the story of a partner saying, per subject of a packet it received, "hit" (its systems hold
 * this person) or "no trace" (they do not), so every delivery ends as hits, no trace or unanswered, and
 * the force can tell "nothing found" from "not yet checked". A partner may also withdraw a wrong answer,
 * together with the hits it reported on that subject so far (`"result": "withdrawn"`). The submission
 * goes through the same door as hits (submission.ts: own packet, not recalled, JSON or signed and
 * encrypted), then is checked whole (schema, packet, agreement, every ref) before anything is stored.
 * Refs are mapped back to the dossier's own subject ids and each answer is sealed; the same answer twice
 * is stored once. The receipt is audited before it is kept, and counted per agreement for governance
 * (answers.ts shows the rates: a partner answering "hit" to everything stands out).
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject } from 'ajv';
import { readFileSync } from 'node:fs';
import type { Client } from '../config/clients.js';
import { hmacId } from '../crypto/seal.js';
import { GatewayError, type ErrorDetail } from '../errors/index.js';
import type { PacketRecord } from '../mailbox/mailbox.js';
import type { PartnerPolicy } from '../policy/types.js';
import type { AnswerResult, AnswerStore, AnswerWrite, StoredAnswer } from '../store/matches.js';
import { activeHits } from './answers.js';
import type { HitStore } from './store.js';
import { agreementInForce, auditRefusal, openSubmission, packetRefs, packetSubjects, requireSamePacket, type SubmissionDeps, type SubmissionFormat, type SubmissionKind } from './submission.js';

export interface MatchesDeps extends SubmissionDeps {
  answerStore: AnswerStore;
  /** The hits already held: a withdrawal takes back those of the partner on the subject. */
  hitStore: Pick<HitStore, 'hits'>;
  /** Key for the answers' field ids, the keyring's `hitId`. */
  idKey: Buffer;
  /** Told once answers on a match request are stored: what follows is the follow-up's (gateway/fanout/followup.ts). */
  onMatchAnswered?: (packet: PacketRecord) => Promise<void>;
}

export interface MatchesSubmission {
  schema: 'cordon.matches/v1';
  packet: string;
  results: Array<{ subject: string; result: AnswerResult | 'withdrawn' }>;
}

export interface MatchesReceipt {
  packet: string;
  received: number;
  accepted: number;
  duplicates: number;
  withdrawn: number;
}

const MATCHES: SubmissionKind = { noun: 'answers', refused: 'matches.refused' };
const MESSAGE = 'The matches submission does not match the schema';
/** Attempts when another submission changes the same answers at the same moment (compare-and-set). */
const ATTEMPTS = 3;

const ajv = new Ajv2020({ strict: true, allErrors: true });
const checkSchema = ajv.compile(JSON.parse(readFileSync(new URL('../../schemas/matches.schema.json', import.meta.url), 'utf8')) as object);

/** Schema check (`schema_violation`, every problem with its JSON Pointer), then each ref at most once. */
export function validateMatches(body: unknown): MatchesSubmission {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new GatewayError('schema_violation', MESSAGE, [{ path: '', message: 'must be a JSON object' }]);
  }
  if (!checkSchema(body)) throw new GatewayError('schema_violation', MESSAGE, (checkSchema.errors ?? []).slice(0, 50).map(toDetail));
  const submission = body as MatchesSubmission;
  const first = new Map<string, number>();
  const repeats: ErrorDetail[] = [];
  submission.results.forEach((r, i) => {
    const j = first.get(r.subject);
    if (j !== undefined) repeats.push({ path: `/results/${i}/subject`, message: `answers the same subject as /results/${j}`, keyword: 'uniqueSubject' });
    else first.set(r.subject, i);
  });
  if (repeats.length) throw new GatewayError('schema_violation', MESSAGE, repeats.slice(0, 50));
  return submission;
}

function toDetail(error: ErrorObject): ErrorDetail {
  const escape = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');
  if (error.keyword === 'additionalProperties') {
    return { path: `${error.instancePath}/${escape(String((error.params as { additionalProperty: string }).additionalProperty))}`, message: 'is not an allowed property', keyword: error.keyword };
  }
  if (error.keyword === 'required') {
    return { path: `${error.instancePath}/${escape(String((error.params as { missingProperty: string }).missingProperty))}`, message: 'is required', keyword: error.keyword };
  }
  return { path: error.instancePath, message: error.message ?? 'is invalid', keyword: error.keyword };
}

export class Matches {
  constructor(private readonly deps: MatchesDeps) {}

  async submit(client: Client, packetId: string, body: unknown, format: SubmissionFormat): Promise<MatchesReceipt> {
    const now = new Date();
    const { live, packet, body: opened } = await openSubmission(this.deps, MATCHES, client, packetId, body, format, now);
    // A partner cannot claim hits on a blind-match request: the gateway works them out (gateway/blind/).
    if (packet.type === 'blind-match') throw new GatewayError('blind_answered_by_gateway', 'This is a blind-match request: answer it with POST /v1/packets/:id/blind-answer; the gateway works out hit or no trace itself');
    const submission = validateMatches(opened);
    requireSamePacket(submission.packet, packet);
    const policy = agreementInForce(live, MATCHES, packet.partner, now);
    const subjects = this.check(submission, packetRefs(this.deps.sealKey, packet), packetSubjects(this.deps.sealKey, packet));

    for (let attempt = 1; ; attempt++) {
      const plan = await this.plan(submission, subjects, packet, policy, now, format === 'openpgp');
      if (plan.writes.length) await this.audit(client, packet, policy, live.set.revision, plan, format === 'openpgp');
      const stored = plan.writes.length === 0 || (await this.store(client, packet, policy, plan));
      // Also on a repeat: a follow-up not queued the first time (Redis down) is queued now; the job is idempotent.
      if (stored && packet.type === 'match') await this.deps.onMatchAnswered?.(packet);
      if (stored) return { packet: packet.id, received: submission.results.length, accepted: plan.answered, duplicates: plan.duplicates, withdrawn: plan.withdrawals.length };
      // Another submission changed one of these answers meanwhile: read them again (the audit says so).
      if (attempt >= ATTEMPTS) throw new GatewayError('store_unavailable', 'The answers kept changing while they were being stored; nothing was stored, try again');
    }
  }

  /**
   * Every ref must be one of a subject the packet holds (not one it only points at); all problems
   * reported at once. Returns the subject id per result.
   */
  private check(submission: MatchesSubmission, refs: Record<string, string>, held: string[] | undefined): string[] {
    const problems: ErrorDetail[] = [];
    const subjects = submission.results.map((r, i) => {
      const mapped = Object.hasOwn(refs, r.subject) ? refs[r.subject] : undefined;
      const subject = mapped !== undefined && (held === undefined || held.includes(mapped)) ? mapped : undefined;
      if (subject === undefined) problems.push({ path: `/results/${i}/subject`, message: 'is not a subject ref of this packet', keyword: 'subjectRef' });
      return subject ?? '';
    });
    if (problems.length) throw new GatewayError('unknown_subject_ref', 'Some answers name subjects that are not in this packet; nothing was stored', problems.slice(0, 50));
    return subjects;
  }

  /** What changes: new or changed answers, withdrawals, and what is already held as it is (duplicates). */
  private async plan(submission: MatchesSubmission, subjects: string[], packet: PacketRecord, policy: PartnerPolicy, now: Date, signed: boolean): Promise<Plan> {
    const fields = subjects.map((s) => hmacId(this.deps.idKey, 'answer', packet.partner, s));
    const held = await this.deps.answerStore.get(packet.dossier, fields);
    const withdrawing = submission.results.some((r) => r.result === 'withdrawn');
    const hits = withdrawing ? await this.deps.hitStore.hits(packet.dossier) : [];
    const at = now.toISOString();
    const plan: Plan = { writes: [], answered: 0, changed: 0, duplicates: 0, counts: { hit: 0, no_trace: 0 }, withdrawals: [] };
    submission.results.forEach((r, i) => {
      const subject = subjects[i]!;
      const before = held.get(fields[i]!);
      const base = { partner: packet.partner, subject, packet: packet.id, agreement: { reference: policy.agreement.reference } };
      if (r.result === 'withdrawn') {
        const taken = activeHits(hits, packet.partner, subject, before?.answer).length;
        if (before?.answer.result === undefined && taken === 0) {
          plan.duplicates++; // nothing (left) to withdraw
          return;
        }
        const withdrawn = { at, ...(before?.answer.result ? { answer: before.answer.result } : {}), hits: taken };
        plan.withdrawals.push(withdrawn);
        plan.writes.push({ field: fields[i]!, before: before?.sealed, answer: { ...base, withdrawn } });
        return;
      }
      if (before?.answer.result === r.result) {
        plan.duplicates++;
        return;
      }
      if (before?.answer.result !== undefined) plan.changed++;
      plan.answered++;
      plan.counts[r.result]++;
      const answer: StoredAnswer = { ...base, result: r.result, answeredAt: at, ...(signed ? { signed: true } : {}), ...(before?.answer.withdrawn ? { withdrawn: before.answer.withdrawn } : {}) };
      plan.writes.push({ field: fields[i]!, before: before?.sealed, answer });
    });
    return plan;
  }

  /** Audit first: answers that cannot be logged are not kept. */
  private async audit(client: Client, packet: PacketRecord, policy: PartnerPolicy, revision: string, plan: Plan, signed: boolean): Promise<void> {
    const common = {
      actor: client.id,
      partner: packet.partner,
      packet: packet.id,
      dossier: packet.dossier,
      recipient: packet.source,
      policyRevision: revision,
      agreement: { reference: policy.agreement.reference, legalBasis: policy.agreement.legalBasis, purpose: policy.agreement.purpose },
      ...(signed ? { signed: true } : {}),
    };
    if (plan.answered) {
      await this.deps.audit.append({
        kind: 'combination', // DPA 2018 s.62: the partner's answer joined to the dossier
        action: 'matches.received',
        ...common,
        hit: plan.counts.hit,
        noTrace: plan.counts.no_trace,
        changed: plan.changed,
        duplicates: plan.duplicates,
      });
    }
    if (plan.withdrawals.length) {
      const was: Record<string, number> = {};
      for (const w of plan.withdrawals) if (w.answer) was[w.answer] = (was[w.answer] ?? 0) + 1;
      await this.deps.audit.append({
        kind: 'alteration',
        action: 'matches.withdrawn',
        ...common,
        subjects: plan.withdrawals.length,
        hits: plan.withdrawals.reduce((n, w) => n + w.hits, 0),
        was,
      });
    }
  }

  private async store(client: Client, packet: PacketRecord, policy: PartnerPolicy, plan: Plan): Promise<boolean> {
    const reference = policy.agreement.reference;
    const counts = [
      { partner: packet.partner, agreement: reference, result: 'hit', by: plan.counts.hit },
      { partner: packet.partner, agreement: reference, result: 'no_trace', by: plan.counts.no_trace },
      { partner: packet.partner, agreement: reference, result: 'withdrawn', by: plan.withdrawals.length },
    ].filter((c) => c.by > 0);
    return this.deps.answerStore.put(packet.dossier, plan.writes, counts).catch(async (err: unknown) => {
      // Recalled between the check and now: the log says nothing was kept after all.
      if (err instanceof GatewayError && err.code === 'dossier_recalled') await auditRefusal(this.deps, MATCHES, client, packet, 'recalled while the answers were being stored');
      throw err;
    });
  }
}

interface Plan {
  writes: AnswerWrite[];
  answered: number;
  changed: number;
  duplicates: number;
  counts: Record<AnswerResult, number>;
  withdrawals: Array<NonNullable<StoredAnswer['withdrawn']>>;
}
