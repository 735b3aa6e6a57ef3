/**
 * Partners' mailboxes. A packet is written at most once per (dossier, partner): its id is derived from
 * both, and the store files it, schedules its erasure and marks the delivery in one atomic step only if
 * it does not exist yet (store/mailbox.ts; a fan-out's packets all in the same step), so a retried or
 * duplicated job can never make a second one.
 * This module decides the retention: the packet is erased when it expires, Redis's own expiry is only a
 * backstop after that, and the dossier's status record is made to outlive the packet.
 */
import type { Delivery } from '../store/dossiers.js';
import type { FiledPackets, MailboxStore, PacketRecord, PacketRetention, PacketSummaryRecord } from '../store/mailbox.js';
import { dossierDueMember, packetDueMember, statusDueAfterPacket, STATUS_STORE_BACKSTOP_MS, STORE_BACKSTOP_MS } from '../retention/schedule.js';

export type { FiledPackets, PacketRecord, PacketSummaryRecord } from '../store/mailbox.js';

export class Mailbox {
  constructor(readonly store: MailboxStore) {}

  /**
   * Files packets of one dossier, each with the delivery it makes, in one atomic step: per packet, true
   * when this call created it, false when it already existed; and the dossier's deliveries right after.
   */
  create(packets: Array<{ packet: PacketRecord; delivery: Delivery }>): Promise<FiledPackets> {
    return this.store.create(packets.map(({ packet, delivery }) => ({ packet, delivery, retention: retentionOf(packet) })));
  }

  get(id: string): Promise<PacketRecord | undefined> {
    return this.store.get(id);
  }

  /**
   * The partner's packets without their messages: newest first, or with `pending` the ones not yet
   * retrieved, oldest first (so a partner drains a backlog of any size page by page).
   */
  list(partner: string, limit = 100, pending = false): Promise<PacketSummaryRecord[]> {
    return this.store.list(partner, limit, pending);
  }

  advance(packet: PacketRecord, state: 'retrieved' | 'acknowledged', at: string): Promise<void> {
    return this.store.advance(packet, state, at);
  }
}

function retentionOf(packet: PacketRecord): PacketRetention {
  const dueMs = Date.parse(packet.expiresAt);
  // Hits on this packet hang on the dossier's status record: it must outlive the packet.
  const statusDueMs = statusDueAfterPacket(new Date(packet.expiresAt)).getTime();
  return {
    member: packetDueMember(packet.id, packet.dossier, packet.partner),
    dueMs,
    // Redis's own expiry is only a backstop: the retention sweeper erases (and audits) at expiresAt.
    storeExpiryMs: dueMs + STORE_BACKSTOP_MS,
    dossierMember: dossierDueMember(packet.dossier),
    statusDueMs,
    statusStoreExpiryMs: statusDueMs + STATUS_STORE_BACKSTOP_MS,
  };
}
