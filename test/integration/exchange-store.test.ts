/**
 * The exchange's records (store/exchange.ts) against a real Redis: deliveries replaced only from the
 * states allowed, envelopes whose sealed body is written once, replay records claimed by the first
 * writer, and every record of a dossier living exactly as long as its status record.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newDossierId } from '../../gateway/pipeline/accept.js';
import { ExchangeStore } from '../../gateway/store/exchange.js';
import { Keys } from '../../gateway/store/redis.js';
import { deleteKeys, REDIS_URL } from '../helpers/gateway.js';

const prefix = `cordon-test-xstore-${randomBytes(4).toString('hex')}`;
const keys = new Keys(prefix);
let redis: Redis;
let records: ExchangeStore;

beforeAll(() => {
  redis = new Redis(REDIS_URL);
  records = new ExchangeStore(redis, keys);
});
afterAll(async () => {
  await deleteKeys(redis, prefix);
  await redis.quit();
});

/** A dossier status record expiring in `seconds`. */
async function dossier(seconds = 600): Promise<string> {
  const id = newDossierId();
  await redis.hset(keys.dossier(id), { id });
  await redis.expire(keys.dossier(id), seconds);
  return id;
}

describe('ExchangeStore', () => {
  it('replaces a delivery only from the states given, and keeps it with the status record', async () => {
    const id = await dossier();
    const at = new Date().toISOString();
    await records.setDelivery(id, 'warwickshire', { state: 'queued', envelopeId: 'env_x', updatedAt: at });
    expect(await records.replaceDelivery(id, 'warwickshire', { state: 'sent', envelopeId: 'env_x', updatedAt: at }, ['failed'])).toBe(false);
    expect(await records.replaceDelivery(id, 'warwickshire', { state: 'sent', envelopeId: 'env_x', updatedAt: at }, ['queued'])).toBe(true);
    expect(await records.replaceDelivery(id, 'staffordshire', { state: 'sent', updatedAt: at }, ['queued'])).toBe(false);
    expect(await records.deliveries(id)).toEqual({ warwickshire: { state: 'sent', envelopeId: 'env_x', updatedAt: at } });
    const statusExpiry = await redis.pexpiretime(keys.dossier(id));
    expect(await redis.pexpiretime(`${prefix}:exchange:out:${id}`)).toBe(statusExpiry);
    expect(await redis.smembers(keys.dossierCompanions(id))).toEqual([`${prefix}:exchange:out:${id}`]);
  });

  it('writes an envelope’s sealed body and refs once, drops the body, and marks a recall once', async () => {
    const id = await dossier();
    await records.putEnvelope('env_a', { dossier: id, peer: 'warwickshire', source: 'west-midlands', sealed: 's1', refs: 'r1' });
    await records.putEnvelope('env_a', { dossier: id, peer: 'warwickshire', source: 'west-midlands', sealed: 's2', refs: 'r2' });
    expect(await records.envelope('env_a')).toEqual({ dossier: id, peer: 'warwickshire', source: 'west-midlands', sealed: 's1', refs: 'r1' });
    await records.dropSealedBody('env_a');
    expect((await records.envelope('env_a')).sealed).toBeUndefined();
    await records.markRecalled(id, 'env_a', { reason: 'withdrawn', issuedAt: 'a' });
    await records.markRecalled(id, 'env_a', { reason: 'corrected', issuedAt: 'b' });
    expect(await records.recallMark('env_a')).toEqual({ reason: 'withdrawn', issuedAt: 'a' });
  });

  it('claims a replay record for the first writer only, and records an inbound dossier’s origin', async () => {
    const id = await dossier();
    expect(await records.claimSeen('warwickshire', 'env_b', id)).toBe(true);
    expect(await records.claimSeen('warwickshire', 'env_b', 'dos_other')).toBe(false);
    expect(await records.seen('warwickshire', 'env_b')).toBe(id);
    await records.recordOrigin(id, 'warwickshire', 'env_b');
    expect(await records.origin(id)).toEqual({ peer: 'warwickshire', envelopeId: 'env_b' });
    expect(await records.hasOrigin(id)).toBe(true);
    expect(await records.inboundDossier('warwickshire', 'env_b')).toBe(id);
    await records.discardInbound(id, 'warwickshire', 'env_b');
    expect(await records.hasOrigin(id)).toBe(false);
    expect(await records.seen('warwickshire', 'env_b')).toBeUndefined();
    expect(await records.inboundDossier('warwickshire', 'env_b')).toBeUndefined();
  });

  it('writes nothing for a dossier whose status record is gone', async () => {
    const id = newDossierId();
    await records.setDelivery(id, 'warwickshire', { state: 'blocked', updatedAt: new Date().toISOString() });
    expect(await records.deliveries(id)).toEqual({});
  });
});
