/**
 * Match first, then disclose, with a peer force (the asked side). A `match` envelope from a peer asks
 * "do you hold anyone of these?": refs and identifiers only. This gateway keeps it sealed (checked to
 * hold nothing but identifiers) and puts the question to its own force, whose source client lists the
 * requests (`GET /v1/exchange/matches`), fetches one encrypted to its pinned key
 * (`GET /v1/exchange/matches/:id`) and answers hit or no trace per ref through this gateway
 * (`POST /v1/exchange/matches/:id/answers`, a `cordon.matches/v1` body): the force holds the records
 * the question is about, so it answers, not this gateway's partners (the question is never fanned out).
 * The answers are checked whole (refs of that request only, the agreement in force, not recalled),
 * audited, kept, and relayed to the asking gateway in an `answers` envelope. A recall of the dossier the
 * request asked about erases its identifiers and closes it.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { Client } from '../config/clients.js';
import { encryptAndSign } from '../crypto/openpgp.js';
import { hmacId } from '../crypto/seal.js';
import { GatewayError, type ErrorDetail } from '../errors/index.js';
import { validateMatches } from '../hits/matches.js';
import type { PeerPolicy } from '../policy/types.js';
import { PermanentExchangeError } from '../queue/exchange-queue.js';
import { RECALL_REASONS } from '../recall/recall.js';
import type { InboundMatch, MatchAnswer } from '../store/exchange-matches.js';
import { peerAgreementLapsed, type ExchangeContext } from './context.js';
import { agreementOf, type EnvelopeHeader } from './envelope.js';

const DAY_MS = 86_400_000;
const TEXT = { type: 'string', minLength: 1, maxLength: 200 };
const LIST = (items: object) => ({ type: 'array', maxItems: 50, items });
const ajv = new Ajv2020({ strict: true, allErrors: true });
/** A match envelope's body: subjects with a ref and identifiers (policy/match.ts's list), nothing else. */
const checkBody = ajv.compile({
  type: 'object',
  additionalProperties: false,
  required: ['envelope', 'subjects'],
  properties: {
    envelope: { type: 'object' },
    subjects: {
      type: 'array',
      minItems: 1,
      maxItems: 500,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['ref'],
        properties: {
          ref: { type: 'string', pattern: '^ref_[0-9a-f]{16}$' },
          name: { type: 'object', additionalProperties: false, properties: { given: TEXT, family: TEXT, aliases: LIST(TEXT) } },
          dateOfBirth: TEXT,
          addresses: LIST({ type: 'object', additionalProperties: false, properties: { line1: TEXT, line2: TEXT, town: TEXT, postcode: TEXT } }),
          vehicles: LIST({ type: 'object', additionalProperties: false, properties: { vrm: TEXT } }),
          phones: LIST(TEXT),
          emails: LIST(TEXT),
          businesses: LIST({ type: 'object', additionalProperties: false, properties: { name: TEXT, companyNumber: TEXT } }),
          identifiers: { type: 'object', maxProperties: 20, additionalProperties: TEXT },
        },
      },
    },
  },
});

export interface MatchListing {
  id: string;
  peer: string;
  receivedAt: string;
  expiresAt: string;
  subjects: number;
  answered: number;
  state: 'open' | 'answered' | 'recalled';
}

export class MatchIn {
  constructor(private readonly cx: ExchangeContext) {}

  /** This gateway's id for a peer's match envelope. */
  private matchId(peer: string, envelopeId: string): string {
    return 'mrq_' + hmacId(this.cx.deps.keyring.envelopeId, 'inbound-match', peer, envelopeId);
  }

  /** A match envelope from `peerId`: checked to hold identifiers only, kept, audited. */
  async receive(clientId: string, peerId: string, policy: PeerPolicy, header: EnvelopeHeader, doc: Record<string, unknown>) {
    const { deps } = this.cx;
    const id = this.matchId(peerId, header.id);
    if (await this.cx.records.seen(peerId, header.id)) return { type: 'match', envelope: header.id, id, replayed: true };
    if (!checkBody(doc)) {
      const details: ErrorDetail[] = (checkBody.errors ?? []).slice(0, 50).map((e) => {
        const extra = e.keyword === 'additionalProperties' ? `/${(e.params as { additionalProperty: string }).additionalProperty}` : '';
        return { path: `${e.instancePath}${extra}`, message: e.keyword === 'additionalProperties' ? 'is not allowed in a match envelope (identifiers only)' : (e.message ?? 'is not valid') };
      });
      throw new GatewayError('schema_violation', 'A match envelope carries subject refs and identifiers only; nothing was stored', details);
    }
    const subjects = doc.subjects as Array<Record<string, unknown>>;
    const refs = subjects.map((s) => s.ref);
    const twice = refs.findIndex((r, i) => refs.indexOf(r) !== i);
    if (twice >= 0) throw new GatewayError('schema_violation', 'A match envelope names each subject once; nothing was stored', [{ path: `/subjects/${twice}/ref`, message: 'names a ref twice' }]);
    if (!(await this.cx.records.claimSeen(peerId, header.id, id))) return { type: 'match', envelope: header.id, id, replayed: true };
    const now = new Date();
    const match: InboundMatch = {
      id,
      peer: peerId,
      envelope: header.id,
      receivedAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + policy.agreement.retentionDays * DAY_MS).toISOString(),
      agreement: policy.agreement.reference,
      subjects,
    };
    try {
      await deps.audit.append({
        kind: 'collection',
        action: 'exchange.match_received',
        actor: clientId,
        packet: header.id,
        match: id,
        source: `peer:${peerId}`,
        agreement: agreementOf(policy),
        subjects: subjects.length,
      });
      await deps.matchStore.put(match);
    } catch (err) {
      await this.cx.records.forgetSeen(peerId, header.id).catch(() => undefined);
      throw err;
    }
    return { type: 'match', envelope: header.id, id, replayed: false };
  }

  /** Whether `client` speaks for this gateway's force (the one the peers' questions are put to). */
  private isForce(client: Client): boolean {
    try {
      return client.role === 'source' && client.source === this.cx.forceId();
    } catch {
      return false;
    }
  }

  /** The match requests held, newest first (empty for any source but this gateway's force). */
  async list(client: Client): Promise<MatchListing[]> {
    if (!this.isForce(client)) return [];
    const out: MatchListing[] = [];
    for (const id of await this.cx.deps.matchStore.list()) {
      const m = await this.cx.deps.matchStore.get(id);
      if (!m) continue;
      const answered = Object.keys(await this.cx.deps.matchStore.answers(id)).length;
      const subjects = m.subjects?.length ?? 0;
      out.push({ id, peer: m.peer, receivedAt: m.receivedAt, expiresAt: m.expiresAt, subjects, answered, state: m.recall ? 'recalled' : answered >= subjects ? 'answered' : 'open' });
    }
    return out;
  }

  private async held(client: Client, id: string): Promise<InboundMatch> {
    const m = this.isForce(client) && /^mrq_[a-z2-7]{16,64}$/.test(id) ? await this.cx.deps.matchStore.get(id) : undefined;
    if (!m) throw new GatewayError('not_found', 'No such match request');
    return m;
  }

  /**
   * One match request, encrypted to the force's pinned key and signed by this gateway:
   * `{"match": {id, peer, force, envelope, receivedAt, expiresAt, agreement}, "subjects": [{ref, …}], "answers": {ref: result}}`.
   */
  async retrieve(client: Client, id: string): Promise<string> {
    const { deps } = this.cx;
    const m = await this.held(client, id);
    const policy = deps.peers.view().policies.get(m.peer);
    const key = await deps.sourceKeys.get(deps.live().set, client.source!);
    const doc = {
      match: { id, peer: m.peer, force: policy?.peer.force, envelope: m.envelope, receivedAt: m.receivedAt, expiresAt: m.expiresAt, agreement: policy ? agreementOf(policy) : { reference: m.agreement }, ...(m.recall ? { recall: m.recall } : {}) },
      subjects: m.subjects ?? [],
      answers: await deps.matchStore.answers(id),
    };
    const message = await encryptAndSign(JSON.stringify(doc), key, deps.gatewayKey);
    await deps.audit.append({ kind: 'consultation', action: 'exchange.match_retrieved', actor: client.id, match: id, packet: m.envelope, source: `peer:${m.peer}`, keyFingerprint: key.fingerprint });
    return message;
  }

  /** The force's answers to one match request (a `cordon.matches/v1` body whose `packet` is the request's id). */
  async answer(client: Client, id: string, body: unknown) {
    const { deps } = this.cx;
    const m = await this.held(client, id);
    const submission = validateMatches(body);
    if (submission.packet !== id) throw new GatewayError('packet_mismatch', 'The answers name another match request than the one in the URL', [{ path: '/packet', message: `must be "${id}", the match request in the URL` }]);
    const withdrawn = submission.results.flatMap((r, i) => (r.result === 'withdrawn' ? [{ path: `/results/${i}/result`, message: 'must be "hit" or "no_trace"' }] : []));
    if (withdrawn.length) throw new GatewayError('schema_violation', 'A match request is answered hit or no trace; nothing was stored', withdrawn);
    if (m.recall) throw new GatewayError('dossier_recalled', `Peer ${m.peer} recalled the dossier this match request asked about: it is no longer answered; nothing was stored`, [{ path: '', message: 'the match request was recalled' }]);
    const refs = new Set((m.subjects ?? []).map((s) => s.ref));
    const problems = submission.results.flatMap((r, i) => (refs.has(r.subject) ? [] : [{ path: `/results/${i}/subject`, message: 'is not a subject ref of this match request' }]));
    if (problems.length) throw new GatewayError('unknown_subject_ref', 'Some answers name subjects that are not in this match request; nothing was stored', problems.slice(0, 50));
    const policy = deps.peers.view().policies.get(m.peer);
    if (!policy) throw new GatewayError('no_agreement', `No peer file for ${m.peer}: nothing is sent to it; nothing was stored`);
    const lapsed = peerAgreementLapsed(policy, new Date());
    if (lapsed) throw new GatewayError(lapsed.code, `${lapsed.message}; nothing was stored`);
    const before = await deps.matchStore.answers(id);
    const fresh: Record<string, MatchAnswer> = {};
    for (const r of submission.results) if (before[r.subject] !== r.result) fresh[r.subject] = r.result as MatchAnswer;
    const count = (k: MatchAnswer) => Object.values(fresh).filter((v) => v === k).length;
    const duplicates = submission.results.length - Object.keys(fresh).length;
    if (Object.keys(fresh).length) {
      // Audit first: an answer that cannot be logged is neither kept nor relayed.
      await deps.audit.append({
        kind: 'alteration',
        action: 'exchange.match_answered',
        actor: client.id,
        match: id,
        packet: m.envelope,
        recipient: `peer:${m.peer}`,
        agreement: agreementOf(policy),
        hit: count('hit'),
        noTrace: count('no_trace'),
        changed: Object.keys(fresh).filter((r) => before[r] !== undefined).length,
        duplicates,
      });
      await deps.matchStore.putAnswers(id, fresh, m.expiresAt);
    }
    // Every answer so far, under an id derived from them: a repeat queues nothing new, a change a new envelope.
    const all = { ...before, ...fresh };
    const digest = Object.keys(all).sort().map((r) => `${r}=${all[r]}`).join(',');
    await deps.queue().enqueue({ type: 'answers', matchId: id, envelopeId: 'env_' + hmacId(deps.keyring.envelopeId, 'answers', id, digest) });
    return { match: id, received: submission.results.length, accepted: Object.keys(fresh).length, duplicates };
  }

  /** The answers job: every answer so far, to the gateway that asked. */
  async send(matchId: string, envelopeId: string): Promise<void> {
    const { deps } = this.cx;
    const m = await deps.matchStore.get(matchId);
    if (!m) throw new PermanentExchangeError(`match request ${matchId} is no longer held`);
    if (m.recall) throw new PermanentExchangeError(`match request ${matchId} was recalled by peer ${m.peer}`);
    const { policy, key } = await this.cx.peerAndKey(m.peer);
    const answers = await deps.matchStore.answers(matchId);
    const results = Object.keys(answers).sort().map((subject) => ({ subject, result: answers[subject]! }));
    if (!results.length) return;
    const { message } = await this.cx.seal('answers', envelopeId, policy, key, { matches: { schema: 'cordon.matches/v1', packet: m.envelope, results } }, m.envelope);
    await deps.audit.append({
      kind: 'disclosure',
      action: 'exchange.answers_relayed',
      match: matchId,
      packet: envelopeId,
      inReplyTo: m.envelope,
      recipient: `peer:${m.peer}`,
      agreement: agreementOf(policy),
      hit: results.filter((r) => r.result === 'hit').length,
      noTrace: results.filter((r) => r.result === 'no_trace').length,
      keyFingerprint: key.fingerprint,
    });
    await this.cx.post(policy, message);
  }

  /** A recall whose `inReplyTo` is a match envelope from that peer: the request is closed and its identifiers erased. */
  async recall(clientId: string, peerId: string, policy: PeerPolicy, header: EnvelopeHeader, doc: Record<string, unknown>) {
    const id = this.matchId(peerId, header.inReplyTo!);
    const m = await this.cx.deps.matchStore.get(id);
    if (!m) return undefined;
    const recall = (doc.recall ?? {}) as { reason?: unknown; issuedAt?: unknown };
    const reason = typeof recall.reason === 'string' && (RECALL_REASONS as readonly string[]).includes(recall.reason) ? recall.reason : undefined;
    if (!reason) throw new GatewayError('schema_violation', 'The recall must give its reason; nothing was changed', [{ path: '/recall/reason', message: `must be one of ${RECALL_REASONS.join(', ')}` }]);
    if (m.recall) return { type: 'recall', envelope: header.id, id, state: m.recall.reason, replayed: true };
    await this.cx.deps.audit.append({
      kind: 'alteration',
      action: 'exchange.recall_received',
      actor: clientId,
      match: id,
      packet: header.id,
      inReplyTo: header.inReplyTo,
      source: `peer:${peerId}`,
      via: policy.peer.force,
      agreement: agreementOf(policy),
      reason,
    });
    await this.cx.deps.matchStore.markRecalled(id, { reason, at: new Date().toISOString() });
    return { type: 'recall', envelope: header.id, id, state: reason, replayed: false };
  }
}
