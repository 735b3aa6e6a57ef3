/**
 * What every partner submission against a packet goes through before its own checks, for hits
 * (hits.ts) and for answers (matches.ts) alike: the packet must be the partner's own (another partner's
 * answers exactly like a missing one), a dossier packet (not a recall notice), not expired, and its
 * dossier not recalled by its originator (refused and audited); a signed and encrypted body is opened
 * with the gateway key and must carry the partner's pinned key's signature, and a partner whose agreement
 * sets `requireSignedHits` may send nothing else. After validation, the
 * submission must name the packet in the URL and the partner's agreement must be in force.
 */
import type { AuditLog } from '../audit/log.js';
import type { Client } from '../config/clients.js';
import { decryptAndVerify, type GatewayKey, type RecipientKey } from '../crypto/openpgp.js';
import { unseal } from '../crypto/seal.js';
import { GatewayError } from '../errors/index.js';
import type { Mailbox, PacketRecord } from '../mailbox/mailbox.js';
import { agreementStatus, type AgreementStatus } from '../policy/agreement.js';
import { isInvalid, type LiveSet } from '../policy/live.js';
import type { Agreement, PartnerPolicy } from '../policy/types.js';
import { isRecalled, type DossierStore } from '../store/dossiers.js';
import { refuseControlCharacters } from './detail-text.js';

export interface SubmissionDeps {
  /** Dossier records: nothing is taken on a recalled dossier. */
  store: Pick<DossierStore, 'get'>;
  mailbox: Mailbox;
  audit: AuditLog;
  live: () => LiveSet<RecipientKey>;
  gatewayKey: GatewayKey;
  sealKey: Buffer;
  /** Largest decrypted submission accepted (the JSON body limit applies to the armored message). */
  maxPlaintextBytes?: number;
}

export type SubmissionFormat = 'json' | 'openpgp';

/** What is submitted (named in messages) and the audit action of a refusal on a recalled dossier. */
export interface SubmissionKind {
  noun: 'hits' | 'answers' | 'setup messages';
  refused: 'hits.refused' | 'matches.refused' | 'blind.refused';
}

export interface Opened {
  live: LiveSet<RecipientKey>;
  packet: PacketRecord;
  /** The body as JSON: parsed from the decrypted message for `openpgp`, control characters refused. */
  body: unknown;
}

const PACKET_ID = /^pkt_[a-z2-7]{1,64}$/;

export type AgreementState = AgreementStatus['state'];

/** Whether an agreement is in force at `now` (policy/agreement.ts; an unreadable date is not in force). */
export function agreementState(agreement: Pick<Agreement, 'inForceFrom' | 'reviewBy'>, now: Date): AgreementState {
  return agreementStatus(agreement, now).state;
}

/** The partner's own live packet, the dossier not recalled, the body opened: the checks before validation. */
export async function openSubmission(
  deps: SubmissionDeps,
  kind: SubmissionKind,
  client: Client,
  packetId: string,
  body: unknown,
  format: SubmissionFormat,
  now: Date,
): Promise<Opened> {
  const live = deps.live();
  const packet = await ownPacket(deps, kind, client, packetId, now);
  await refuseRecalled(deps, kind, client, packet);
  await refuseUnsigned(deps, kind, client, packet, live, format);
  const opened = format === 'openpgp' ? await open(deps, kind, live, packet.partner, body) : body;
  refuseControlCharacters(opened);
  return { live, packet, body: opened };
}

/** The submission must name the packet it was sent to. */
export function requireSamePacket(named: string, packet: PacketRecord): void {
  if (named !== packet.id) {
    throw new GatewayError('packet_mismatch', 'The submission names another packet than the one it was sent to', [
      { path: '/packet', message: `must be "${packet.id}", the packet in the URL` },
    ]);
  }
}

/** The packet's sealed map of packet ref → the dossier's own subject id. */
export function packetRefs(sealKey: Buffer, packet: Pick<PacketRecord, 'id' | 'refs'>): Record<string, string> {
  return JSON.parse(unseal(sealKey, packet.refs, packet.id).toString('utf8')) as Record<string, string>;
}

/**
 * The dossier's own ids of the subjects the packet holds (its refs also name subjects it only points
 * at); undefined for a packet made before this was kept.
 */
export function packetSubjects(sealKey: Buffer, packet: Pick<PacketRecord, 'id' | 'subjects'>): string[] | undefined {
  if (!packet.subjects) return undefined;
  return JSON.parse(unseal(sealKey, packet.subjects, `${packet.id}:subjects`).toString('utf8')) as string[];
}

export function agreementInForce(live: LiveSet<RecipientKey>, kind: SubmissionKind, partner: string, now: Date): PartnerPolicy {
  const policy = live.set.partners.get(partner);
  if (!policy) throw new GatewayError('no_agreement', `No agreement with this partner is in force; ${kind.noun} cannot be received`);
  const state = agreementState(policy.agreement, now);
  if (state === 'expired') {
    throw new GatewayError('agreement_expired', `Agreement ${policy.agreement.reference} was due for review by ${policy.agreement.reviewBy}; ${kind.noun} can no longer be received under it`);
  }
  if (state === 'not_in_force') {
    throw new GatewayError('agreement_not_in_force', `Agreement ${policy.agreement.reference} is in force from ${policy.agreement.inForceFrom}`);
  }
  return policy;
}

/**
 * The partner's own packet. Another partner's answers exactly like a missing one; a recall notice
 * (it lives in the same mailbox) is not a dossier packet and takes nothing.
 */
async function ownPacket(deps: SubmissionDeps, kind: SubmissionKind, client: Client, id: string, now: Date): Promise<PacketRecord> {
  const packet = PACKET_ID.test(id) ? await deps.mailbox.get(id) : undefined;
  if (!packet || packet.partner !== client.partner) throw new GatewayError('not_found', 'No such packet');
  if (packet.type === 'recall') {
    throw new GatewayError(
      'packet_is_recall_notice',
      `${id} is a recall notice, not a dossier packet: ${kind.noun} are reported against the packet they concern; nothing was stored`,
      [{ path: '', message: 'is a recall notice', ...(packet.recalls ? { recalls: packet.recalls } : {}) }],
    );
  }
  if (Date.parse(packet.expiresAt) <= now.getTime()) {
    throw new GatewayError('packet_expired', `Packet ${id} expired at ${packet.expiresAt}; ${kind.noun} can no longer be reported against it`);
  }
  return packet;
}

/**
 * A recalled dossier (withdrawn or corrected by its originator) takes nothing more: the partner was
 * told to stop using the data. The refusal is audited (a partner still working on recalled data is
 * what governance needs to know), and stands whether or not it could be logged.
 */
async function refuseRecalled(deps: SubmissionDeps, kind: SubmissionKind, client: Client, packet: PacketRecord): Promise<void> {
  const record = await deps.store.get(packet.dossier);
  if (!record || !isRecalled(record.state)) return;
  await auditRefusal(deps, kind, client, packet, 'refused before reading the submission');
  const when = record.recall?.at ? ` at ${record.recall.at}` : '';
  throw new GatewayError(
    'dossier_recalled',
    `The dossier packet ${packet.id} was made from was recalled ("${record.state}") by its originator${when}: ${kind.noun} can no longer be reported against it; nothing was stored. See the recall notice in your mailbox.`,
    [{ path: '', message: 'the dossier was recalled', reason: record.state, ...(record.recall?.at ? { recalledAt: record.recall.at } : {}) }],
  );
}

/**
 * A partner whose agreement sets `requireSignedHits` must sign what it reports: plain JSON is refused
 * before it is read (`signature_required`), so a stolen bearer token alone cannot inject hits or
 * answers. Audited, since that is what a stolen token looks like.
 */
async function refuseUnsigned(deps: SubmissionDeps, kind: SubmissionKind, client: Client, packet: PacketRecord, live: LiveSet<RecipientKey>, format: SubmissionFormat): Promise<void> {
  const agreement = live.set.partners.get(packet.partner)?.agreement;
  if (format === 'openpgp' || agreement?.requireSignedHits !== true) return;
  await auditRefusal(deps, kind, client, packet, 'unsigned, but the agreement requires signed submissions', 'signature_required');
  throw new GatewayError(
    'signature_required',
    `Agreement ${agreement.reference} requires ${kind.noun} signed with your pinned key: send an OpenPGP message (content-type application/pgp-encrypted) signed with it and encrypted to GET /v1/keys/gateway; nothing was stored`,
  );
}

export async function auditRefusal(deps: Pick<SubmissionDeps, 'audit'>, kind: SubmissionKind, client: Client, packet: PacketRecord, note: string, reason = 'dossier_recalled'): Promise<void> {
  await deps.audit
    .append({
      kind: 'rejection',
      action: kind.refused,
      actor: client.id,
      partner: packet.partner,
      packet: packet.id,
      dossier: packet.dossier,
      recipient: packet.source,
      reason,
      note,
    })
    .catch(() => undefined); // the refusal stands whether or not it could be logged
}

/** Decrypts with the gateway key and requires the partner's pinned key's signature. */
export async function open(deps: SubmissionDeps, kind: SubmissionKind, live: LiveSet<RecipientKey>, partner: string, body: unknown): Promise<unknown> {
  if (typeof body !== 'string' || body.length === 0) {
    throw new GatewayError('signature_invalid', 'The body must be an armored OpenPGP message');
  }
  const key = live.keys.get(partner);
  if (isInvalid(key)) {
    throw new GatewayError('recipient_key_invalid', `Your pinned key cannot be used to verify signed ${kind.noun} (${key?.invalid ?? 'no key'}); nothing was stored`);
  }
  let data: string;
  try {
    ({ data } = await decryptAndVerify(body, deps.gatewayKey.privateKey, [key.key]));
  } catch (err) {
    if (err instanceof GatewayError && err.code === 'crypto_failed') {
      throw new GatewayError(
        'signature_invalid',
        'The message could not be decrypted with the gateway key or does not carry a valid signature by your pinned key; nothing was stored',
        undefined,
        { cause: err },
      );
    }
    throw err;
  }
  if (Buffer.byteLength(data, 'utf8') > (deps.maxPlaintextBytes ?? 1024 * 1024)) {
    throw new GatewayError('payload_too_large', `The decrypted ${kind.noun} are larger than the gateway accepts`);
  }
  try {
    return JSON.parse(data) as unknown;
  } catch {
    throw new GatewayError('invalid_json', 'The decrypted message is not valid JSON');
  }
}
