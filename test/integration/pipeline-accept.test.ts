/**
 * The accept step against a real Redis: a dossier is stored sealed, audited, scheduled and queued
 * whole, or (a later step failing) not at all; an Idempotency-Key already used answers the first dossier.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog, type AuditRecord } from '../../gateway/audit/log.js';
import { unseal } from '../../gateway/crypto/seal.js';
import type { Dossier } from '../../gateway/dossier/types.js';
import { accept, newDossierId, newRecord, type AcceptDeps } from '../../gateway/pipeline/accept.js';
import { RedisAuditChain } from '../../gateway/store/audit.js';
import { DossierStore } from '../../gateway/store/dossiers.js';
import { Keys } from '../../gateway/store/redis.js';
import { deleteKeys, fixture, REDIS_URL } from '../helpers/gateway.js';
import { testRecordAuth } from '../helpers/records.js';

const prefix = `cordon-test-accept-${randomBytes(4).toString('hex')}`;
const keys = new Keys(prefix);
const sealKey = Buffer.alloc(32, 3);
const dossier = { ...(fixture('dossier-minimal.json') as unknown as Dossier), requests: { checks: ['vehicles', 'tenancies'] } } as Dossier;
// Two partners, each reached by one of the dossier's requested checks (policy/recipients.ts).
const set = {
  revision: 'rev1',
  gateway: { neverShare: [], alwaysFilter: {}, requestChecks: { vehicles: ['vehicle'], tenancies: ['tenancy'] } },
  partners: new Map([
    ['dvla', { partner: { checks: ['vehicle'] } }],
    ['council-housing', { partner: { checks: ['tenancy'] } }],
  ]) as unknown as Parameters<typeof newRecord>[3]['partners'],
};
let redis: Redis;

beforeAll(() => {
  redis = new Redis(REDIS_URL);
});
afterAll(async () => {
  await deleteKeys(redis, prefix);
  await redis.quit();
});

function deps(enqueue: (id: string) => Promise<void>, scheduled: string[] = []): AcceptDeps & { store: DossierStore } {
  return { store: new DossierStore(redis, keys, testRecordAuth()), audit: new AuditLog(new RedisAuditChain(redis, keys)), sealKey, retention: { schedule: async (member) => void scheduled.push(member) }, enqueue };
}

async function auditActions(): Promise<string[]> {
  return (await redis.lrange(keys.auditLog(), 0, -1)).map((r) => (JSON.parse(r) as AuditRecord).action);
}

function acceptance(id: string, extra: Partial<Parameters<typeof accept>[1]> = {}) {
  const { record } = newRecord(id, 'west-midlands', 'client-1', set, dossier);
  return { record, dossier, collection: { kind: 'collection' as const, action: 'dossier.received' as const, dossier: id }, failure: 'could not be queued', ...extra };
}

describe('accept', () => {
  it('stores the dossier sealed with one queued delivery per partner, audits, schedules and queues it', async () => {
    const queued: string[] = [];
    const scheduled: string[] = [];
    const d = deps(async (id) => void queued.push(id), scheduled);
    const id = newDossierId();
    expect(await accept(d, acceptance(id))).toEqual({});
    const record = await d.store.get(id);
    expect(record).toMatchObject({ id, source: 'west-midlands', state: 'accepted', revision: 'rev1', partners: ['council-housing', 'dvla'] });
    expect(JSON.parse(unseal(sealKey, (await d.store.getSealed(id))!, id).toString('utf8'))).toEqual(dossier);
    expect(Object.keys(await d.store.deliveries(id)).sort()).toEqual(['council-housing', 'dvla']);
    expect(queued).toEqual([id]);
    expect(scheduled).toHaveLength(1);
    expect(scheduled[0]).toContain(id);
    expect(await auditActions()).toContain('dossier.received');
  });

  it('undoes everything (its own records and the caller’s) when a step after storing fails', async () => {
    let undone = false;
    const d = deps(async () => {
      throw new Error('queue down');
    });
    const id = newDossierId();
    await expect(accept(d, acceptance(id, { undo: async () => void (undone = true) }))).rejects.toMatchObject({ code: 'store_unavailable', message: 'could not be queued' });
    expect(await d.store.get(id)).toBeUndefined();
    expect(await redis.exists(keys.deliveries(id))).toBe(0);
    expect(undone).toBe(true);
  });

  it('answers the first dossier for an Idempotency-Key already used, storing nothing', async () => {
    const d = deps(async () => undefined);
    const idem = { clientId: 'client-1', keyHash: 'k'.repeat(64), bodyHash: 'b'.repeat(64) };
    const first = newDossierId();
    await accept(d, acceptance(first, { idem }));
    const second = newDossierId();
    expect(await accept(d, acceptance(second, { idem }))).toEqual({ existing: { dossierId: first, bodyHash: idem.bodyHash } });
    expect(await d.store.get(second)).toBeUndefined();
  });
});
