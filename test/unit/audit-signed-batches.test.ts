/**
 * Signed group commits, without Redis (an in-memory chain store): one Ed25519 signature per batch, on
 * its last record and in the head; a head this process did not write must be signed with the audit
 * key, not below what it saw, and not vanished; a checkpoint first checks the tail from its own last
 * head; and the verifier needs every record from the first signed one on vouched for by a signature,
 * learning the audit key from the OpenPGP-signed checkpoints when it is not given.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewaySigner } from '../../gateway/audit/checkpoint.js';
import { AuditLog, recordHash, type AuditEvent, type AuditRecord } from '../../gateway/audit/log.js';
import { ChainVerifier } from '../../gateway/audit/verify.js';
import { loadOrCreateAuditKey, type AuditSigningKey } from '../../gateway/crypto/audit-key.js';
import { loadOrCreateGatewayKey, type GatewayKey } from '../../gateway/crypto/openpgp.js';
import type { AppendOutcome, AuditChainStore, AuditRow } from '../../gateway/store/audit.js';

class MemoryChain implements AuditChainStore {
  readonly prefix = 'memory';
  stored: string | null = null;
  list: string[] = [];
  async head() {
    return this.stored;
  }
  async append(expectedHead: string, expectedLength: number, newHead: string, rows: readonly AuditRow[]): Promise<AppendOutcome> {
    if ((this.stored ?? '') !== expectedHead) return 'moved';
    if (this.list.length !== expectedLength) return 'mismatch';
    this.list.push(...rows.map((r) => r.json));
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
  async termCount() {
    return 0;
  }
  async termSeqs() {
    return [];
  }
  async termHas(_t: unknown, seqs: readonly number[]) {
    return seqs.map(() => false);
  }
  records(): AuditRecord[] {
    return this.list.map((r) => JSON.parse(r) as AuditRecord);
  }
}

const queried: AuditEvent = { kind: 'consultation', action: 'audit.queried', actor: 'governance' };
let dir: string;
let gatewayKey: GatewayKey;
let auditKey: AuditSigningKey;
let otherAuditKey: AuditSigningKey;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cordon-audit-batches-'));
  gatewayKey = await loadOrCreateGatewayKey(path.join(dir, 'a'));
  auditKey = await loadOrCreateAuditKey(path.join(dir, 'a'));
  otherAuditKey = await loadOrCreateAuditKey(path.join(dir, 'b'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function logOn(store: MemoryChain, key: AuditSigningKey = auditKey): AuditLog {
  return new AuditLog(store, { signer: gatewaySigner(gatewayKey), auditKey: key });
}

async function verify(records: AuditRecord[], opts: ConstructorParameters<typeof ChainVerifier>[0] = {}) {
  const v = new ChainVerifier({ gatewayKey: gatewayKey.publicArmored, ...opts });
  for (let i = 0; i < records.length; i++) await v.push(JSON.stringify(records[i]), i + 1);
  return v.finish();
}

describe('signed group commits', () => {
  it('sign each batch once, on its last record and in the head, and verify with the key or from a checkpoint', async () => {
    const store = new MemoryChain();
    const log = logOn(store);
    await log.append(queried);
    await Promise.all([log.append(queried), log.append(queried), log.append(queried)]);
    const records = store.records();
    expect(records.map((r) => !!r.sig)).toEqual([true, false, false, true]);
    expect(store.stored!.endsWith(`:${records[3]!.sig}`)).toBe(true);
    expect(recordHash(records[3]!)).toBe(records[3]!.hash);
    expect(await verify(records, { auditKey: auditKey.spki })).toMatchObject({ ok: true, records: 4 });
    // Without the key: learnt from the checkpoint, whose OpenPGP signature vouches for it.
    await log.checkpoint('on demand');
    await log.append(queried);
    expect(await verify(store.records())).toMatchObject({ ok: true, checkpoints: 1 });
    // An export that names no key cannot have its batch signatures checked.
    expect((await verify(records)).failure?.problem).toMatch(/cannot be checked/);
  });

  it('a tail rewritten under the head, or stripped of its signatures, is named from its first unvouched record', async () => {
    const store = new MemoryChain();
    const log = logOn(store);
    await log.checkpoint('start-up');
    for (let i = 0; i < 4; i++) await log.append(queried);
    const records = store.records();
    // Delete seq 3 and recompute the chain after it.
    const forged = records.slice(0, 2);
    for (const r of records.slice(3)) {
      const { hash: _h, ...body } = { ...r, seq: forged.at(-1)!.seq + 1, prev: forged.at(-1)!.hash };
      forged.push({ ...body, hash: recordHash(body) } as AuditRecord);
    }
    const rewritten = await verify(forged);
    expect(rewritten.failure).toMatchObject({ seq: 3, problem: expect.stringMatching(/^record 3 is not vouched for by the gateway/) });
    const stripped = await verify(forged.map(({ sig, ...r }) => (r.seq < 3 ? { ...r, sig } : r) as AuditRecord));
    expect(stripped.failure).toMatchObject({ seq: 3, problem: expect.stringMatching(/records 3–4 carry no gateway signature/) });
    // Checked against another key (no checkpoint in this part of the trail names the right one).
    expect((await verify(records.slice(1), { auditKey: otherAuditKey.spki })).failure).toMatchObject({ seq: 2 });
    expect(await verify(records.slice(1), { auditKey: auditKey.spki })).toMatchObject({ ok: true });
  });

  it('a head another process of the same gateway wrote is taken; one forged, cut back or vanished is refused', async () => {
    const store = new MemoryChain();
    const a = logOn(store);
    const b = logOn(store);
    await a.append(queried);
    await b.append(queried);
    await a.append(queried);
    expect((await a.health()).ready).toBe(true);

    // A head signed with another key (a replaced trail).
    const saved = { stored: store.stored, list: [...store.list] };
    const intruder = logOn(new MemoryChain(), otherAuditKey);
    await intruder.append(queried);
    const forged = (intruder.store as MemoryChain).records()[0]!;
    const { hash: _h, sig: _s, ...body } = { ...forged, seq: 4, prev: store.records()[2]!.hash };
    const hash = recordHash(body);
    store.list.push(JSON.stringify({ ...body, hash }));
    store.stored = `4:${hash}:0:0:${otherAuditKey.sign(`cordon.audit.batch/v1:4:${hash}`)}`;
    await expect(b.append(queried)).rejects.toMatchObject({ code: 'audit_unavailable', message: expect.stringMatching(/not signed by this gateway's audit key/) });
    expect(await b.health()).toMatchObject({ ready: false });
    // An unsigned head, once the trail is signed.
    store.stored = `4:${hash}:0:0`;
    await expect(b.append(queried)).rejects.toMatchObject({ message: expect.stringMatching(/carries no gateway signature/) });

    // Cut back to an older genuine head.
    store.list = saved.list.slice(0, 2);
    const second = store.records()[1]!;
    store.stored = `2:${second.hash}:0:0:${second.sig}`;
    await expect(a.append(queried)).rejects.toMatchObject({ message: expect.stringMatching(/cut back to seq 2/) });

    // Vanished.
    store.list = [];
    store.stored = null;
    await expect(a.append(queried)).rejects.toMatchObject({ message: expect.stringMatching(/vanished/) });
    expect(await a.health()).toMatchObject({ ready: false, detail: expect.stringMatching(/vanished/) });
    expect(store.list).toEqual([]);

    // Put back as it was: the trail is the gateway's again.
    store.list = saved.list;
    store.stored = saved.stored;
    await a.append(queried);
    expect((await a.health()).ready).toBe(true);
  });

  it('a checkpoint checks the tail from its own last head and signs nothing that does not chain to it', async () => {
    const store = new MemoryChain();
    const log = logOn(store);
    await log.append(queried);
    await log.append(queried);
    // Another process appends; then an intruder edits that process's record, leaving the signed head.
    await logOn(store).append(queried);
    const third = JSON.parse(store.list[2]!) as AuditRecord;
    store.list[1] = JSON.stringify({ ...(JSON.parse(store.list[1]!) as AuditRecord), actor: 'someone-else' });
    expect(third.seq).toBe(3);
    await expect(log.checkpoint('on demand')).rejects.toMatchObject({ code: 'audit_unavailable', message: expect.stringMatching(/record 2, which this gateway wrote, was replaced/) });
    await expect(log.append(queried)).rejects.toMatchObject({ code: 'audit_unavailable' });
    expect((await log.health()).ready).toBe(false);
    expect(store.records().some((r) => r.kind === 'checkpoint')).toBe(false);
  });
});
