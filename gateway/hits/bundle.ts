/**
 * The hits bundle: the story of the force getting back what the partners found. Every hit held for the
 * dossier, grouped under the dossier's own subject ids, with the links that connect subjects (in this
 * dossier, or to subjects of the same source's other dossiers), as one OpenPGP message encrypted to the
 * source's pinned key and signed by the gateway. With them, each partner's answer per subject (hit, no
 * trace, pending, overdue: answers.ts) and the answers and hits partners withdrew; a withdrawn hit stays
 * in the bundle, marked, so the force knows what it can no longer rely on. A missing or unusable source key refuses the bundle:
 * it is never encrypted to any other key. The delivery is audited before the message is handed out.
 */
import type { AuditLog } from '../audit/log.js';
import type { Client } from '../config/clients.js';
import { encryptAndSign, type GatewayKey, type RecipientKey } from '../crypto/openpgp.js';
import { GatewayError } from '../errors/index.js';
import type { LiveSet } from '../policy/live.js';
import type { PolicySet } from '../policy/types.js';
import { isRecalled, type DossierRecord, type DossierStore } from '../store/dossiers.js';
import { isWithdrawn, type Answers, type AnswersSummary } from './answers.js';
import { agreementState } from './submission.js';
import { compareIds, findLinks, hitItems, matchTokens, unpackItems, type Link, type LinkItem } from './links.js';
import { sourceKeyError, type SourceKeys } from './source-keys.js';
import type { HitStore, StoredHit } from './store.js';

export interface BundleDeps {
  store: DossierStore;
  hitStore: HitStore;
  audit: AuditLog;
  live: () => LiveSet<RecipientKey>;
  gatewayKey: GatewayKey;
  sourceKeys: SourceKeys;
  /** Partners' answers per subject; without it the bundle carries hits and links only. */
  answers?: Answers;
  /** At most this many other dossiers are opened to look for cross-dossier links. */
  maxLinkedDossiers?: number;
}

export interface BundleHit {
  partner: string;
  kind: StoredHit['kind'];
  detail: StoredHit['detail'];
  matchedOn: string[];
  confidence: StoredHit['confidence'];
  partnerRecordRef?: string;
  receivedAt: string;
  agreement: { reference: string };
  agreementExpired?: true;
  /**
   * Whether the partner signed the hits with its pinned key (an OpenPGP submission) or sent plain JSON
   * with its bearer token alone; for a relayed hit, as the peer gateway says its partner sent it.
   */
  signed: boolean;
  /** The peer force whose gateway relayed this hit from one of its partners (gateway/exchange). */
  via?: string;
  /** The partner took this hit back (POST /v1/packets/:id/matches, `withdrawn`). */
  withdrawn?: true;
}

export interface Bundle {
  bundle: { dossier: string; source: string; generatedAt: string; count: number };
  subjects: Record<string, BundleHit[]>;
  links: Link[];
  /** Per partner and subject: hit | no_trace | pending | overdue (as in GET /v1/dossiers/:id). */
  matches?: AnswersSummary['matches'];
  withdrawals?: AnswersSummary['withdrawals'];
}

const DOSSIER_ID = /^dos_[0-9a-f]{32}$/;

export class Bundles {
  constructor(private readonly deps: BundleDeps) {}

  /** The armored, signed and encrypted bundle for the source that sent the dossier. */
  async deliver(client: Client, dossierId: string): Promise<{ message: string; count: number }> {
    const record = DOSSIER_ID.test(dossierId) ? await this.deps.store.get(dossierId) : undefined;
    if (!record || record.source !== client.source) throw new GatewayError('not_found', 'No such dossier');
    const now = new Date();
    const set = this.deps.live().set;
    const key = await this.deps.sourceKeys.get(set, record.source, now);

    const bundle = await this.build(set, record.id, record.source, now);
    let message: string;
    try {
      message = await encryptAndSign(JSON.stringify(bundle), key, this.deps.gatewayKey, now);
    } catch (err) {
      if (err instanceof GatewayError && err.code === 'recipient_key_invalid') throw sourceKeyError(record.source, err.message, err);
      throw err;
    }
    await this.deps.audit.append({
      kind: 'consultation',
      action: 'hits.bundle_delivered',
      actor: client.id,
      dossier: record.id,
      recipient: record.source,
      count: bundle.bundle.count,
      partners: [...new Set(Object.values(bundle.subjects).flat().map((h) => h.partner))].sort(),
      links: bundle.links.length,
      keyFingerprint: key.fingerprint,
    });
    return { message, count: bundle.bundle.count };
  }

  /** The plaintext bundle (exported for tests and tools; never served unencrypted). */
  async build(set: PolicySet, dossierId: string, source: string, now: Date): Promise<Bundle> {
    const hits = (await this.deps.hitStore.hits(dossierId)).sort(
      (a, b) => a.receivedAt.localeCompare(b.receivedAt) || a.partner.localeCompare(b.partner) || a.id.localeCompare(b.id),
    );
    const held = this.deps.answers ? await this.deps.answers.held(dossierId, hits) : undefined;
    const subjects: Record<string, BundleHit[]> = {};
    for (const subject of [...new Set(hits.map((h) => h.subject))].sort(compareIds)) subjects[subject] = [];
    for (const hit of hits) {
      const withdrawn = held !== undefined && isWithdrawn(hit, held.answers);
      subjects[hit.subject]!.push({ ...toBundleHit(hit, set, now), ...(withdrawn ? { withdrawn: true as const } : {}) });
    }
    const answers = held ? await this.deps.answers!.summary(dossierId, now, held) : undefined;
    return {
      bundle: { dossier: dossierId, source, generatedAt: now.toISOString(), count: hits.length },
      subjects,
      links: await this.links(dossierId, source, hits),
      ...(answers ? { matches: answers.matches, ...(answers.withdrawals ? { withdrawals: answers.withdrawals } : {}) } : {}),
    };
  }

  /** Links among this dossier's subjects, and to subjects of the source's other dossiers sharing a value. */
  private async links(dossierId: string, source: string, hits: StoredHit[]): Promise<Link[]> {
    const { hitStore } = this.deps;
    const own = await hitStore.dossierLinks(dossierId);
    const local: LinkItem[] = [...unpackItems(dossierId, own?.items ?? []), ...hits.flatMap((h) => hitItems(dossierId, h))];
    const tokens = new Set(local.flatMap((i) => matchTokens(i).map((t) => `${t.kind}\u0000${t.value}`)));
    const macs = [...tokens].map((t) => {
      const [kind, value] = t.split('\u0000') as [string, string];
      return hitStore.mac(source, kind, value);
    });
    const others = await hitStore.dossiersWith(source, macs, dossierId, this.deps.maxLinkedDossiers ?? 50);
    const references = new Map<string, string>();
    const remote: LinkItem[] = [];
    for (const other of others) {
      const record = await this.linkable(other);
      // Gone with its retention, not this source's, or recalled by the source (withdrawn or corrected:
      // its evidence is no longer the force's to rely on, so nothing of it is linked).
      if (!record || record.source !== source || isRecalled(record.state)) continue;
      const links = await hitStore.dossierLinks(other);
      if (links) references.set(other, links.reference);
      const items = [...unpackItems(other, links?.items ?? []), ...(await hitStore.hits(other)).flatMap((h) => hitItems(other, h))];
      // Only what matches a value of this dossier: nothing else of the other dossier enters the bundle.
      remote.push(...items.filter((i) => matchTokens(i).some((t) => tokens.has(`${t.kind}\u0000${t.value}`))));
    }
    return findLinks([...local, ...remote], dossierId, references);
  }

  /** Another dossier's record for linking; one that fails its integrity check (audited by the store) is left out. */
  private async linkable(id: string): Promise<DossierRecord | undefined> {
    try {
      return await this.deps.store.get(id);
    } catch (err) {
      if (err instanceof GatewayError && err.code === 'record_tampered') return undefined;
      throw err;
    }
  }
}

function toBundleHit(hit: StoredHit, set: PolicySet, now: Date): BundleHit {
  if (hit.via !== undefined) {
    // A peer force's partner, under that force's agreement: relayed by the peer gateway.
    const { partner, kind, detail, matchedOn, confidence, partnerRecordRef, receivedAt, agreement, via } = hit;
    return { partner, kind, detail, matchedOn, confidence, ...(partnerRecordRef !== undefined ? { partnerRecordRef } : {}), receivedAt, agreement, signed: hit.signed === true, via };
  }
  const policy = set.partners.get(hit.partner);
  // Lawfully shared when received; marked when the agreement it came under has ended since.
  const ended = !policy || policy.agreement.reference !== hit.agreement.reference || agreementState(policy.agreement, now) === 'expired';
  return {
    partner: hit.partner,
    kind: hit.kind,
    detail: hit.detail,
    matchedOn: hit.matchedOn,
    confidence: hit.confidence,
    ...(hit.partnerRecordRef !== undefined ? { partnerRecordRef: hit.partnerRecordRef } : {}),
    receivedAt: hit.receivedAt,
    agreement: { reference: hit.agreement.reference },
    ...(ended ? { agreementExpired: true as const } : {}),
    signed: hit.signed === true,
  };
}
