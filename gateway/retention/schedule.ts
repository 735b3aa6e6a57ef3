/**
 * The retention schedule: one Redis sorted set of everything that must be erased, scored by when
 * (ms since the epoch). Members name what to erase with ids only:
 *   `packet|<packet id>|<dossier id>|<partner>`   a packet or recall notice, when its agreement's retention ends
 *   `dossier|<dossier id>`                        a dossier's status record, deliveries and hits
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
 * How long a dossier's status record (ids, states, times: no dossier content) is kept: just under the
 * store's own 400-day expiry, which stays as a backstop.
 */
export const STATUS_RETENTION_MS = RECORD_TTL_SECONDS * 1000 - DAY_MS;

export function retentionKey(keys: Keys): string {
  return `${keys.prefix}:retention:due`;
}

export function retentionLockKey(keys: Keys): string {
  return `${keys.prefix}:retention:lock`;
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
