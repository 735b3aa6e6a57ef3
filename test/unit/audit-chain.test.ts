import { describe, expect, it } from 'vitest';
import { canonical, GENESIS, recordHash, verifyChain, type AuditRecord } from '../../gateway/audit/log.js';

function chain(n: number): AuditRecord[] {
  const out: AuditRecord[] = [];
  let prev = GENESIS;
  for (let i = 1; i <= n; i++) {
    const body = { kind: 'collection' as const, action: 'dossier.received', dossier: `dos_${i}`, seq: i, at: new Date(0).toISOString(), prev };
    const rec = { ...body, hash: recordHash(body) } as AuditRecord;
    out.push(rec);
    prev = rec.hash;
  }
  return out;
}

describe('audit hash chain', () => {
  it('canonical JSON ignores key order', () => {
    expect(canonical({ b: 1, a: [{ d: 2, c: 3 }] })).toBe(canonical({ a: [{ c: 3, d: 2 }], b: 1 }));
  });

  it('an intact chain verifies', () => {
    expect(verifyChain(chain(5))).toBeUndefined();
  });

  it('an edit, a deletion and a reordering are each found and named', () => {
    const edited = chain(5);
    edited[2] = { ...edited[2]!, dossier: 'dos_other' };
    expect(verifyChain(edited)).toMatchObject({ index: 2, seq: 3 });

    const deleted = chain(5);
    deleted.splice(1, 1);
    expect(verifyChain(deleted)).toMatchObject({ index: 1 });

    const reordered = chain(5);
    [reordered[3], reordered[4]] = [reordered[4]!, reordered[3]!];
    expect(verifyChain(reordered)).toMatchObject({ index: 3 });
  });
});
