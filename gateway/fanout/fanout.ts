/**
 * Fan-out: the story of one dossier leaving the gateway. Open the sealed dossier; for every partner it
 * was queued for, disclose it (gateway/pipeline/disclose.ts: decide with that partner's policy, check
 * its key, redact with refs for this packet alone), write the packet's plaintext, encrypt it to the
 * partner's pinned key and sign it; audit all the disclosures at once, then file all the packets in their
 * partners' mailboxes in one step. Partners run in parallel (openpgp work overlaps). Every step is idempotent: a
 * delivery already settled is skipped and a packet id is derived from (dossier, partner), so a retried
 * job or one picked up after a worker died never makes a second packet. When every delivery is settled
 * the sealed dossier is erased, unless a partner under an after-match agreement was sent a match request
 * (identifiers only, policy/match.ts) instead: the follow-up for its hits is made from the sealed dossier
 * (followup.ts), which is erased once every such partner has answered and been followed up.
 */
import type { AuditEvent, AuditLog } from '../audit/log.js';
import type { IndexTerms } from '../audit/index-terms.js';
import { checkRecipientKey, type GatewayKey, type RecipientKey } from '../crypto/openpgp.js';
import { encryptAndSignBinary } from '../crypto/binary.js';
import type { Keyring } from '../crypto/keyring.js';
import { hmacId, seal, unseal } from '../crypto/seal.js';
import { GatewayError } from '../errors/index.js';
import type { Dossier } from '../dossier/types.js';
import type { Mailbox, PacketRecord } from '../mailbox/mailbox.js';
import { isInvalid, type LiveSet } from '../policy/live.js';
import type { Block, PartnerPolicy } from '../policy/types.js';
import { isAfterMatch } from '../policy/match.js';
import { agreementOf, disclose, matchDocument, matchPlaintext, packetPlaintext } from '../pipeline/disclose.js';
import { isBlindMatch } from '../policy/blind-keys.js';
import { makeBlindRequest } from '../blind/request.js';
import type { Delivery, DossierStore } from '../store/dossiers.js';
import { packetExpiry } from '../retention/schedule.js';
import { packets as packetsMetric, stageSeconds, timed } from '../metrics/metrics.js';

export interface FanoutDeps {
  store: DossierStore;
  mailbox: Mailbox;
  audit: AuditLog;
  live: () => LiveSet<RecipientKey>;
  gatewayKey: GatewayKey;
  keyring: Keyring;
  /** Runs once the dossier is open, before any delivery (the hits module keeps its link items). */
  onOpened?: (dossierId: string, source: string, dossier: Dossier) => Promise<void>;
  /** A packet TTL shorter than the agreements' retention (`CORDON_PACKET_TTL_DAYS`), when set. */
  packetTtlDays?: number;
}

export class Fanout {
  private readonly sealKey: Buffer;
  private readonly idKey: Buffer;

  constructor(private readonly deps: FanoutDeps) {
    this.sealKey = deps.keyring.seal;
    this.idKey = deps.keyring.packetId;
  }

  packetId(dossierId: string, partner: string): string {
    return 'pkt_' + hmacId(this.idKey, dossierId, partner);
  }

  /**
   * When the sealed dossier was kept for match requests' follow-ups, returns what the fan-out knows of
   * them (followup.ts `eraseIfSettled` starts from it); else undefined.
   */
  async process(dossierId: string): Promise<KeptSealed | undefined> {
    const { store, audit } = this.deps;
    // One read: the record says whether the rest (the sealed dossier, the deliveries) matters.
    const opened = await store.open(dossierId);
    if (!opened || opened.record.state !== 'accepted') return undefined; // already done, or gone with its retention
    const { record, deliveries } = opened;
    const dossier = this.open(dossierId, opened.sealed);
    await this.deps.onOpened?.(dossierId, record.source, dossier);
    const live = this.deps.live();

    const pending = record.partners.filter((p) => (deliveries[p]?.state ?? 'queued') === 'queued');
    const endFanout = stageSeconds.startTimer({ stage: 'fanout' });
    const terms = this.deps.audit.dossierTerms(record.source, dossier.reference);
    const prepared = await Promise.allSettled(pending.map((p) => this.prepare(live, dossierId, record.source, dossier, p, terms)));
    const failed = prepared.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    const packets = prepared.flatMap((r) => (r.status === 'fulfilled' && r.value ? [r.value] : []));
    // Audit first, all the packets' disclosures in one batch: a disclosure that cannot be logged does not happen.
    if (packets.length) await this.deps.audit.appendAll(packets.map((p) => p.event));
    // The deliveries as filing left them; with nothing filed, as read (a block never awaits a match request).
    const filed = packets.length ? await this.file(packets) : { deliveries, created: [] };
    if (failed) throw failed.reason; // settled partners stay settled; the retry does the rest
    endFanout();

    // A match request awaits its answers: the follow-up is made from the sealed dossier (followup.ts).
    const awaiting = Object.values(filed.deliveries).some((d) => d.matchPacketId !== undefined);
    const marked = await store.markProcessed(dossierId, record, { keepSealed: awaiting });
    if (!awaiting) await audit.append({ kind: 'erasure', action: 'dossier.sealed_content_erased', dossier: dossierId, reason: 'all deliveries settled' });
    return awaiting && marked ? filed : undefined;
  }

  private open(dossierId: string, sealed: string | Buffer | undefined): Dossier {
    return openSealed(this.sealKey, dossierId, sealed);
  }

  /**
   * Decides, redacts, encrypts and signs one partner's packet; returns it with its disclosure record,
   * not yet filed. A blocked delivery is recorded here and returns nothing.
   */
  private async prepare(
    live: LiveSet<RecipientKey>,
    dossierId: string,
    source: string,
    dossier: Dossier,
    partner: string,
    terms: (subjectIds: string[]) => IndexTerms | undefined,
  ): Promise<Prepared | undefined> {
    const now = new Date();
    const policy = live.set.partners.get(partner);
    if (!policy) {
      return this.block(dossierId, partner, live.set.revision, { reason: 'no_agreement', message: 'No policy or agreement for this partner is in force' } as unknown as Block);
    }
    // After-match: a match request first, only the identifiers the partner matches on (policy/match.ts).
    const match = isAfterMatch(policy.agreement) ? (policy.match ?? []) : undefined;
    const disclosed = await disclose({
      dossierId,
      source,
      dossier,
      recipient: partner,
      policy,
      ...(match ? { match } : {}),
      decide: () => timed('decide', () => live.decider.decide(partner, dossier, now)),
      key: () => usableRecipientKey(live, partner, now),
      pseudonymKey: this.deps.keyring.pseudonym(partner),
      measure: true,
    });
    if ('block' in disclosed) return this.block(dossierId, partner, disclosed.revision, disclosed.block, policy);

    const packetId = this.packetId(dossierId, partner);
    const expires = packetExpiry(now, policy.agreement.retentionDays, this.deps.packetTtlDays);
    const header = { id: packetId, recipient: partner, issuedAt: now, expiresAt: expires, dossier, revision: disclosed.revision, policy };
    // What every packet record holds: its message (binary: a quarter fewer bytes to store; armored when
    // the partner retrieves it) and the sealed refs and subjects it was made for.
    const record = async (plaintext: string, subjects: string[], extra: Partial<PacketRecord> = {}): Promise<PacketRecord> => ({
      id: packetId,
      partner,
      dossier: dossierId,
      source,
      createdAt: now.toISOString(),
      expiresAt: expires.toISOString(),
      state: 'delivered',
      message: await timed('encrypt', () => encryptAndSignBinary(plaintext, disclosed.key, this.deps.gatewayKey)),
      refs: seal(this.sealKey, JSON.stringify(disclosed.byRef), packetId),
      subjects: seal(this.sealKey, JSON.stringify(subjects), `${packetId}:subjects`),
      ...extra,
    });
    if (isBlindMatch(policy.agreement)) {
      // Blind-match: the match step's identifiers become blinded keys; none leaves in the clear (gateway/blind/).
      const made = makeBlindRequest(disclosed.redacted, policy.agreement);
      if ('block' in made) return this.block(dossierId, partner, disclosed.revision, made.block, policy);
      const blindPlaintext = JSON.stringify({ blindMatch: matchDocument(header, disclosed.redacted).match, request: made.request });
      const asked = made.asked.map((ref) => disclosed.byRef[ref]!);
      return {
        event: disclosed.event('blind.created', packetId, terms, { subjects: asked.length, elements: made.request.elements.length, keyTypes: made.keyTypes }),
        revision: disclosed.revision,
        packet: await record(blindPlaintext, asked, { blind: seal(this.sealKey, JSON.stringify(made.state), `${packetId}:blind`), type: 'blind-match' }),
      };
    }
    const plaintext = match ? matchPlaintext(header, disclosed.redacted) : packetPlaintext(header, disclosed.redacted);
    return {
      event: match ? disclosed.event('match.created', packetId, terms, { subjects: disclosed.subjects.length }) : disclosed.event('packet.created', packetId, terms),
      revision: disclosed.revision,
      packet: await record(plaintext, disclosed.subjects, match ? { type: 'match' } : {}),
    };
  }

  /**
   * Files the audited packets in their partners' mailboxes, all in one step (exactly once, whatever
   * retries happen): the deliveries right after, and the packets this call created.
   */
  private async file(packets: Prepared[]): Promise<KeptSealed> {
    // Stamped as they are filed (after encryption and the audit), not when the packets were begun.
    const updatedAt = new Date().toISOString();
    const delivery = (packet: PacketRecord): Delivery => ({ state: 'delivered', packetId: packet.id, expiresAt: packet.expiresAt, updatedAt, ...(packet.type === 'match' || packet.type === 'blind-match' ? { matchPacketId: packet.id } : {}) });
    const endStore = stageSeconds.startTimer({ stage: 'store' });
    const filed = await this.deps.mailbox.create(packets.map(({ packet }) => ({ packet, delivery: delivery(packet) })));
    endStore();
    const created = packets.filter((_, i) => filed.created[i]);
    for (const { packet, revision } of created) packetsMetric.inc({ partner: packet.partner, outcome: 'delivered', reason: '', revision });
    return { deliveries: filed.deliveries, created: created.map((p) => p.packet) };
  }

  private async block(dossierId: string, partner: string, revision: string, block: Block, policy?: PartnerPolicy): Promise<undefined> {
    await this.deps.audit.append({
      kind: 'decision',
      action: 'delivery.blocked',
      dossier: dossierId,
      recipient: partner,
      policyRevision: revision,
      reason: block.reason,
      ...(policy ? { agreement: agreementOf(policy) } : {}),
    });
    packetsMetric.inc({ partner, outcome: 'blocked', reason: block.reason, revision });
    await this.deps.store.setDelivery(dossierId, partner, {
      state: 'blocked',
      reason: block.reason,
      message: block.message,
      updatedAt: new Date().toISOString(),
    });
    return undefined;
  }
}

/** What a fan-out that kept the sealed dossier for match requests' follow-ups knows right after. */
export interface KeptSealed {
  /** The dossier's deliveries as filing left them. */
  deliveries: Record<string, Delivery>;
  /** The packets (match requests among them) this fan-out created, as stored. */
  created: PacketRecord[];
}

/** A packet made and signed, with its disclosure record, waiting to be audited and filed. */
interface Prepared {
  event: AuditEvent;
  revision: string;
  packet: PacketRecord;
}

/** A sealed dossier that is missing or does not open will never open: no retry can help. */

/** The recipient's pinned key if it can be encrypted to now, else why not (a delivery block). */
export async function usableRecipientKey(live: ReturnType<FanoutDeps['live']>, partner: string, now: Date): Promise<RecipientKey | Block> {
  const key = live.keys.get(partner);
  if (isInvalid(key)) return { reason: 'recipient_key_invalid', message: key?.invalid ?? 'no key' };
  try {
    await checkRecipientKey(key, now);
  } catch (err) {
    return { reason: 'recipient_key_invalid', message: (err as Error).message };
  }
  return key;
}

export function openSealed(sealKey: Buffer, dossierId: string, sealed: string | Buffer | undefined): Dossier {
  if (!sealed) throw new GatewayError('dossier_unreadable', `dossier ${dossierId} has no sealed content`);
  try {
    return JSON.parse(unseal(sealKey, sealed, dossierId).toString('utf8')) as Dossier;
  } catch (err) {
    throw new GatewayError('dossier_unreadable', `the sealed dossier ${dossierId} does not open (tampered, or sealed under another key)`, undefined, { cause: err });
  }
}
