/**
 * The retention use cases against the RetentionStore interface (an in-memory one here; the Redis one is
 * checked in test/integration/store): what is due is erased through the eraser of its kind, audited
 * before it happens, failures stay scheduled, and a held lock means no sweep.
 */
import { describe, expect, it } from 'vitest';
import type { AuditEvent, AuditLog } from '../../gateway/audit/log.js';
import { Eraser } from '../../gateway/retention/erase.js';
import { RetentionSweeper } from '../../gateway/retention/sweeper.js';
import type { DossierRemains, PacketErasure, PacketErasureRequest, RetentionStore } from '../../gateway/store/retention.js';

class MemoryRetention implements RetentionStore {
  readonly due_ = new Map<string, number>();
  readonly packets = new Map<string, { state: string; type: string | null }>();
  readonly dossiers = new Set<string>();
  lockedBy?: string;
  readonly erased: string[] = [];
  async schedule(member: string, dueMs: number) {
    this.due_.set(member, dueMs);
  }
  async due(nowMs: number, limit: number) {
    return [...this.due_].filter(([, t]) => t <= nowMs).sort((a, b) => a[1] - b[1]).slice(0, limit).map(([m]) => m);
  }
  async unschedule(member: string) {
    this.due_.delete(member);
  }
  async lock(token: string) {
    if (this.lockedBy) return false;
    this.lockedBy = token;
    return true;
  }
  async release(token: string) {
    if (this.lockedBy === token) this.lockedBy = undefined;
  }
  async packetState(id: string) {
    return this.packets.get(id) ?? { state: null, type: null };
  }
  async erasePacket(r: PacketErasureRequest): Promise<PacketErasure> {
    const p = this.packets.get(r.id);
    if (r.onlyIfState && p?.state !== r.onlyIfState) return 'skipped';
    this.packets.delete(r.id);
    this.due_.delete(r.member);
    this.erased.push(r.id);
    return p ? 'erased' : 'gone';
  }
  async dossierRemains(id: string): Promise<DossierRemains> {
    return { sealedLeft: false, present: this.dossiers.has(id), companions: 0 };
  }
  async eraseDossier(id: string, member: string) {
    this.dossiers.delete(id);
    this.due_.delete(member);
    this.erased.push(id);
  }
  // No match requests here: no sealed dossier is kept for a follow-up.
  async sealedAfterMatch() {
    return false;
  }
}

function auditLog(events: AuditEvent[]): AuditLog {
  return { append: async (e: AuditEvent) => void events.push(e) } as unknown as AuditLog;
}

describe('retention against the RetentionStore interface', () => {
  const now = () => new Date(10_000);

  it('erases what is due through its kind’s eraser, audited first, and leaves the rest', async () => {
    const store = new MemoryRetention();
    const events: AuditEvent[] = [];
    const sweeper = new RetentionSweeper(store, new Eraser(store, auditLog(events), now), { now });
    store.packets.set('pkt_a', { state: 'retrieved', type: null });
    store.dossiers.add('dos_1');
    await sweeper.schedule('packet|pkt_a|dos_1|dvla', new Date(1000));
    await sweeper.schedule('dossier|dos_1', new Date(2000));
    await sweeper.schedule('dossier|dos_2', new Date(60_000));
    const result = await sweeper.sweepOnce();
    expect(result).toEqual({ swept: true, erased: ['packet|pkt_a|dos_1|dvla', 'dossier|dos_1'], failed: [] });
    expect(store.erased).toEqual(['pkt_a', 'dos_1']);
    expect(events.map((e) => [e.action, e.reason])).toEqual([['packet.erased', 'retention_expired'], ['dossier.erased', 'retention_expired']]);
    expect([...store.due_.keys()]).toEqual(['dossier|dos_2']);
    expect(store.lockedBy).toBeUndefined();
  });

  it('keeps a failed erasure scheduled, and does not sweep while another holds the lock', async () => {
    const store = new MemoryRetention();
    const errors: string[] = [];
    const sweeper = new RetentionSweeper(store, new Eraser(store, auditLog([]), now), { now, onError: (e) => errors.push(e.message) });
    await sweeper.schedule('unknown|x', new Date(1000));
    expect(await sweeper.sweepOnce()).toEqual({ swept: true, erased: [], failed: ['unknown|x'] });
    expect(errors).toEqual(['no eraser for scheduled kind "unknown"']);
    store.lockedBy = 'someone else';
    expect(await sweeper.sweepOnce()).toEqual({ swept: false, erased: [], failed: [] });
  });

  it('erases a recalled packet only while it is unretrieved, and says so when it was retrieved meanwhile', async () => {
    const store = new MemoryRetention();
    const events: AuditEvent[] = [];
    const eraser = new Eraser(store, auditLog(events), now);
    store.packets.set('pkt_b', { state: 'retrieved', type: null });
    expect(await eraser.erasePacket({ id: 'pkt_b', dossier: 'dos_1', partner: 'dvla' }, 'recalled', 'delivered')).toBe(false);
    expect(events).toEqual([]);
    store.packets.set('pkt_c', { state: 'delivered', type: 'recall' });
    expect(await eraser.erasePacket({ id: 'pkt_c', dossier: 'dos_1', partner: 'dvla' }, 'recalled', 'delivered')).toBe(true);
    expect(events[0]).toMatchObject({ action: 'packet.erased', packet: 'pkt_c', type: 'recall', state: 'delivered' });
  });
});
