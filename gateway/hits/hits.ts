/**
 * Hits: the story of a partner reporting back what its own systems know. The partner names a packet
 * of its own and, for each hit, a subject by the packet-scoped ref it received. The whole submission is
 * checked first (schema, packet, agreement, refs, hit kinds the partner may return); if anything is
 * wrong nothing is stored. Refs are mapped back to the dossier's own subject ids, every hit is sealed,
 * a hit already held (same partner, subject and partner record ref; or, without a record ref, the same
 * content) is counted as a duplicate and not stored again, and the receipt is audited before it is
 * kept. Partners may send the same JSON as an OpenPGP message signed with their pinned key and
 * encrypted to the gateway's key. Nothing is taken on a recall notice (not a dossier packet) or on a
 * packet whose dossier its originator has recalled (`dossier_recalled`, audited as `hits.refused`).
 */
import { hitsReceived } from '../metrics/metrics.js';
import type { AuditLog } from '../audit/log.js';
import { canonical } from '../audit/log.js';
import type { Client } from '../config/clients.js';
import { decryptAndVerify, type GatewayKey, type RecipientKey } from '../crypto/openpgp.js';
import { hmacId, unseal } from '../crypto/seal.js';
import { GatewayError, type ErrorDetail } from '../errors/index.js';
import type { Hit, HitsSubmission } from '../dossier/types.js';
import { validateHits } from '../dossier/validate.js';
import type { Mailbox, PacketRecord } from '../mailbox/mailbox.js';
import { isInvalid, type LiveSet } from '../policy/live.js';
import type { Agreement, PartnerPolicy } from '../policy/types.js';
import { agreementStatus, type AgreementStatus } from '../policy/agreement.js';
import { hitItems, matchTokens } from './links.js';
import type { HitStore, StoredHit } from './store.js';
import { isRecalled, type DossierStore } from '../store/dossiers.js';

export interface HitsDeps {
  /** Dossier records: hits on a recalled dossier are refused. */
  store: Pick<DossierStore, 'get'>;
  mailbox: Mailbox;
  hitStore: HitStore;
  audit: AuditLog;
  live: () => LiveSet<RecipientKey>;
  gatewayKey: GatewayKey;
  sealKey: Buffer;
  /** Key for hit ids (deduplication), the keyring's `hitId`. */
  idKey: Buffer;
  /** Largest decrypted submission accepted (the JSON body limit applies to the armored message). */
  maxPlaintextBytes?: number;
  /** Called after new hits were stored (e.g. to queue the source's webhook notice); failures are ignored. */
  onNewHits?: (dossierId: string, source: string, total: number) => Promise<void>;
}

export type HitsFormat = 'json' | 'openpgp';

export interface HitsReceipt {
  packet: string;
  received: number;
  accepted: number;
  duplicates: number;
}

const PACKET_ID = /^pkt_[a-z2-7]{1,64}$/;


export type AgreementState = AgreementStatus['state'];

/** Whether an agreement is in force at `now` (policy/agreement.ts; an unreadable date is not in force). */
export function agreementState(agreement: Pick<Agreement, 'inForceFrom' | 'reviewBy'>, now: Date): AgreementState {
  return agreementStatus(agreement, now).state;
}

export class Hits {
  constructor(private readonly deps: HitsDeps) {}

  async submit(client: Client, packetId: string, body: unknown, format: HitsFormat): Promise<HitsReceipt> {
    const now = new Date();
    const live = this.deps.live();
    const packet = await this.ownPacket(client, packetId, now);
    await this.refuseRecalled(client, packet);

    const submission = validateHits(format === 'openpgp' ? await this.open(live, packet.partner, body) : body);
    if (submission.packet !== packet.id) {
      throw new GatewayError('packet_mismatch', 'The submission names another packet than the one it was sent to', [
        { path: '/packet', message: `must be "${packet.id}", the packet in the URL` },
      ]);
    }
    const policy = this.agreementInForce(live, packet.partner, now);
    const refs = JSON.parse(unseal(this.deps.sealKey, packet.refs, packet.id).toString('utf8')) as Record<string, string>;
    const subjects = this.check(submission, refs, policy);

    // Deduplicate: within the submission, then against what the dossier already holds.
    const receivedAt = now.toISOString();
    const candidates = new Map<string, StoredHit>();
    submission.hits.forEach((hit, i) => {
      const stored = this.toStored(hit, subjects[i]!, packet, policy, receivedAt, format === 'openpgp');
      if (!candidates.has(stored.id)) candidates.set(stored.id, stored);
    });
    const held = await this.deps.hitStore.existing(packet.dossier, [...candidates.keys()]);
    const fresh = [...candidates.values()].filter((h) => !held.has(h.id));

    // Audit first: hits that cannot be logged are not kept.
    await this.deps.audit.append({
      kind: 'combination', // DPA 2018 s.62: partner data joined to the dossier
      action: 'hits.received',
      actor: client.id,
      partner: packet.partner,
      packet: packet.id,
      dossier: packet.dossier,
      recipient: packet.source,
      policyRevision: live.set.revision,
      agreement: { reference: policy.agreement.reference, legalBasis: policy.agreement.legalBasis, purpose: policy.agreement.purpose },
      count: fresh.length,
      duplicates: submission.hits.length - fresh.length,
      kinds: [...new Set(fresh.map((h) => h.kind))].sort(),
      subjects: new Set(fresh.map((h) => h.subject)).size,
      signed: format === 'openpgp',
    });
    const macs = fresh.flatMap((h) =>
      hitItems(packet.dossier, h).flatMap((item) => matchTokens(item).map((t) => this.deps.hitStore.mac(packet.source, t.kind, t.value))),
    );
    const { added, total } = fresh.length
      ? await this.deps.hitStore.add(packet.dossier, packet.source, fresh, macs, { refuseRecalled: true }).catch(async (err: unknown) => {
          // Recalled between the check above and now: the log says nothing was kept after all.
          if (err instanceof GatewayError && err.code === 'dossier_recalled') await this.auditRefusal(client, packet, 'recalled while the hits were being stored');
          throw err;
        })
      : { added: 0, total: 0 };
    if (added > 0) for (const h of fresh) hitsReceived.inc({ partner: packet.partner, kind: h.kind });
    if (added > 0 && this.deps.onNewHits) await this.deps.onNewHits(packet.dossier, packet.source, total).catch(() => undefined);
    return { packet: packet.id, received: submission.hits.length, accepted: added, duplicates: submission.hits.length - added };
  }

  /**
   * The partner's own packet. Another partner's answers exactly like a missing one; a recall notice
   * (it lives in the same mailbox) is not a dossier packet and takes no hits.
   */
  private async ownPacket(client: Client, id: string, now: Date): Promise<PacketRecord> {
    const packet = PACKET_ID.test(id) ? await this.deps.mailbox.get(id) : undefined;
    if (!packet || packet.partner !== client.partner) throw new GatewayError('not_found', 'No such packet');
    if (packet.type === 'recall') {
      throw new GatewayError(
        'packet_is_recall_notice',
        `${id} is a recall notice, not a dossier packet: hits are reported against the packet they concern; nothing was stored`,
        [{ path: '', message: 'is a recall notice', ...(packet.recalls ? { recalls: packet.recalls } : {}) }],
      );
    }
    if (Date.parse(packet.expiresAt) <= now.getTime()) {
      throw new GatewayError('packet_expired', `Packet ${id} expired at ${packet.expiresAt}; hits can no longer be reported against it`);
    }
    return packet;
  }

  /**
   * A recalled dossier (withdrawn or corrected by its originator) takes no more hits: the partner was
   * told to stop using the data. The refusal is audited (a partner still working on recalled data is
   * what governance needs to know), and stands whether or not it could be logged.
   */
  private async refuseRecalled(client: Client, packet: PacketRecord): Promise<void> {
    const record = await this.deps.store.get(packet.dossier);
    if (!record || !isRecalled(record.state)) return;
    await this.auditRefusal(client, packet, 'refused before reading the submission');
    const when = record.recall?.at ? ` at ${record.recall.at}` : '';
    throw new GatewayError(
      'dossier_recalled',
      `The dossier packet ${packet.id} was made from was recalled ("${record.state}") by its originator${when}: hits can no longer be reported against it; nothing was stored. See the recall notice in your mailbox.`,
      [{ path: '', message: 'the dossier was recalled', reason: record.state, ...(record.recall?.at ? { recalledAt: record.recall.at } : {}) }],
    );
  }

  private async auditRefusal(client: Client, packet: PacketRecord, note: string): Promise<void> {
    await this.deps.audit
      .append({
        kind: 'rejection',
        action: 'hits.refused',
        actor: client.id,
        partner: packet.partner,
        packet: packet.id,
        dossier: packet.dossier,
        recipient: packet.source,
        reason: 'dossier_recalled',
        note,
      })
      .catch(() => undefined); // the refusal stands whether or not it could be logged
  }

  /** Decrypts with the gateway key and requires the partner's pinned key's signature. */
  private async open(live: LiveSet<RecipientKey>, partner: string, body: unknown): Promise<unknown> {
    if (typeof body !== 'string' || body.length === 0) {
      throw new GatewayError('signature_invalid', 'The body must be an armored OpenPGP message');
    }
    const key = live.keys.get(partner);
    if (isInvalid(key)) {
      throw new GatewayError('recipient_key_invalid', `Your pinned key cannot be used to verify signed hits (${key?.invalid ?? 'no key'}); nothing was stored`);
    }
    let data: string;
    try {
      ({ data } = await decryptAndVerify(body, this.deps.gatewayKey.privateKey, [key.key]));
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
    if (Buffer.byteLength(data, 'utf8') > (this.deps.maxPlaintextBytes ?? 1024 * 1024)) {
      throw new GatewayError('payload_too_large', 'The decrypted hits are larger than the gateway accepts');
    }
    try {
      return JSON.parse(data) as unknown;
    } catch {
      throw new GatewayError('invalid_json', 'The decrypted message is not valid JSON');
    }
  }

  private agreementInForce(live: LiveSet<RecipientKey>, partner: string, now: Date): PartnerPolicy {
    const policy = live.set.partners.get(partner);
    if (!policy) throw new GatewayError('no_agreement', 'No agreement with this partner is in force; hits cannot be received');
    const state = agreementState(policy.agreement, now);
    if (state === 'expired') {
      throw new GatewayError('agreement_expired', `Agreement ${policy.agreement.reference} was due for review by ${policy.agreement.reviewBy}; hits can no longer be received under it`);
    }
    if (state === 'not_in_force') {
      throw new GatewayError('agreement_not_in_force', `Agreement ${policy.agreement.reference} is in force from ${policy.agreement.inForceFrom}`);
    }
    return policy;
  }

  /** Every hit's subject ref and kind; all problems reported at once. Returns the subject id per hit. */
  private check(submission: HitsSubmission, refs: Record<string, string>, policy: PartnerPolicy): string[] {
    const checks = policy.partner.checks;
    const kindProblems: ErrorDetail[] = [];
    const refProblems: ErrorDetail[] = [];
    const subjects = submission.hits.map((hit, i) => {
      if (!checks.includes(hit.kind)) {
        kindProblems.push({
          path: `/hits/${i}/kind`,
          message: `"${hit.kind}" is not a check ${policy.partner.id} may return (${checks.join(', ')})`,
          keyword: 'hitKind',
        });
      }
      const subject = Object.hasOwn(refs, hit.subject) ? refs[hit.subject] : undefined;
      if (subject === undefined) refProblems.push({ path: `/hits/${i}/subject`, message: 'is not a subject ref of this packet', keyword: 'subjectRef' });
      return subject ?? '';
    });
    if (kindProblems.length) {
      throw new GatewayError('hit_kind_not_permitted', 'Some hits are of kinds this partner may not return; nothing was stored', [...kindProblems, ...refProblems].slice(0, 50));
    }
    if (refProblems.length) {
      throw new GatewayError('unknown_subject_ref', 'Some hits name subjects that are not in this packet; nothing was stored', refProblems.slice(0, 50));
    }
    return subjects;
  }

  private toStored(hit: Hit, subject: string, packet: PacketRecord, policy: PartnerPolicy, receivedAt: string, signed: boolean): StoredHit {
    const id =
      hit.partnerRecordRef !== undefined
        ? hmacId(this.deps.idKey, 'ref', packet.partner, subject, hit.partnerRecordRef)
        : hmacId(this.deps.idKey, 'content', packet.partner, subject, canonical({ kind: hit.kind, detail: hit.detail, matchedOn: hit.matchedOn, confidence: hit.confidence }));
    return {
      id,
      subject,
      partner: packet.partner,
      packet: packet.id,
      kind: hit.kind,
      detail: hit.detail,
      matchedOn: hit.matchedOn,
      confidence: hit.confidence,
      ...(hit.partnerRecordRef !== undefined ? { partnerRecordRef: hit.partnerRecordRef } : {}),
      receivedAt,
      agreement: { reference: policy.agreement.reference },
      ...(signed ? { signed: true } : {}),
    };
  }
}
