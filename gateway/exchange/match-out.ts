/**
 * Match first, then disclose, with a peer force (the asking side). Under a peer agreement with
 * `disclosure: after-match` the first envelope to the peer is a `match` envelope: per subject the full
 * peer policy would send, only the identifiers its `match` allowlist names (policy/match.ts), under a
 * ref, and nothing else (no intelligence, group, roles, handling text). The peer's force answers hit or
 * no trace per ref; its gateway relays the answers back in an `answers` envelope (match-in.ts), which is
 * checked here (a match envelope this gateway sent that peer, refs of that request only, the dossier not
 * recalled), stored like a partner's answers under `peer:<id>` and audited; a hit then leads to the
 * follow-up dossier envelope for those subjects alone (match-followup.ts). No hit: nothing more, ever.
 *
 * The match envelope keeps a sealed copy of the dossier (`held`): the fan-out erases the dossier's own
 * sealed content once its partners are settled, and the follow-ups are made from this copy, which goes
 * once every ref is answered and every hit followed up.
 */
import { hmacId, seal, unseal } from '../crypto/seal.js';
import type { Dossier } from '../dossier/types.js';
import { GatewayError, type ErrorDetail } from '../errors/index.js';
import { validateMatches } from '../hits/matches.js';
import type { Disclosed } from '../pipeline/disclose.js';
import type { PeerPolicy } from '../policy/types.js';
import { isRecalled } from '../store/dossiers.js';
import type { AnswerWrite, StoredAnswer } from '../store/matches.js';
import type { ExchangeContext } from './context.js';
import { agreementOf, type EnvelopeHeader } from './envelope.js';
import type { PeerFollowUps } from './match-followup.js';

/** Attempts when another answers envelope changes the same answers at the same moment. */
const ATTEMPTS = 3;

export type PeerMatchState = 'hit' | 'no_trace' | 'pending' | 'overdue';

const DAY_MS = 86_400_000;

export class MatchOut {
  constructor(
    private readonly cx: ExchangeContext,
    private readonly followUps: PeerFollowUps,
  ) {}

  /** The partner id a peer's answers are kept under (answers, rates, follow-up records). */
  static answerer(peer: string): string {
    return `peer:${peer}`;
  }

  /** Keeps and queues the match envelope of an after-match peer (the disclosure made with its `match` allowlist). */
  async prepared(dossierId: string, source: string, dossier: Dossier, peer: string, disclosed: Disclosed, now: Date): Promise<void> {
    const { deps, records } = this.cx;
    const key = deps.keyring.seal;
    const policy = deps.peers.view().policies.get(peer)!;
    const envelopeId = this.cx.envelopeId(dossierId, peer);
    const subjects = (Array.isArray(disclosed.redacted.subjects) ? (disclosed.redacted.subjects as Array<Record<string, unknown>>) : []).map(({ id, ...identifiers }) => ({
      ref: id,
      ...identifiers,
    }));
    const body = { policy: { id: `peer:${peer}`, revision: disclosed.revision }, agreement: agreementOf(policy), subjects };
    // Identifiers only: the record lists the identifier paths disclosed, as for a partner's match request.
    await deps.audit.append(disclosed.event('exchange.match_prepared', envelopeId, undefined, { subjects: disclosed.subjects.length }));
    await records.putEnvelope(envelopeId, {
      dossier: dossierId,
      peer,
      source,
      kind: 'match',
      sealed: seal(key, JSON.stringify(body), envelopeId),
      refs: seal(key, JSON.stringify(disclosed.byRef), `${envelopeId}:refs`),
      asked: seal(key, JSON.stringify(disclosed.subjects), `${envelopeId}:asked`),
      held: seal(key, JSON.stringify(dossier), `${envelopeId}:held`),
      askedAt: now.toISOString(),
    });
    await records.setDelivery(dossierId, peer, { state: 'queued', envelopeId, matchEnvelopeId: envelopeId, updatedAt: now.toISOString() });
    await deps.queue().enqueue({ type: 'dossier', envelopeId });
  }

  /**
   * An `answers` envelope from the peer: `{"matches": {"schema": "cordon.matches/v1", "packet": "<match
   * envelope id>", "results": [{"subject": "<ref>", "result": "hit"|"no_trace"}]}}`. Checked whole before
   * anything is kept; then stored, audited, and the follow-up (if any is due) made.
   */
  async receive(clientId: string, peerId: string, policy: PeerPolicy, header: EnvelopeHeader, raw: unknown) {
    const { deps, records } = this.cx;
    const matchId = header.inReplyTo!;
    const env = await records.envelope(matchId);
    if (env.kind !== 'match' || env.peer !== peerId || !env.dossier || !env.refs || !env.asked) {
      throw new GatewayError('envelope_unknown', `No match envelope of this gateway to peer ${peerId} has id ${matchId}; nothing was stored`, [
        { path: '/envelope/inReplyTo', message: 'is not a match envelope this gateway sent that peer' },
      ]);
    }
    const dossierId = env.dossier;
    const submission = prefixed('/matches', () => validateMatches(raw));
    if (submission.packet !== matchId) throw new GatewayError('packet_mismatch', 'The answers name another match envelope than the one they reply to; nothing was stored', [{ path: '/matches/packet', message: `must be "${matchId}"` }]);
    const refs = JSON.parse(unseal(deps.keyring.seal, env.refs, `${matchId}:refs`).toString('utf8')) as Record<string, string>;
    const asked = new Set(JSON.parse(unseal(deps.keyring.seal, env.asked, `${matchId}:asked`).toString('utf8')) as string[]);
    const problems: ErrorDetail[] = [];
    const results = submission.results.map((r, i) => {
      if (r.result === 'withdrawn') problems.push({ path: `/matches/results/${i}/result`, message: 'must be "hit" or "no_trace"' });
      const subject = Object.hasOwn(refs, r.subject) && asked.has(refs[r.subject]!) ? refs[r.subject]! : '';
      if (!subject) problems.push({ path: `/matches/results/${i}/subject`, message: 'is not a subject ref of that match envelope' });
      return { subject, result: r.result as 'hit' | 'no_trace' };
    });
    const notAnswers = problems.filter((p) => p.path?.endsWith('/result'));
    if (notAnswers.length) throw new GatewayError('schema_violation', 'The answers are not hit or no trace; nothing was stored', notAnswers);
    if (problems.length) throw new GatewayError('unknown_subject_ref', 'Some answers name subjects that were not in the match envelope; nothing was stored', problems.slice(0, 50));
    const record = await deps.store.get(dossierId);
    if (!record) throw new GatewayError('envelope_unknown', 'The dossier that match envelope asked about is no longer held; nothing was stored', [{ path: '/envelope/inReplyTo', message: 'the dossier is gone' }]);
    if (isRecalled(record.state)) {
      throw new GatewayError('dossier_recalled', `The dossier match envelope ${matchId} asked about was recalled ("${record.state}"): nothing more is taken or disclosed for it; nothing was stored`, [
        { path: '/envelope/inReplyTo', message: 'the dossier was recalled' },
      ]);
    }
    if (!(await records.claimSeen(peerId, header.id, dossierId))) return { type: 'answers', envelope: header.id, accepted: 0, duplicates: results.length, replayed: true };
    try {
      const answerer = MatchOut.answerer(peerId);
      for (let attempt = 1; ; attempt++) {
        const fields = results.map((r) => hmacId(deps.keyring.hitId, 'answer', answerer, r.subject));
        const held = await deps.answerStore.get(dossierId, fields);
        const at = new Date().toISOString();
        const writes: AnswerWrite[] = [];
        const counts = { hit: 0, no_trace: 0 };
        let changed = 0;
        results.forEach((r, i) => {
          const before = held.get(fields[i]!);
          if (before?.answer.result === r.result) return;
          if (before?.answer.result !== undefined) changed++;
          counts[r.result]++;
          const answer: StoredAnswer = { partner: answerer, subject: r.subject, packet: matchId, result: r.result, answeredAt: at, agreement: { reference: policy.agreement.reference }, signed: true };
          writes.push({ field: fields[i]!, before: before?.sealed, answer });
        });
        if (writes.length) {
          // Audit first (DPA 2018 s.62: the peer force's answers joined to the dossier): answers that cannot be logged are not kept.
          await deps.audit.append({
            kind: 'combination',
            action: 'exchange.answers_received',
            actor: clientId,
            dossier: dossierId,
            packet: header.id,
            inReplyTo: matchId,
            recipient: env.source,
            source: `peer:${peerId}`,
            agreement: agreementOf(policy),
            hit: counts.hit,
            noTrace: counts.no_trace,
            changed,
            duplicates: results.length - writes.length,
          });
          const counted = (['hit', 'no_trace'] as const).filter((k) => counts[k] > 0).map((k) => ({ partner: answerer, agreement: policy.agreement.reference, result: k, by: counts[k] }));
          if (!(await deps.answerStore.put(dossierId, writes, counted))) {
            if (attempt >= ATTEMPTS) throw new GatewayError('store_unavailable', 'The answers kept changing while they were being stored; nothing was stored, try again');
            continue;
          }
        }
        // Also on a repeat: a follow-up not made the first time is made now (it is exactly-once).
        await this.followUps.run(dossierId, peerId);
        return { type: 'answers', envelope: header.id, accepted: writes.length, duplicates: results.length - writes.length, replayed: false };
      }
    } catch (err) {
      await records.forgetSeen(peerId, header.id).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Per after-match peer of the dossier (as `peer:<id>`) and per subject it was asked about: its answer,
   * or `pending`, `overdue` once the agreement's `respondWithinDays` have passed since the match envelope was made.
   */
  async summary(dossierId: string, now: Date = new Date()): Promise<Record<string, Record<string, PeerMatchState>>> {
    const out: Record<string, Record<string, PeerMatchState>> = {};
    const deliveries = await this.cx.records.deliveries(dossierId);
    const peers = Object.keys(deliveries).filter((p) => deliveries[p]!.matchEnvelopeId);
    if (!peers.length) return out;
    const answers = await this.cx.deps.answerStore.all(dossierId);
    for (const peer of peers.sort()) {
      const env = await this.cx.records.envelope(deliveries[peer]!.matchEnvelopeId!);
      if (!env.asked) continue;
      const asked = JSON.parse(unseal(this.cx.deps.keyring.seal, env.asked, `${deliveries[peer]!.matchEnvelopeId!}:asked`).toString('utf8')) as string[];
      const days = this.cx.deps.peers.view().policies.get(peer)?.agreement.respondWithinDays;
      const overdue = days !== undefined && env.askedAt !== undefined && now.getTime() >= Date.parse(env.askedAt) + days * DAY_MS;
      const row: Record<string, PeerMatchState> = {};
      for (const subject of [...asked].sort()) {
        const a = answers.find((x) => x.partner === MatchOut.answerer(peer) && x.subject === subject);
        row[subject] = a?.result ?? (overdue ? 'overdue' : 'pending');
      }
      out[MatchOut.answerer(peer)] = row;
    }
    return out;
  }
}

/** Runs a check whose problems' paths are relative to a member of the envelope, reporting them under it. */
function prefixed<T>(at: string, check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof GatewayError && err.details) {
      throw new GatewayError(err.code, `${err.message}; nothing was stored`, err.details.map((d) => ({ ...d, path: `${at}${d.path ?? ''}` })));
    }
    throw err;
  }
}
