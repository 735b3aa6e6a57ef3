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
import type { GatewayKey, RecipientKey } from '../crypto/openpgp.js';
import { hmacId } from '../crypto/seal.js';
import { GatewayError, type ErrorDetail } from '../errors/index.js';
import type { Hit, HitsSubmission } from '../dossier/types.js';
import { validateHits } from '../dossier/validate.js';
import type { Mailbox, PacketRecord } from '../mailbox/mailbox.js';
import type { LiveSet } from '../policy/live.js';
import type { PartnerPolicy } from '../policy/types.js';
import { hitItems, matchTokens } from './links.js';
import type { HitStore, StoredHit } from './store.js';
import type { DossierStore } from '../store/dossiers.js';
import { agreementInForce, auditRefusal, openSubmission, packetRefs, requireSamePacket, type SubmissionFormat, type SubmissionKind } from './submission.js';

export { agreementState, type AgreementState } from './submission.js';

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

export type HitsFormat = SubmissionFormat;

const HITS: SubmissionKind = { noun: 'hits', refused: 'hits.refused' };

export interface HitsReceipt {
  packet: string;
  received: number;
  accepted: number;
  duplicates: number;
}

export class Hits {
  constructor(private readonly deps: HitsDeps) {}

  async submit(client: Client, packetId: string, body: unknown, format: HitsFormat): Promise<HitsReceipt> {
    const now = new Date();
    const { live, packet, body: opened } = await openSubmission(this.deps, HITS, client, packetId, body, format, now);
    const submission = validateHits(opened);
    requireSamePacket(submission.packet, packet);
    const policy = agreementInForce(live, HITS, packet.partner, now);
    const refs = packetRefs(this.deps.sealKey, packet);
    // Only the kinds the dossier asked this partner for (policy/recipients.ts); a record from before
    // the choice was kept allows the partner's own checks.
    const asked = (await this.deps.store.get(packet.dossier))?.kinds?.[packet.partner];
    const subjects = this.check(submission, refs, policy, asked);

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
          if (err instanceof GatewayError && err.code === 'dossier_recalled') await auditRefusal(this.deps, HITS, client, packet, 'recalled while the hits were being stored');
          throw err;
        })
      : { added: 0, total: 0 };
    if (added > 0) for (const h of fresh) hitsReceived.inc({ partner: packet.partner, kind: h.kind });
    if (added > 0 && this.deps.onNewHits) await this.deps.onNewHits(packet.dossier, packet.source, total).catch(() => undefined);
    return { packet: packet.id, received: submission.hits.length, accepted: added, duplicates: submission.hits.length - added };
  }

  /** Every hit's subject ref and kind; all problems reported at once. Returns the subject id per hit. */
  private check(submission: HitsSubmission, refs: Record<string, string>, policy: PartnerPolicy, asked?: string[]): string[] {
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
      } else if (asked && !asked.includes(hit.kind)) {
        kindProblems.push({
          path: `/hits/${i}/kind`,
          message: `"${hit.kind}" was not asked of ${policy.partner.id} for this dossier (asked: ${asked.join(', ') || 'nothing'})`,
          keyword: 'hitKindNotRequested',
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
