/**
 * Blind matching at the gateway: the story of a blind-match request answered. A partner under a
 * `disclosure: blind-match` agreement publishes its setup message (its records' OPRF outputs in a
 * compressed set, psi.ts), signed with its pinned key when its agreement requires signed submissions.
 * The fan-out sent it a blind-match request (fanout.ts, request.ts); the partner's client answers with
 * its key applied to every element and one proof. Here the gateway, not the partner, works out the
 * result: it verifies the proof against the published key, unblinds, and tests each subject's keys in
 * the set. A subject is a hit only on a key that names a person (an address key alone never is); the
 * answers are stored like match answers (hits/matches.ts) and a hit leads to the same follow-up
 * (fanout/followup.ts). The partner's receipt says nothing about the result: it learns who matched
 * only from the follow-up disclosure. An answer that does not verify is refused and audited; nothing
 * is stored and nothing follows.
 */
import { createHash } from 'node:crypto';
import type { Client } from '../config/clients.js';
import { hmacId, unseal } from '../crypto/seal.js';
import { GatewayError, type ErrorDetail } from '../errors/index.js';
import type { PacketRecord } from '../mailbox/mailbox.js';
import { isBlindMatch, KEY_TYPES } from '../policy/blind-keys.js';
import { agreementInForce, auditRefusal, open, openSubmission, packetRefs, requireSamePacket, type SubmissionDeps, type SubmissionFormat, type SubmissionKind } from '../hits/submission.js';
import { refuseControlCharacters } from '../hits/detail-text.js';
import type { BlindSetupStore } from '../store/blind.js';
import type { AnswerStore, AnswerWrite, StoredAnswer } from '../store/matches.js';
import { decodeGcs, MAX_GCS_ELEMENTS } from './gcs.js';
import { NORMALISER_VERSION } from './keys.js';
import { finishRequest, GCS_P, openSetup, SUITE, type BlindAnswer, type BlindState, type OpenSetup, type SetupMessage } from './psi.js';

export interface BlindMatchingDeps extends SubmissionDeps {
  setups: BlindSetupStore;
  answerStore: AnswerStore;
  /** Key for the answers' field ids (the keyring's `hitId`, as for match answers). */
  idKey: Buffer;
  /** Told once answers are stored: the follow-up job decides what follows. */
  onMatchAnswered?: (packet: PacketRecord) => Promise<void>;
}

export interface SetupReceipt {
  digest: string;
  elements: number;
  publishedAt: string;
}

const ANSWERS: SubmissionKind = { noun: 'answers', refused: 'blind.refused' };
const SETUPS: SubmissionKind = { noun: 'setup messages', refused: 'blind.refused' };
const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

export class BlindMatching {
  /** The last setup decoded, per partner (decoding 100,000 values takes milliseconds, not nothing). */
  private readonly opened = new Map<string, { digest: string; open: OpenSetup }>();

  constructor(private readonly deps: BlindMatchingDeps) {}

  /** POST /v1/blind/setup: checks, seals and keeps the partner's setup message; audited with its digest. */
  async publishSetup(client: Client, body: unknown, format: SubmissionFormat): Promise<SetupReceipt> {
    const now = new Date();
    const live = this.deps.live();
    const partner = client.partner!;
    const policy = agreementInForce(live, SETUPS, partner, now);
    if (!isBlindMatch(policy.agreement)) throw new GatewayError('forbidden', `Agreement ${policy.agreement.reference} does not match blind: there is nothing to publish a setup message for`);
    if (format !== 'openpgp' && policy.agreement.requireSignedHits === true) {
      throw new GatewayError('signature_required', `Agreement ${policy.agreement.reference} requires submissions signed with your pinned key: send the setup message as an OpenPGP message signed with it and encrypted to GET /v1/keys/gateway; nothing was stored`);
    }
    const opened = format === 'openpgp' ? await open({ ...this.deps, maxPlaintextBytes: MAX_SETUP_BYTES }, SETUPS, live, partner, body) : body;
    refuseControlCharacters(opened);
    const setup = checkSetup(opened);
    const json = JSON.stringify(setup);
    const digest = 'sha256:' + createHash('sha256').update(json).digest('hex');
    const publishedAt = now.toISOString();
    await this.deps.audit.append({ kind: 'collection', action: 'blind.setup_received', actor: client.id, partner, setup: digest, elements: setup.n, ...(format === 'openpgp' ? { signed: true } : {}) });
    await this.deps.setups.put(partner, { json, digest, publishedAt });
    return { digest, elements: setup.n, publishedAt };
  }

  /** GET /v1/blind/setup: the digest and time of the setup message held, so a client republishes only on change. */
  async setupHead(client: Client): Promise<SetupReceipt> {
    const held = await this.deps.setups.get(client.partner!);
    if (!held) throw new GatewayError('blind_setup_missing', 'No setup message has been published yet');
    return { digest: held.digest, elements: (JSON.parse(held.json) as SetupMessage).n, publishedAt: held.publishedAt };
  }

  /** POST /v1/packets/:id/blind-answer: the gateway's own result from the partner's answer. */
  async answer(client: Client, packetId: string, body: unknown, format: SubmissionFormat): Promise<{ packet: string; received: number }> {
    const now = new Date();
    const { deps } = this;
    const { live, packet, body: opened } = await openSubmission(deps, ANSWERS, client, packetId, body, format, now);
    if (packet.type !== 'blind-match' || !packet.blind) {
      throw new GatewayError('packet_mismatch', 'This packet is not a blind-match request: answer it with POST /v1/packets/:id/matches or /hits', [{ path: '', message: 'not a blind-match request' }]);
    }
    const answer = checkAnswer(opened);
    requireSamePacket(answer.packet, packet);
    const policy = agreementInForce(live, ANSWERS, packet.partner, now);
    const setup = await this.setup(packet.partner);
    if (!setup) {
      await auditRefusal(deps, ANSWERS, client, packet, 'no setup message published', 'blind_setup_missing');
      throw new GatewayError('blind_setup_missing', 'Publish your setup message (POST /v1/blind/setup) before answering blind-match requests; nothing was stored');
    }
    const state = JSON.parse(unseal(deps.sealKey, packet.blind, `${packet.id}:blind`).toString('utf8')) as BlindState;
    const result = finishRequest(state, answer, setup);
    if (!result.ok) {
      await auditRefusal(deps, ANSWERS, client, packet, `answer refused: ${result.reason}`, 'blind_proof_invalid');
      const why = result.reason === 'wrong_key' ? 'was made with another key than your published setup message' : result.reason === 'wrong_size' ? 'does not answer every element of the request' : 'does not carry a valid proof for these elements';
      throw new GatewayError('blind_proof_invalid', `The answer ${why}; nothing was stored`, [{ path: result.reason === 'wrong_key' ? '/publicKey' : result.reason === 'wrong_size' ? '/evaluated' : '/proof', message: why }]);
    }
    // Per subject asked: a hit only on a key that names a person.
    const byRef = packetRefs(deps.sealKey, packet);
    const outcomes = [...result.hits].map(([ref, types]) => ({ subject: byRef[ref]!, hit: types.some((t) => KEY_TYPES[t].unlocks), addressOnly: types.length > 0 && !types.some((t) => KEY_TYPES[t].unlocks) }));
    const fields = outcomes.map((o) => hmacId(deps.idKey, 'answer', packet.partner, o.subject));
    const held = await deps.answerStore.get(packet.dossier, fields);
    const at = now.toISOString();
    const writes: AnswerWrite[] = [];
    const counts = { hit: 0, no_trace: 0 };
    outcomes.forEach((o, i) => {
      const result = o.hit ? 'hit' : 'no_trace';
      const before = held.get(fields[i]!);
      if (before?.answer.result === result) return;
      counts[result]++;
      const stored: StoredAnswer = { partner: packet.partner, subject: o.subject, packet: packet.id, agreement: { reference: policy.agreement.reference }, result, answeredAt: at, ...(format === 'openpgp' ? { signed: true } : {}) };
      writes.push({ field: fields[i]!, answer: stored, before: before?.sealed });
    });
    if (writes.length) {
      await deps.audit.append({
        kind: 'combination',
        action: 'blind.answered',
        actor: client.id,
        partner: packet.partner,
        packet: packet.id,
        dossier: packet.dossier,
        recipient: packet.source,
        policyRevision: live.set.revision,
        agreement: { reference: policy.agreement.reference, legalBasis: policy.agreement.legalBasis, purpose: policy.agreement.purpose },
        hit: counts.hit,
        noTrace: counts.no_trace,
        addressOnly: outcomes.filter((o) => o.addressOnly).length,
        setup: this.opened.get(packet.partner)?.digest,
        ...(format === 'openpgp' ? { signed: true } : {}),
      });
      const rates = (['hit', 'no_trace'] as const).filter((r) => counts[r] > 0).map((r) => ({ partner: packet.partner, agreement: policy.agreement.reference, result: r, by: counts[r] }));
      if (!(await deps.answerStore.put(packet.dossier, writes, rates))) {
        throw new GatewayError('store_unavailable', 'The answers changed while they were being stored; nothing was stored, send the answer again');
      }
    }
    await deps.onMatchAnswered?.(packet);
    return { packet: packet.id, received: answer.evaluated.length };
  }

  private async setup(partner: string): Promise<OpenSetup | undefined> {
    const head = await this.deps.setups.head(partner);
    if (!head) return undefined;
    const cached = this.opened.get(partner);
    if (cached?.digest === head.digest) return cached.open;
    const held = await this.deps.setups.get(partner);
    if (!held) return undefined;
    const open = openSetup(JSON.parse(held.json) as SetupMessage);
    this.opened.set(partner, { digest: held.digest, open });
    return open;
  }
}

/** Largest setup message accepted (about a million keys). */
export const MAX_SETUP_BYTES = 12 * 1024 * 1024;
const MAX_SETUP_ELEMENTS = Math.min(MAX_GCS_ELEMENTS, 1 << 20);

function invalid(code: 'blind_setup_invalid' | 'schema_violation', message: string, problems: ErrorDetail[]): GatewayError {
  return new GatewayError(code, message, problems.slice(0, 50));
}

/** Every problem with its path; the set must decode to exactly n values. */
export function checkSetup(body: unknown): SetupMessage {
  const problems: ErrorDetail[] = [];
  const b = (body ?? {}) as Record<string, unknown>;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw invalid('blind_setup_invalid', 'The setup message must be a JSON object', [{ path: '', message: 'must be a JSON object' }]);
  const allowed = new Set(['schema', 'suite', 'normaliser', 'publicKey', 'n', 'p', 'set']);
  for (const k of Object.keys(b)) if (!allowed.has(k)) problems.push({ path: `/${k}`, message: 'is not an allowed property' });
  if (b.schema !== 'cordon.blind-setup/v1') problems.push({ path: '/schema', message: 'must be "cordon.blind-setup/v1"' });
  if (b.suite !== SUITE) problems.push({ path: '/suite', message: `must be "${SUITE}"` });
  if (b.normaliser !== NORMALISER_VERSION) problems.push({ path: '/normaliser', message: `must be "${NORMALISER_VERSION}" (the gateway's key normaliser)` });
  if (typeof b.publicKey !== 'string' || !B64.test(b.publicKey) || Buffer.from(b.publicKey, 'base64').length !== 32) problems.push({ path: '/publicKey', message: 'must be a base64 ristretto255 element (32 bytes)' });
  if (!Number.isInteger(b.n) || (b.n as number) < 1 || (b.n as number) > MAX_SETUP_ELEMENTS) problems.push({ path: '/n', message: `must be an integer from 1 to ${MAX_SETUP_ELEMENTS}` });
  if (b.p !== GCS_P) problems.push({ path: '/p', message: `must be ${GCS_P}` });
  if (typeof b.set !== 'string' || !B64.test(b.set)) problems.push({ path: '/set', message: 'must be base64' });
  if (problems.length) throw invalid('blind_setup_invalid', 'The setup message is not valid; nothing was stored', problems);
  const setup = b as unknown as SetupMessage;
  try {
    decodeGcs({ n: setup.n, p: setup.p, data: new Uint8Array(Buffer.from(setup.set, 'base64')) });
  } catch (err) {
    throw invalid('blind_setup_invalid', 'The setup message is not valid; nothing was stored', [{ path: '/set', message: (err as Error).message }]);
  }
  return { schema: setup.schema, suite: setup.suite, normaliser: setup.normaliser, publicKey: setup.publicKey, n: setup.n, p: setup.p, set: setup.set };
}

function checkAnswer(body: unknown): BlindAnswer {
  const problems: ErrorDetail[] = [];
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw invalid('schema_violation', 'The blind-match answer does not match the schema', [{ path: '', message: 'must be a JSON object' }]);
  const b = body as Record<string, unknown>;
  const allowed = new Set(['schema', 'packet', 'publicKey', 'evaluated', 'proof']);
  for (const k of Object.keys(b)) if (!allowed.has(k)) problems.push({ path: `/${k}`, message: 'is not an allowed property' });
  if (b.schema !== 'cordon.blind-answer/v1') problems.push({ path: '/schema', message: 'must be "cordon.blind-answer/v1"' });
  if (typeof b.packet !== 'string') problems.push({ path: '/packet', message: 'must be the packet id' });
  if (typeof b.publicKey !== 'string' || !B64.test(b.publicKey)) problems.push({ path: '/publicKey', message: 'must be base64' });
  if (typeof b.proof !== 'string' || !B64.test(b.proof) || b.proof.length > 200) problems.push({ path: '/proof', message: 'must be base64 (64 bytes)' });
  if (!Array.isArray(b.evaluated) || b.evaluated.length > 1024) problems.push({ path: '/evaluated', message: 'must be an array of at most 1024 elements' });
  else b.evaluated.forEach((e, i) => {
    if (typeof e !== 'string' || e.length > 64 || !B64.test(e)) problems.push({ path: `/evaluated/${i}`, message: 'must be a base64 ristretto255 element' });
  });
  if (problems.length) throw invalid('schema_violation', 'The blind-match answer does not match the schema', problems);
  return b as unknown as BlindAnswer;
}
