/**
 * Erasure, one thing at a time, each audited before it happens (`kind: 'erasure'`, ids and reason
 * only): a packet or recall notice (its ciphertext and sealed ref map, its mailbox entry; the delivery
 * the source sees turns `expired`; with the last match request of a dossier, the sealed dossier kept
 * for its follow-up), and a dossier's status record with its deliveries, hits and the
 * records kept with it (dossier companions, e.g. its exchange records). Every step is idempotent, so
 * an erasure interrupted half-way is simply done again.
 */
import type { AuditLog } from '../audit/log.js';
import type { RetentionStore } from '../store/retention.js';
import { dossierDueMember, packetDueMember } from './schedule.js';

export type ErasureReason = 'retention_expired' | 'recalled';

export interface PacketRef {
  id: string;
  dossier: string;
  partner: string;
}

export class Eraser {
  constructor(
    private readonly store: RetentionStore,
    private readonly audit: AuditLog,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /**
   * Erases a packet (or recall notice). With `onlyIfState`, only a packet still in that state is
   * erased (recall erases unretrieved packets only); returns whether it was erased by this call.
   */
  async erasePacket(ref: PacketRef, reason: ErasureReason, onlyIfState?: 'delivered'): Promise<boolean> {
    const { state, type } = await this.store.packetState(ref.id);
    if (onlyIfState && state !== onlyIfState) return false;
    await this.audit.append({
      kind: 'erasure',
      action: 'packet.erased',
      packet: ref.id,
      dossier: ref.dossier,
      recipient: ref.partner,
      reason,
      ...(type === 'recall' ? { type: 'recall' } : {}),
      state: state ?? 'already gone from the store',
    });
    const result = await this.store.erasePacket({
      ...ref,
      member: packetDueMember(ref.id, ref.dossier, ref.partner),
      at: this.now().toISOString(),
      reason,
      ...(onlyIfState ? { onlyIfState } : {}),
    });
    if (result === 'skipped') {
      // Retrieved between the check and the erasure: the log says so rather than claim an erasure.
      await this.audit.append({ kind: 'erasure', action: 'packet.erasure_skipped', packet: ref.id, dossier: ref.dossier, recipient: ref.partner, reason: 'retrieved meanwhile' });
      return false;
    }
    if (type === 'match' || type === 'blind-match') await this.eraseSealedAfterMatch(ref.dossier);
    return true;
  }

  /**
   * A sealed dossier kept for match requests' follow-ups (gateway/fanout/followup.ts) goes once none of
   * them is left to answer: audited first, like every erasure.
   */
  private async eraseSealedAfterMatch(dossier: string): Promise<void> {
    if (!(await this.store.sealedAfterMatch(dossier, 'check'))) return;
    await this.audit.append({ kind: 'erasure', action: 'dossier.sealed_content_erased', dossier, reason: 'no match request left to follow up' });
    await this.store.sealedAfterMatch(dossier, 'erase');
  }

  /**
   * Erases a dossier's status record, deliveries, sealed content (if any is left), hits and links, and
   * the records kept with it (its companions: the exchange's peer deliveries and relay bookkeeping).
   */
  async eraseDossier(id: string, reason: ErasureReason): Promise<void> {
    const { sealedLeft, present, companions } = await this.store.dossierRemains(id);
    await this.audit.append({
      kind: 'erasure',
      action: 'dossier.erased',
      dossier: id,
      reason,
      erased: ['status', 'deliveries', 'hits', 'links', ...(companions ? ['exchange records'] : []), ...(sealedLeft ? ['sealed dossier'] : [])],
      ...(present ? {} : { state: 'already gone from the store' }),
    });
    await this.store.eraseDossier(id, dossierDueMember(id));
  }
}
