/**
 * The audit log against the AuditChainStore interface (an in-memory one here; the Redis one is checked
 * in test/integration/store): records chain by hash, appends made together land in one write, a head
 * moved by another writer is retried, and a list that no longer matches its head refuses every append.
 */
import { describe, expect, it } from 'vitest';
import { AuditLog, GENESIS, verifyChain, type AuditRecord } from '../../gateway/audit/log.js';
import type { AppendOutcome, AuditChainStore, AuditRow, AuditTerm } from '../../gateway/store/audit.js';

class MemoryChain implements AuditChainStore {
  readonly prefix = 'memory';
  stored: string | null = null;
  list: string[] = [];
  readonly terms = new Map<string, number[]>();
  writes = 0;
  async head() {
    return this.stored;
  }
  async append(expectedHead: string, expectedLength: number, newHead: string, rows: readonly AuditRow[]): Promise<AppendOutcome> {
    if ((this.stored ?? '') !== expectedHead) return 'moved';
    if (this.list.length !== expectedLength) return 'mismatch';
    this.writes++;
    for (const r of rows) {
      this.list.push(r.json);
      for (const [d, v] of r.terms) this.terms.set(`${d}:${v}`, [...(this.terms.get(`${d}:${v}`) ?? []), r.seq]);
    }
    this.stored = newHead;
    return 'ok';
  }
  async length() {
    return this.list.length;
  }
  async at(i: number) {
    return this.list[i] ?? null;
  }
  async range(start: number, end: number) {
    return this.list.slice(start, end === -1 ? undefined : end + 1);
  }
  async bySeq(seqs: readonly number[]) {
    return seqs.map((s) => this.list[s - 1] ?? null);
  }
  async firstSeqFrom() {
    return undefined;
  }
  async lastSeqUntil() {
    return undefined;
  }
  async termCount([d, v]: AuditTerm, lo: number, hi: number) {
    return (this.terms.get(`${d}:${v}`) ?? []).filter((s) => s >= lo && s <= hi).length;
  }
  async termSeqs([d, v]: AuditTerm, lo: number, hi: number, limit: number) {
    return (this.terms.get(`${d}:${v}`) ?? []).filter((s) => s >= lo && s <= hi).slice(0, limit);
  }
  async termHas([d, v]: AuditTerm, seqs: readonly number[]) {
    return seqs.map((s) => (this.terms.get(`${d}:${v}`) ?? []).includes(s));
  }
}

describe('AuditLog against the AuditChainStore interface', () => {
  it('chains records, writes appends made together at once, and indexes their terms', async () => {
    const chain = new MemoryChain();
    const log = new AuditLog(chain, { now: () => new Date('2026-12-04T10:00:00Z') });
    const first = await log.append({ kind: 'alteration', action: 'policy.loaded', policyRevision: 'r1', reason: 'start-up' });
    expect(first).toMatchObject({ seq: 1, prev: GENESIS });
    await Promise.all([
      log.append({ kind: 'decision', action: 'delivery.blocked', dossier: 'dos_1', recipient: 'dvla', reason: 'outside_agreement' }),
      log.append({ kind: 'decision', action: 'delivery.blocked', dossier: 'dos_1', recipient: 'hmrc', reason: 'outside_agreement' }),
      log.append({ kind: 'decision', action: 'delivery.blocked', dossier: 'dos_1', recipient: 'dvla', reason: 'outside_agreement' }),
    ]);
    expect(chain.writes).toBeLessThan(4);
    const records = await log.read();
    expect(records.map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    expect(verifyChain(records)).toBeUndefined();
    expect(await log.head()).toMatchObject({ seq: 4, hash: records[3]!.hash });
    expect(chain.terms.get('partner:dvla')).toEqual([2, 4]);
    expect(chain.terms.get('dossier:dos_1')).toEqual([2, 3, 4]);
  });

  it('retries when another writer moved the head, and refuses every append once the list does not match it', async () => {
    const chain = new MemoryChain();
    const other = new AuditLog(chain);
    const log = new AuditLog(chain);
    await log.append({ kind: 'alteration', action: 'policy.loaded', policyRevision: 'r1', reason: 'start-up' });
    // The other writer appends after this one: this one's remembered head is stale, its first try refused.
    await other.append({ kind: 'alteration', action: 'policy.loaded', policyRevision: 'r2', reason: 'SIGHUP' });
    const outcomes: AppendOutcome[] = [];
    const append = chain.append.bind(chain);
    chain.append = async (...args) => {
      const outcome = await append(...args);
      outcomes.push(outcome);
      return outcome;
    };
    const record: AuditRecord = await log.append({ kind: 'alteration', action: 'policy.loaded', policyRevision: 'r3', reason: 'file change' });
    expect(outcomes).toEqual(['moved', 'ok']);
    const records = await log.read();
    expect(records).toHaveLength(3);
    expect(verifyChain(records)).toBeUndefined();
    expect(record.seq).toBe(records.find((r) => r.policyRevision === 'r3')!.seq);
    chain.list.pop(); // someone removed the newest record under the gateway
    await expect(log.append({ kind: 'alteration', action: 'policy.loaded', policyRevision: 'r4', reason: 'SIGHUP' })).rejects.toMatchObject({ code: 'audit_unavailable' });
    expect(await log.health()).toMatchObject({ ready: false });
  });
});
