/**
 * One serialisation per audit record: `canonicalJson` gives exactly what the JSON round trip followed by
 * `canonical` gave, and the row the log stores is the hashed canonical text with its hash (and batch
 * signature) appended, so the verifier's recomputation over the parsed row finds the same bytes.
 * Records written the old way (a round trip, then JSON.stringify of the record) still verify.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonical, canonicalJson } from '../../gateway/audit/canonical.js';
import { AuditLog, recordHash, verifyChain, type AuditRecord } from '../../gateway/audit/log.js';
import { parseAuditSigningKey } from '../../gateway/crypto/audit-key.js';
import type { AppendOutcome, AuditChainStore, AuditRow } from '../../gateway/store/audit.js';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const viaRoundTrip = (v: unknown) => {
  const json = JSON.stringify(v);
  return json === undefined ? undefined : canonical(JSON.parse(json));
};

class Point {
  constructor(readonly x: number, readonly y?: number) {}
}

const parsedProto = JSON.parse('{"__proto__":{"a":1},"b":2}') as unknown;
const awkward: unknown[] = [
  null,
  0,
  -0,
  1.5e300,
  1e21,
  NaN,
  -Infinity,
  true,
  'plain',
  'quote " backslash \\ newline \n tab \t nul \u0000 \u2028',
  'lone \ud800 surrogate and emoji 😀 and accents é',
  [],
  {},
  [undefined, () => 1, Symbol('s'), 1, null],
  { a: undefined, b: () => 1, c: Symbol('s'), d: 1 },
  { b: 1, a: { d: [{ f: 2, e: 1 }], c: 3 }, '': 'empty key' },
  { 10: 'ten', 9: 'nine', a: 'a', B: 'B', é: 'accent', _: 'underscore', '~': 'tilde' },
  { when: new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6)), at: [new Date(0)] },
  { custom: { toJSON: () => ({ z: 1, y: [2, undefined] }) }, none: { toJSON: () => undefined } },
  { point: new Point(1), boxed: [new String('s'), new Number(3), new Boolean(false)] },
  { map: new Map([[1, 2]]), set: new Set([1]), typed: new Uint8Array([1, 2]) },
  Object.assign(Object.create(null) as object, { z: 1, a: 2 }),
  parsedProto,
  { deep: { deeper: { deepest: [[[{ y: 1, x: 2 }]]] } } },
  undefined,
  () => 1,
];

describe('canonical JSON of an audit record', () => {
  it('is what the JSON round trip then canonical() gave, for every awkward input', () => {
    for (const value of awkward) expect(canonicalJson(value), String(JSON.stringify(value))).toBe(viaRoundTrip(value));
  });

  it('parses back to itself (so the stored text is exactly what is hashed)', () => {
    for (const value of awkward) {
      const text = canonicalJson(value);
      if (text !== undefined) expect(canonical(JSON.parse(text))).toBe(text);
    }
  });

  it('throws where storing would (a BigInt, a cycle)', () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(() => canonicalJson({ n: 1n })).toThrow();
    expect(() => canonicalJson(cycle)).toThrow();
  });

  it('hashes a record as it was hashed before (round trip, then canonical)', () => {
    const record = { kind: 'decision', action: 'x', seq: 3, at: '2026-01-01T00:00:00.000Z', prev: '0'.repeat(64), when: new Date(5), gone: undefined, list: [undefined] };
    expect(recordHash(record)).toBe(sha256(canonical(JSON.parse(JSON.stringify(record)))));
  });
});

class Memory implements Partial<AuditChainStore> {
  readonly prefix = 'memory';
  stored: string | null = null;
  list: string[] = [];
  async head() {
    return this.stored;
  }
  async append(expectedHead: string, _length: number, newHead: string, rows: readonly AuditRow[]): Promise<AppendOutcome> {
    if ((this.stored ?? '') !== expectedHead) return 'moved';
    this.list.push(...rows.map((r) => r.json));
    this.stored = newHead;
    return 'ok';
  }
}

describe('audit rows as stored', () => {
  it('are the hashed canonical text plus hash and signature, and verify as before', async () => {
    const store = new Memory();
    const log = new AuditLog(store as unknown as AuditChainStore, { auditKey: parseAuditSigningKey(generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string) });
    const written = await log.appendAll([
      { kind: 'collection', action: 'dossier.received', dossier: 'dos_1', source: 'src', index: { reference: 'r', subjects: ['s1', 's2'] } },
      { kind: 'erasure', action: 'dossier.sealed_content_erased', dossier: 'dos_1', reason: 'test' },
    ] as never);
    expect(store.list).toHaveLength(2);
    const parsed = store.list.map((json) => JSON.parse(json) as AuditRecord);
    for (const [i, json] of store.list.entries()) {
      const { hash, sig, ...body } = parsed[i]!;
      const hashed = canonical(body);
      expect(json.startsWith(hashed.slice(0, -1))).toBe(true);
      expect(sha256(hashed)).toBe(hash);
      expect(recordHash(parsed[i]!)).toBe(hash);
      expect(JSON.parse(JSON.stringify(written[i]))).toEqual(parsed[i]);
      expect(sig === undefined).toBe(i === 0); // one signature per batch, on its last record
    }
    expect(verifyChain(parsed)).toBeUndefined();
  });

  it('a trail written the old way (round trip, JSON.stringify of the record) still verifies', () => {
    const records: AuditRecord[] = [];
    let prev = '0'.repeat(64);
    for (let seq = 1; seq <= 3; seq++) {
      const body = JSON.parse(JSON.stringify({ kind: 'decision', action: 'old', dossier: `d${seq}`, seq, at: '2026-01-01T00:00:00.000Z', prev })) as Record<string, unknown>;
      const hash = sha256(canonical(body));
      records.push(JSON.parse(JSON.stringify({ ...body, hash })) as AuditRecord);
      prev = hash;
    }
    expect(verifyChain(records)).toBeUndefined();
  });
});
