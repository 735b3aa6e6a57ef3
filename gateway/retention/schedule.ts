/**
 * The retention schedule: one Redis sorted set of everything that must be erased, scored by when
 * (ms since the epoch). Members name what to erase with ids only:
 *   `packet|<packet id>|<dossier id>|<partner>`   a packet or recall notice, when its agreement's retention ends
 *   `dossier|<dossier id>`                        a dossier's status record, deliveries and hits, when
 *                                                 the later of its own retention and its packets' ends
 *                                                 (`statusRecordDue`)
 * Packets are scheduled atomically with their creation (mailbox.ts); the sweeper erases what is due.
 */
import type { Keys } from '../store/redis.js';
import { RECORD_TTL_SECONDS } from '../store/dossiers.js';

export const DAY_MS = 24 * 3600 * 1000;

/**
 * Redis's own expiry on a packet, set this long after its retention ends: a backstop should no sweeper
 * run. Normally the sweeper (every 30 s) has erased the packet, and audited it, long before.
 */
export const STORE_BACKSTOP_MS = 15 * 60 * 1000;

/**
 * How long a dossier's status record (ids, states, times: no dossier content) is kept at least: just
 * under the store's own 400-day expiry, which stays as a backstop. Packets that outlive it extend it
 * (`statusRecordDue`).
 */
export const STATUS_RETENTION_MS = RECORD_TTL_SECONDS * 1000 - DAY_MS;

/**
 * How long a dossier's status record (and the deliveries and hits kept with it) outlives the last of its
 * packets: the source can still fetch the final hits on a packet after the packet itself is gone.
 */
export const STATUS_GRACE_AFTER_PACKETS_MS = 30 * DAY_MS;

/**
 * When a dossier's status record, deliveries and hits are erased: the end of the record's own retention
 * (`STATUS_RETENTION_MS` after receipt), or `STATUS_GRACE_AFTER_PACKETS_MS` after the last of its
 * packets expires, whichever is later. So hits can always be fetched while a packet they hang on exists
 * (children's services keep packets 730 days, longer than the record's own 399). Each packet extends the
 * record as it is created (mailbox.ts, atomically with the packet, never shortening it).
 */
export function statusRecordDue(receivedAt: Date, packetExpiries: readonly Date[] = []): Date {
  let due = receivedAt.getTime() + STATUS_RETENTION_MS;
  for (const expiry of packetExpiries) due = Math.max(due, statusDueAfterPacket(expiry).getTime());
  return new Date(due);
}

/** The earliest a dossier's status record may be erased given one packet expiring at `packetExpiresAt`. */
export function statusDueAfterPacket(packetExpiresAt: Date): Date {
  return new Date(packetExpiresAt.getTime() + STATUS_GRACE_AFTER_PACKETS_MS);
}

/** Redis's own expiry on the status record and its companions: a day after the sweeper's turn, as a backstop. */
export const STATUS_STORE_BACKSTOP_MS = DAY_MS;

/** The schedule's key (store/retention.ts owns it; tests inspect it). */
export function retentionKey(keys: Keys): string {
  return keys.retentionDue();
}

export function packetDueMember(packetId: string, dossierId: string, partner: string): string {
  return `packet|${packetId}|${dossierId}|${partner}`;
}

export function dossierDueMember(dossierId: string): string {
  return `dossier|${dossierId}`;
}

/**
 * When a packet created `now` under an agreement keeping data `retentionDays` expires: the agreement's
 * retention, or the gateway's shorter packet TTL (`CORDON_PACKET_TTL_DAYS`) when one is set.
 */
export function packetExpiry(now: Date, retentionDays: number, packetTtlDays?: number): Date {
  const days = packetTtlDays !== undefined && packetTtlDays > 0 ? Math.min(retentionDays, packetTtlDays) : retentionDays;
  return new Date(now.getTime() + Math.round(days * DAY_MS));
}
