/**
 * When a dossier's status record (and the hits kept with it) is erased: never before its own
 * retention, and never before its last packet has expired plus a grace period, so a source can fetch
 * the hits on any packet that still exists (children's services keep packets 730 days).
 */
import { describe, expect, it } from 'vitest';
import {
  DAY_MS,
  packetExpiry,
  STATUS_GRACE_AFTER_PACKETS_MS,
  STATUS_RETENTION_MS,
  statusDueAfterPacket,
  statusRecordDue,
} from '../../gateway/retention/schedule.js';

const received = new Date('2026-03-01T10:00:00.000Z');

describe('statusRecordDue', () => {
  it('without packets (every delivery blocked) it is the record’s own retention: 399 days', () => {
    expect(STATUS_RETENTION_MS).toBe(399 * DAY_MS);
    expect(statusRecordDue(received)).toEqual(new Date(received.getTime() + 399 * DAY_MS));
    expect(statusRecordDue(received, [])).toEqual(new Date(received.getTime() + 399 * DAY_MS));
  });

  it('packets that end well before it do not shorten it (DVLA 90, HMRC 365 days)', () => {
    const packets = [90, 365].map((d) => packetExpiry(received, d));
    expect(statusRecordDue(received, packets)).toEqual(new Date(received.getTime() + 399 * DAY_MS));
  });

  it('a 730-day packet (children’s services) keeps the record and its hits until 30 days after that packet ends', () => {
    expect(STATUS_GRACE_AFTER_PACKETS_MS).toBe(30 * DAY_MS);
    const packets = [90, 180, 365, 730].map((d) => packetExpiry(new Date(received.getTime() + 5000), d));
    const due = statusRecordDue(received, packets);
    expect(due).toEqual(new Date(received.getTime() + 5000 + 760 * DAY_MS));
    for (const p of packets) expect(due.getTime()).toBeGreaterThan(p.getTime());
    // Whatever the order the packets come in.
    expect(statusRecordDue(received, [...packets].reverse())).toEqual(due);
  });

  it('a 365-day packet created late enough to end within the grace of day 399 still extends it', () => {
    const late = packetExpiry(new Date(received.getTime() + 10 * DAY_MS), 365); // day 375
    expect(statusRecordDue(received, [late])).toEqual(new Date(received.getTime() + 405 * DAY_MS));
  });

  it('the longest retention an agreement may set (3650 days) is covered too', () => {
    const p = packetExpiry(received, 3650);
    expect(statusRecordDue(received, [p])).toEqual(new Date(p.getTime() + 30 * DAY_MS));
  });

  it('statusDueAfterPacket is the grace after one packet’s end', () => {
    const p = new Date('2028-03-01T00:00:00.000Z');
    expect(statusDueAfterPacket(p)).toEqual(new Date(p.getTime() + STATUS_GRACE_AFTER_PACKETS_MS));
  });
});
