/**
 * The audit log on a real Redis: concurrent writers from separate connections keep one chain with
 * signed checkpoints and an anchor outside Redis; a log that no longer matches its head, or that cannot
 * be written, refuses every append; the search indexes answer by subject, reference, partner and time.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anchorName, gatewaySigner } from '../../gateway/audit/checkpoint.js';
import { AuditLog, type AuditRecord } from '../../gateway/audit/log.js';
import { RedisAuditChain } from '../../gateway/store/audit.js';
import { AuditQuery } from '../../gateway/audit/query.js';
import { ChainVerifier } from '../../gateway/audit/verify.js';
import { loadOrCreateGatewayKey, type GatewayKey } from '../../gateway/crypto/openpgp.js';
import { Keys } from '../../gateway/store/redis.js';
import { deleteKeys, REDIS_URL } from '../helpers/gateway.js';

let a: Redis;
let b: Redis;
let dir: string;
let key: GatewayKey;
const prefixes: string[] = [];
const indexKey = randomBytes(32);

beforeAll(async () => {
  a = new Redis(REDIS_URL);
  b = new Redis(REDIS_URL);
  dir = await mkdtemp(path.join(os.tmpdir(), 'cordon-audit-'));
  key = await loadOrCreateGatewayKey(dir);
});
afterAll(async () => {
  for (const p of prefixes) await deleteKeys(a, p);
  await a.quit();
  await b.quit();
  await rm(dir, { recursive: true, force: true });
});

function fresh(): Keys {
  const prefix = `cordon-test-audit-${randomBytes(4).toString('hex')}`;
  prefixes.push(prefix);
  return new Keys(prefix);
}

async function verifyLive(redis: Redis, log: AuditLog) {
  const v = new ChainVerifier({ gatewayKey: key.publicArmored, head: await log.head() });
  const rows = await log.store.range(0, -1);
  for (let i = 0; i < rows.length; i++) await v.push(rows[i]!, i + 1);
  return v.finish();
}

describe('the audit log on Redis', () => {
  it('two writers on separate connections keep one chain, checkpointed and anchored', async () => {
    const keys = fresh();
    const opts = { indexKey, signer: gatewaySigner(key), checkpointEvery: 25, stateDir: dir };
    const logA = new AuditLog(new RedisAuditChain(a, keys), opts);
    const logB = new AuditLog(new RedisAuditChain(b, keys), opts);
    await Promise.all(
      Array.from({ length: 60 }, (_, i) => [
        logA.append({ kind: 'consultation', action: 'packet.retrieved', packet: `pkt_a${i}` }),
        logB.append({ kind: 'consultation', action: 'packet.retrieved', packet: `pkt_b${i}` }),
      ]).flat(),
    );
    const records = (await logA.read()) as AuditRecord[];
    const plain = records.filter((r) => r.kind !== 'checkpoint');
    expect(plain).toHaveLength(120);
    expect(new Set(records.map((r) => r.seq)).size).toBe(records.length);
    const report = await verifyLive(a, logA);
    expect(report.failure, JSON.stringify(report.failure)).toBeUndefined();
    expect(report.ok).toBe(true);
    // Concurrent writers can slip records in while a checkpoint is signed, so fewer than 120 / 25 land.
    expect(report.checkpoints).toBeGreaterThanOrEqual(1);
    // No stretch between checkpoints is much longer than the interval.
    let run = 0;
    for (const r of records) {
      run = r.kind === 'checkpoint' ? 0 : run + 1;
      expect(run).toBeLessThanOrEqual(4 * 25 + 50); // what the verifier tolerates: a checkpoint lands some records after what it covers
    }
    // The anchor file is written just after its checkpoint record, off the append path: poll briefly.
    const lastCheckpoint = records.filter((r) => r.kind === 'checkpoint').at(-1)!;
    let anchor: Record<string, unknown> = {};
    for (let i = 0; i < 40 && anchor.seq !== lastCheckpoint.seq; i++) {
      anchor = JSON.parse(await readFile(path.join(dir, anchorName(keys.prefix)), 'utf8').catch(() => '{}')) as Record<string, unknown>;
      if (anchor.seq !== lastCheckpoint.seq) await new Promise((r) => setTimeout(r, 50));
    }
    expect(anchor).toMatchObject({ prefix: keys.prefix, seq: lastCheckpoint.seq, hash: lastCheckpoint.hash });
  });

  it('appends made while a write is in flight go in one round trip, each with its own record, searchable', async () => {
    const keys = fresh();
    const log = new AuditLog(new RedisAuditChain(a, keys), { indexKey });
    let scripts = 0;
    let records!: AuditRecord[];
    const original = a.evalsha.bind(a);
    a.evalsha = ((...args: Parameters<Redis['evalsha']>) => {
      scripts++;
      return original(...args);
    }) as Redis['evalsha'];
    try {
      records = await log.appendAll(
        Array.from({ length: 150 }, (_, i) => ({ kind: 'disclosure' as const, action: 'packet.created', packet: `pkt_${i}`, index: log.terms('west-midlands', 'REF-G', [`S${i % 3}`]) })),
      );
      expect(records.map((r) => r.packet)).toEqual(Array.from({ length: 150 }, (_, i) => `pkt_${i}`));
      expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 150 }, (_, i) => i + 1));
      // 150 records in batches of at most 64: a handful of script calls (the first may load the script), not 150.
      expect(scripts).toBeLessThanOrEqual(4);
    } finally {
      a.evalsha = original as Redis['evalsha'];
    }
    const stored = await log.read();
    expect(stored).toEqual(records); // each caller got exactly the record that was stored
    expect(stored.every((r, i) => r.seq === i + 1)).toBe(true);
    expect((await verifyLive(a, log)).ok).toBe(true);
    const query = new AuditQuery(log, indexKey, () => ['west-midlands']);
    expect((await query.find({ subject: 'S1', source: 'west-midlands', limit: 100 })).records).toHaveLength(50);
  });

  it('a batch that cannot be written fails every append in it and writes nothing', async () => {
    const keys = fresh();
    const log = new AuditLog(new RedisAuditChain(a, keys));
    await a.set(keys.auditLog(), 'not a list');
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => log.append({ kind: 'collection', action: 'dossier.received', dossier: `dos_${i}` })));
    expect(results.every((r) => r.status === 'rejected' && (r.reason as { code?: string }).code === 'audit_unavailable')).toBe(true);
    expect(await a.exists(keys.auditHead())).toBe(0);
    expect(await a.get(keys.auditLog())).toBe('not a list');
  });

  it('a log that no longer matches its head refuses every append (fail closed), and writes nothing', async () => {
    const keys = fresh();
    const log = new AuditLog(new RedisAuditChain(a, keys));
    for (let i = 0; i < 3; i++) await log.append({ kind: 'collection', action: 'dossier.received', dossier: `dos_${i}` });
    await a.rpop(keys.auditLog()); // someone removed the newest record
    await expect(log.append({ kind: 'collection', action: 'dossier.received' })).rejects.toMatchObject({ code: 'audit_unavailable', message: expect.stringMatching(/does not match its chain head/) });
    expect(await a.llen(keys.auditLog())).toBe(2);
  });

  it('an audit list of the wrong type refuses every append', async () => {
    const keys = fresh();
    const log = new AuditLog(new RedisAuditChain(a, keys));
    await a.set(keys.auditLog(), 'not a list');
    await expect(log.append({ kind: 'collection', action: 'dossier.received' })).rejects.toMatchObject({ code: 'audit_unavailable' });
    expect(await a.exists(keys.auditHead())).toBe(0);
  });

  it('finds records by subject, reference, partner, kind and time, a page at a time', async () => {
    const keys = fresh();
    let clock = Date.parse('2026-03-01T00:00:00Z');
    const log = new AuditLog(new RedisAuditChain(a, keys), { indexKey, now: () => new Date((clock += 60_000)) });
    const query = new AuditQuery(log, indexKey, () => ['west-midlands', 'merseyside']);
    await log.append({ kind: 'collection', action: 'dossier.received', dossier: 'dos_1', index: log.terms('west-midlands', 'REF-1', ['S1', 'S2']) });
    for (const [partner, subjects] of [['dvla', ['S1']], ['hmrc', ['S2']], ['council-housing', ['S1', 'S2']]] as const) {
      await log.append({ kind: 'disclosure', action: 'packet.created', dossier: 'dos_1', recipient: partner, index: log.terms('west-midlands', 'REF-1', [...subjects]) });
    }
    await log.append({ kind: 'collection', action: 'dossier.received', dossier: 'dos_2', index: log.terms('merseyside', 'REF-2', ['S1']) });
    await log.append({ kind: 'disclosure', action: 'packet.created', dossier: 'dos_2', recipient: 'dvla', index: log.terms('merseyside', 'REF-2', ['S1']) });

    const who = await query.find({ reference: 'REF-1', subject: 'S1', kind: 'disclosure', limit: 100 });
    expect(who.records.map((r) => r.recipient)).toEqual(['dvla', 'council-housing']);
    expect(who.next).toBeNull();
    // Without a source, S1 matches both forces' S1; with one, only that force's.
    expect((await query.find({ subject: 'S1', kind: 'disclosure', limit: 100 })).records).toHaveLength(3);
    expect((await query.find({ subject: 'S1', source: 'merseyside', limit: 100 })).records.map((r) => r.dossier)).toEqual(['dos_2', 'dos_2']);
    expect((await query.find({ partner: 'dvla', limit: 100 })).records.map((r) => r.dossier)).toEqual(['dos_1', 'dos_2']);

    const page1 = await query.find({ limit: 2 });
    expect(page1.records.map((r) => r.seq)).toEqual([1, 2]);
    expect(page1.next).toBe(2);
    const page2 = await query.find({ limit: 2, after: page1.next! });
    expect(page2.records.map((r) => r.seq)).toEqual([3, 4]);
    const filtered1 = await query.find({ reference: 'REF-1', limit: 1 });
    const filtered2 = await query.find({ reference: 'REF-1', limit: 10, after: filtered1.next! });
    expect([...filtered1.records, ...filtered2.records].map((r) => r.seq)).toEqual([1, 2, 3, 4]);

    const t2 = new Date(Date.parse('2026-03-01T00:00:00Z') + 2 * 60_000);
    const t4 = new Date(Date.parse('2026-03-01T00:00:00Z') + 4 * 60_000);
    expect((await query.find({ since: t2, until: t4, limit: 100 })).records.map((r) => r.seq)).toEqual([2, 3, 4]);
    expect((await query.find({ since: new Date('2030-01-01'), limit: 100 })).records).toEqual([]);
    expect((await query.find({ reference: 'NOPE', limit: 100 })).records).toEqual([]);

    // Nothing searchable is stored in plaintext.
    const all = JSON.stringify(await a.lrange(keys.auditLog(), 0, -1)) + (await a.keys(`${keys.prefix}:*`)).join(' ');
    expect(all).not.toMatch(/REF-1|REF-2|"S1"|"S2"/);

    // A record edited in place is flagged in the answer.
    const raw = await a.lindex(keys.auditLog(), 1);
    await a.lset(keys.auditLog(), 1, raw!.replace('dvla', 'hmrc'));
    expect((await query.find({ partner: 'dvla', limit: 100 })).damaged).toEqual([2]);
  });
});
