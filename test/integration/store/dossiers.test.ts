/** DossierStore on a real Redis: records, idempotency, deliveries, settlement and recall marks. */
import { describe, expect, it } from 'vitest';
import { RedisMailbox } from '../../../gateway/store/mailbox.js';
import { DossierStore, IDEMPOTENCY_TTL_SECONDS, RECORD_TTL_SECONDS, type DossierRecord } from '../../../gateway/store/dossiers.js';
import { dossierId, useStoreFixture } from './fixture.js';

const f = useStoreFixture('dossiers');

function record(partners = ['dvla', 'hmrc']): DossierRecord {
  return { id: dossierId(), source: 'west-midlands', client: 'wm-rocu', receivedAt: '2026-12-04T10:00:00.000Z', state: 'accepted', revision: 'r1', partners };
}

describe('DossierStore', () => {
  it('stores a record with its sealed dossier and one queued delivery per partner, all expiring', async () => {
    const store = new DossierStore(f.redis, f.keys, f.auth);
    const r = record();
    expect(await store.create(r, 'sealed-bytes')).toEqual({});
    expect(await store.get(r.id)).toEqual(r);
    expect((await store.getSealed(r.id))?.toString('utf8')).toBe('sealed-bytes');
    const deliveries = await store.deliveries(r.id);
    expect(Object.keys(deliveries).sort()).toEqual(['dvla', 'hmrc']);
    expect(deliveries.dvla).toEqual({ state: 'queued', updatedAt: r.receivedAt });
    const ttl = await f.redis.ttl(f.keys.dossier(r.id));
    expect(ttl).toBeGreaterThan(RECORD_TTL_SECONDS - 60);
    expect(await f.redis.ttl(f.keys.deliveries(r.id))).toBeGreaterThan(RECORD_TTL_SECONDS - 60);
  });

  it('answers an unknown id with undefined and no deliveries', async () => {
    const store = new DossierStore(f.redis, f.keys, f.auth);
    expect(await store.get(dossierId())).toBeUndefined();
    expect(await store.getSealed(dossierId())).toBeUndefined();
    expect(await store.deliveries(dossierId())).toEqual({});
  });

  it('an idempotency key used again names the first dossier and its body hash; discard undoes a create', async () => {
    const store = new DossierStore(f.redis, f.keys, f.auth);
    const first = record();
    const idem = { clientId: 'wm-rocu', keyHash: 'k1', bodyHash: 'b1' };
    expect(await store.create(first, 's', idem)).toEqual({});
    expect(await f.redis.ttl(f.keys.idempotency('wm-rocu', 'k1'))).toBeGreaterThan(IDEMPOTENCY_TTL_SECONDS - 60);
    const second = record();
    expect(await store.create(second, 's', { ...idem, bodyHash: 'b2' })).toEqual({ existing: { dossierId: first.id, bodyHash: 'b1' } });
    expect(await store.get(second.id)).toBeUndefined();
    await store.discard(first.id, idem);
    expect(await store.get(first.id)).toBeUndefined();
    expect(await store.deliveries(first.id)).toEqual({});
    expect(await store.create(second, 's', { ...idem, bodyHash: 'b2' })).toEqual({});
  });

  it('sets deliveries, marks processed (sealed content erased) or failed', async () => {
    const store = new DossierStore(f.redis, f.keys, f.auth);
    const r = record();
    await store.create(r, 's');
    await store.setDelivery(r.id, 'dvla', { state: 'delivered', packetId: 'pkt_a', updatedAt: 't' });
    expect((await store.deliveries(r.id)).dvla).toEqual({ state: 'delivered', packetId: 'pkt_a', updatedAt: 't' });
    await store.markProcessed(r.id);
    expect((await store.get(r.id))?.state).toBe('processed');
    expect(await store.getSealed(r.id)).toBeUndefined();
    const failed = record([]);
    await store.create(failed, 's');
    await store.markFailed(failed.id, 'dossier_unreadable');
    expect(await store.get(failed.id)).toMatchObject({ state: 'failed', failure: 'dossier_unreadable', partners: [] });
  });

  it('marks a recall and records each notice, only on a record that exists', async () => {
    const store = new DossierStore(f.redis, f.keys, f.auth);
    const r = record();
    await store.create(r, 's');
    expect(await store.markRecalled(r.id, 'withdrawn', { reason: 'withdrawn', at: '2026-12-04T11:00:00.000Z', by: 'wm-rocu' })).toBe(true);
    await store.recordRecallNotice(r.id, 'dvla', { notice: 'pkt_n' });
    await store.recordRecallNotice(r.id, 'hmrc', { problem: 'recipient_key_invalid' });
    expect(await store.get(r.id)).toMatchObject({
      state: 'withdrawn',
      recall: { reason: 'withdrawn', at: '2026-12-04T11:00:00.000Z', by: 'wm-rocu', notices: { dvla: { notice: 'pkt_n' }, hmrc: { problem: 'recipient_key_invalid' } } },
    });
    const gone = dossierId();
    expect(await store.markRecalled(gone, 'corrected', { reason: 'corrected', at: 't', by: 'c' })).toBe(false);
    await store.recordRecallNotice(gone, 'dvla', { notice: 'pkt_x' });
    expect(await f.redis.exists(f.keys.dossier(gone))).toBe(0);
  });

  it('concurrent changes to one record all land (compare-and-set on its version, retried)', async () => {
    const store = new DossierStore(f.redis, f.keys, f.auth);
    const r = record(['a', 'b', 'c', 'd', 'e', 'f']);
    await store.create(r, 's');
    await Promise.all([store.markRecalled(r.id, 'withdrawn', { reason: 'withdrawn', at: 't', by: 'c' }), ...r.partners.map((p) => store.recordRecallNotice(r.id, p, { notice: `pkt_${p}` }))]);
    const got = await store.get(r.id);
    expect(got?.state).toBe('withdrawn');
    expect(Object.keys(got?.recall?.notices ?? {}).sort()).toEqual(r.partners);
    expect(Number(await f.redis.get(f.keys.recordVersion('dossier', r.id)))).toBe(1 + 1 + r.partners.length);
  });

  it('reads the state of recall notices, leaving out packets and erased notices', async () => {
    const store = new DossierStore(f.redis, f.keys, f.auth);
    const mailbox = new RedisMailbox(f.redis, f.keys, f.auth);
    const later = Date.now() + 3_600_000;
    const base = { partner: 'dvla', dossier: dossierId(), source: 's', createdAt: new Date(1).toISOString(), expiresAt: 't2', message: 'm', refs: 'r' };
    await mailbox.createNotice({ ...base, id: 'pkt_notice', state: 'delivered', type: 'recall' }, { member: 'm1', dueMs: later, storeExpiryMs: later });
    const notice = (await mailbox.get('pkt_notice'))!;
    await mailbox.advance(notice, 'retrieved', 't1');
    await mailbox.createNotice({ ...base, id: 'pkt_packet', state: 'delivered' } as never, { member: 'm2', dueMs: later, storeExpiryMs: later });
    const states = await store.noticeStates(['pkt_notice', 'pkt_packet', 'pkt_gone']);
    expect([...states]).toEqual([['pkt_notice', { state: 'retrieved', retrievedAt: 't1', expiresAt: 't2' }]]);
    expect((await store.noticeStates([])).size).toBe(0);
  });
});
