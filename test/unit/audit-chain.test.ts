/**
 * The audit chain and its verifier, without Redis: every kind of tampering is found and the first bad
 * record named; checkpoints are signed with a real gateway key and a forged or missing one is caught.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewaySigner, statementText, type CheckpointStatement } from '../../gateway/audit/checkpoint.js';
import { AuditIndexer } from '../../gateway/audit/index-terms.js';
import { termsOf } from '../../gateway/audit/keys.js';
import { canonical, GENESIS, parseHead, recordHash, verifyChain, type AuditRecord } from '../../gateway/audit/log.js';
import { parseAuditFilter } from '../../gateway/audit/query.js';
import { ChainVerifier } from '../../gateway/audit/verify.js';
import { loadOrCreateGatewayKey, type GatewayKey } from '../../gateway/crypto/openpgp.js';
import { GatewayError } from '../../gateway/errors/index.js';

let dir: string;
let key: GatewayKey;
let otherKey: GatewayKey;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cordon-audit-unit-'));
  key = await loadOrCreateGatewayKey(path.join(dir, 'a'));
  otherKey = await loadOrCreateGatewayKey(path.join(dir, 'b'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function link(out: AuditRecord[], body: Record<string, unknown>): AuditRecord {
  const prev = out.at(-1);
  const b = { ...body, seq: (prev?.seq ?? 0) + 1, at: new Date(Date.UTC(2026, 0, 1, 0, 0, out.length)).toISOString(), prev: prev?.hash ?? GENESIS } as Omit<AuditRecord, 'hash'>;
  const rec = { ...b, hash: recordHash(b) } as AuditRecord;
  out.push(rec);
  return rec;
}

function chain(n: number): AuditRecord[] {
  const out: AuditRecord[] = [];
  for (let i = 1; i <= n; i++) link(out, { kind: 'collection', action: 'dossier.received', dossier: `dos_${i}` });
  return out;
}

async function checkpoint(out: AuditRecord[], signer: GatewayKey = key, every = 100): Promise<AuditRecord> {
  const prev = out.at(-1);
  const cp: CheckpointStatement = { seq: prev?.seq ?? 0, hash: prev?.hash ?? GENESIS, signedAt: '2026-01-01T00:00:00.000Z', signer: key.fingerprint, every };
  const signature = await gatewaySigner(signer).sign(statementText(cp));
  return link(out, { kind: 'checkpoint', action: 'audit.checkpoint', reason: 'test', checkpoint: cp, signature });
}

async function verify(records: AuditRecord[], opts: ConstructorParameters<typeof ChainVerifier>[0] = {}) {
  const v = new ChainVerifier({ gatewayKey: key.publicArmored, ...opts });
  for (let i = 0; i < records.length; i++) await v.push(JSON.stringify(records[i]), i + 1);
  return v.finish();
}

function resign(records: AuditRecord[], from: number): AuditRecord[] {
  // An attacker who recomputes every hash after an edit (no secret is needed for that).
  const out = records.slice(0, from);
  for (const r of records.slice(from)) {
    const { hash: _h, seq: _s, at: _a, prev: _p, ...body } = r;
    link(out, body);
  }
  return out;
}

describe('audit hash chain', () => {
  it('canonical JSON ignores key order', () => {
    expect(canonical({ b: 1, a: [{ d: 2, c: 3 }] })).toBe(canonical({ a: [{ c: 3, d: 2 }], b: 1 }));
  });

  it('an intact chain verifies', async () => {
    expect(verifyChain(chain(5))).toBeUndefined();
    const records = chain(5);
    await checkpoint(records);
    const report = await verify(records);
    expect(report).toMatchObject({ ok: true, records: 6, firstSeq: 1, lastSeq: 6, checkpoints: 1, lastCheckpointSeq: 6, signer: key.fingerprint });
  });

  it('an edit, a deletion, a reordering and an insertion are each found and the record named', async () => {
    const edited = chain(5);
    edited[2] = { ...edited[2]!, dossier: 'dos_other' };
    expect(verifyChain(edited)).toMatchObject({ index: 2, seq: 3 });
    expect((await verify(edited)).failure).toMatchObject({ seq: 3, line: 3, problem: expect.stringMatching(/does not match its hash/) });

    const deleted = chain(5);
    deleted.splice(1, 1);
    expect(verifyChain(deleted)).toMatchObject({ index: 1 });
    expect((await verify(deleted)).failure).toMatchObject({ seq: 3, line: 2, problem: expect.stringMatching(/records 2–2 are missing/) });

    const reordered = chain(5);
    [reordered[3], reordered[4]] = [reordered[4]!, reordered[3]!];
    expect(verifyChain(reordered)).toMatchObject({ index: 3 });
    expect((await verify(reordered)).failure).toMatchObject({ seq: 5, line: 4, problem: expect.stringMatching(/expected seq 4/) });

    const inserted = chain(5);
    const fake = { ...inserted[2]!, dossier: 'dos_fake' };
    inserted.splice(3, 0, { ...fake, hash: recordHash({ ...fake, hash: undefined } as never) });
    expect((await verify(inserted)).ok).toBe(false);
  });

  it('a log cut short is found against the head; a log whose times go backwards is refused', async () => {
    const records = chain(6);
    const head = { seq: 6, hash: records[5]!.hash, atMs: 0, checkpointSeq: 0 };
    expect((await verify(records.slice(0, 4), { head })).failure).toMatchObject({ seq: 5, problem: expect.stringMatching(/records 5–6 are missing \(truncated\)/) });
    expect((await verify(records, { head })).ok).toBe(true);

    const backwards = chain(2);
    link(backwards, { kind: 'erasure', action: 'x' });
    const last = backwards[2]!;
    const { hash: _h, ...body } = { ...last, at: '2025-01-01T00:00:00.000Z' };
    backwards[2] = { ...body, hash: recordHash(body) } as AuditRecord;
    expect((await verify(backwards)).failure).toMatchObject({ seq: 3, problem: expect.stringMatching(/timed before/) });
  });

  it('a rewritten log (every hash recomputed) fails on its checkpoints', async () => {
    const records = chain(3);
    await checkpoint(records);
    link(records, { kind: 'collection', action: 'dossier.received', dossier: 'dos_after' });
    records[1] = { ...records[1]!, dossier: 'dos_rewritten' };
    const rewritten = resign(records, 1);
    expect(verifyChain(rewritten)).toBeUndefined(); // the bare chain cannot tell
    expect((await verify(rewritten)).failure).toMatchObject({ seq: 4, problem: expect.stringMatching(/covers seq 3, whose hash differs/) });
    // Patching the checkpoint's statement to the new hash as well: the signature no longer matches it.
    const patched = rewritten.slice(0, 3);
    const { hash: _h, seq: _s, at: _a, prev: _p, ...cpBody } = rewritten[3]!;
    link(patched, { ...cpBody, checkpoint: { ...(cpBody.checkpoint as CheckpointStatement), hash: patched[2]!.hash } });
    expect((await verify(patched)).failure).toMatchObject({ seq: 4, problem: expect.stringMatching(/signature does not verify/) });
  });

  it('a checkpoint signed by another key, or checked without any key, fails', async () => {
    const forged = chain(2);
    await checkpoint(forged, otherKey);
    expect((await verify(forged)).failure).toMatchObject({ seq: 3, problem: expect.stringMatching(/checkpoint/) });
    const good = chain(2);
    await checkpoint(good);
    const v = new ChainVerifier({});
    for (let i = 0; i < good.length; i++) await v.push(good[i], i + 1);
    expect(v.finish().failure?.problem).toMatch(/without the gateway key/);
  });

  it('removing the checkpoints leaves an unsigned stretch longer than the gateway ever leaves', async () => {
    const records = chain(3);
    await checkpoint(records, key, 5);
    for (let i = 0; i < 80; i++) link(records, { kind: 'consultation', action: 'packet.retrieved' });
    const report = await verify(records); // every 5 → at most 4 × 5 + 50 = 70 unsigned
    expect(report.ok).toBe(false);
    expect(report.failure?.problem).toMatch(/that no checkpoint covers, more than the gateway leaves/);
    expect((await verify(records, { maxUnsigned: 100 })).ok).toBe(true);
  });

  it('a partial export starting mid-chain verifies with a note', async () => {
    const records = chain(8);
    const report = await verify(records.slice(3));
    expect(report.ok).toBe(true);
    expect(report.warnings.join()).toMatch(/starts at seq 4/);
  });

  it('the state-directory anchor catches a log cut back past its last checkpoint', async () => {
    const records = chain(3);
    const cp = await checkpoint(records);
    const anchor = { prefix: 'cordon', seq: cp.seq, hash: cp.hash, at: cp.at };
    const cut = records.slice(0, 2);
    const head = { seq: 2, hash: cut[1]!.hash, atMs: 0, checkpointSeq: 0 };
    expect((await verify(cut, { head, anchor, anchorIsEnd: true })).failure?.problem).toMatch(/anchors a checkpoint at seq 4.*truncated/);
    expect((await verify(cut, { anchor, anchorIsEnd: false })).warnings.join()).toMatch(/partial export, or a truncated one/);
  });

  it('reads old and new chain heads', () => {
    expect(parseHead(null)).toEqual({ seq: 0, hash: GENESIS, atMs: 0, checkpointSeq: 0 });
    expect(parseHead(`3:${'a'.repeat(64)}`)).toMatchObject({ seq: 3, atMs: 0, checkpointSeq: 0 });
    expect(parseHead(`3:${'a'.repeat(64)}:17:2`)).toEqual({ seq: 3, hash: 'a'.repeat(64), atMs: 17, checkpointSeq: 2 });
    expect(() => parseHead('junk')).toThrow(GatewayError);
  });
});

describe('audit search terms', () => {
  const indexer = new AuditIndexer(Buffer.alloc(32, 7));

  it('are keyed HMACs scoped by source, never the values', () => {
    const a = indexer.terms('west-midlands', 'WMP-OCG-2026-00412', ['S1', 'S2', 'S1']);
    expect(a.subjects).toHaveLength(2);
    expect(JSON.stringify(a)).not.toMatch(/WMP|S1|S2/);
    expect(indexer.subject('west-midlands', 'S1')).not.toBe(indexer.subject('merseyside', 'S1'));
    expect(new AuditIndexer(Buffer.alloc(32, 8)).subject('west-midlands', 'S1')).not.toBe(indexer.subject('west-midlands', 'S1'));
    const terms = termsOf({ kind: 'disclosure', recipient: 'dvla', dossier: 'dos_1', packet: 'pkt_a', index: a });
    expect(terms.map(([d]) => d).sort()).toEqual(['dossier', 'kind', 'packet', 'partner', 'ref', 'subject', 'subject']);
  });
});

describe('audit filters', () => {
  it('accepts every filter and bounds the page size', () => {
    const f = parseAuditFilter({ reference: 'WMP-OCG-2026-00412', subject: 'S1', source: 'west-midlands', partner: 'dvla', kind: 'disclosure', since: '2026-01-01', until: '2026-12-31T23:59:59Z', after: '10', limit: '500' });
    expect(f).toMatchObject({ reference: 'WMP-OCG-2026-00412', subject: 'S1', limit: 500, after: 10 });
    expect(parseAuditFilter({}).limit).toBe(100);
  });

  it('lists every bad filter', () => {
    try {
      parseAuditFilter({ limit: '501', since: 'yesterday', until: '2020-01-01', dossier: 'x', kind: 'gossip', colour: 'red', partner: ['a', 'b'] });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(GatewayError);
      expect((err as GatewayError).code).toBe('query_invalid');
      expect((err as GatewayError).details!.map((d) => d.path).sort()).toEqual(['colour', 'dossier', 'kind', 'limit', 'partner', 'since']);
    }
    expect(() => parseAuditFilter({ since: '2026-02-01', until: '2026-01-01' })).toThrow(/audit filters/);
  });
});
