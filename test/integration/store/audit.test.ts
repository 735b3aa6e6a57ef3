/** The audit chain's storage on a real Redis: compare-and-set appends, reads, the time and term indexes. */
import { describe, expect, it } from 'vitest';
import { RedisAuditChain, type AuditRow } from '../../../gateway/store/audit.js';
import { useStoreFixture } from './fixture.js';

const f = useStoreFixture('audit');

function row(seq: number, atMs: number, terms: AuditRow['terms'] = []): AuditRow {
  return { json: JSON.stringify({ seq }), seq, atMs, terms };
}

describe('RedisAuditChain', () => {
  it('appends a batch when the head and length are as expected, and nothing otherwise', async () => {
    const chain = new RedisAuditChain(f.redis, f.keys);
    expect(chain.prefix).toBe(f.keys.prefix);
    expect(await chain.head()).toBeNull();
    expect(await chain.append('', 0, 'h2', [row(1, 1000, [['kind', 'disclosure'], ['partner', 'dvla']]), row(2, 2000, [['kind', 'disclosure']])])).toBe('ok');
    expect(await chain.head()).toBe('h2');
    expect(await chain.length()).toBe(2);
    // A writer that read an older head: refused, nothing written.
    expect(await chain.append('', 0, 'h3', [row(3, 3000)])).toBe('moved');
    // The list shorter than the head says (truncated under the gateway): refused.
    await f.redis.rpop(f.keys.auditLog());
    expect(await chain.append('h2', 2, 'h3', [row(3, 3000)])).toBe('mismatch');
    expect(await chain.length()).toBe(1);
    expect(await chain.head()).toBe('h2');
    await f.redis.rpush(f.keys.auditLog(), JSON.stringify({ seq: 2 }));
    expect(await chain.append('h2', 2, 'h3', [row(3, 3000, [['dossier', 'dos_x']])])).toBe('ok');
  });

  it('reads records by position and sequence number, as stored', async () => {
    const chain = new RedisAuditChain(f.redis, f.keys);
    expect(await chain.at(0)).toBe(JSON.stringify({ seq: 1 }));
    expect(await chain.at(99)).toBeNull();
    expect(await chain.range(1, -1)).toEqual([JSON.stringify({ seq: 2 }), JSON.stringify({ seq: 3 })]);
    expect(await chain.bySeq([3, 1, 7])).toEqual([JSON.stringify({ seq: 3 }), JSON.stringify({ seq: 1 }), null]);
    expect(await chain.bySeq([])).toEqual([]);
  });

  it('finds sequence numbers by time and by term', async () => {
    const chain = new RedisAuditChain(f.redis, f.keys);
    expect(await chain.firstSeqFrom(1500)).toBe(2);
    expect(await chain.firstSeqFrom(9999)).toBeUndefined();
    expect(await chain.lastSeqUntil(2500)).toBe(2);
    expect(await chain.lastSeqUntil(10)).toBeUndefined();
    expect(await chain.termCount(['kind', 'disclosure'], 1, 3)).toBe(2);
    expect(await chain.termCount(['kind', 'disclosure'], 2, 3)).toBe(1);
    expect(await chain.termSeqs(['kind', 'disclosure'], 1, 3, 10)).toEqual([1, 2]);
    expect(await chain.termSeqs(['kind', 'disclosure'], 1, 3, 1)).toEqual([1]);
    expect(await chain.termHas(['partner', 'dvla'], [1, 2, 3])).toEqual([true, false, false]);
    expect(await chain.termHas(['dossier', 'dos_x'], [3])).toEqual([true]);
    expect(await chain.termHas(['partner', 'nobody'], [])).toEqual([]);
  });
});
