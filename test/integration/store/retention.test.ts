/** The retention schedule, sweep lock and erasures on a real Redis. */
import { describe, expect, it } from 'vitest';
import { DossierStore } from '../../../gateway/store/dossiers.js';
import { RedisMailbox } from '../../../gateway/store/mailbox.js';
import { RedisRetention } from '../../../gateway/store/retention.js';
import { dossierId, useStoreFixture } from './fixture.js';

const f = useStoreFixture('retention');

describe('RedisRetention', () => {
  it('schedules, lists what is due oldest first, reschedules and unschedules', async () => {
    const store = new RedisRetention(f.redis, f.keys, f.auth);
    await store.schedule('dossier|b', 2000);
    await store.schedule('dossier|a', 1000);
    await store.schedule('dossier|c', 9000);
    expect(await store.due(5000, 10)).toEqual(['dossier|a', 'dossier|b']);
    expect(await store.due(5000, 1)).toEqual(['dossier|a']);
    await store.schedule('dossier|a', 8000);
    await store.unschedule('dossier|b');
    expect(await store.due(5000, 10)).toEqual([]);
    expect(await store.due(10_000, 10)).toEqual(['dossier|a', 'dossier|c']);
  });

  it('lets one holder take the lock, and only that holder release it', async () => {
    const store = new RedisRetention(f.redis, f.keys, f.auth);
    expect(await store.lock('one', 10_000)).toBe(true);
    expect(await store.lock('two', 10_000)).toBe(false);
    await store.release('two');
    expect(await store.lock('two', 10_000)).toBe(false);
    await store.release('one');
    expect(await store.lock('two', 10_000)).toBe(true);
    await store.release('two');
  });

  it('erases a packet with its mailbox entry and schedule member, turning its delivery expired', async () => {
    const store = new RedisRetention(f.redis, f.keys, f.auth);
    const dossier = dossierId();
    const member = `packet|pkt_e|${dossier}|dvla`;
    const later = Date.now() + 3_600_000;
    await new RedisMailbox(f.redis, f.keys, f.auth).create([
      {
        packet: { id: 'pkt_e', partner: 'dvla', dossier, source: 's', createdAt: new Date(1).toISOString(), expiresAt: new Date(later).toISOString(), state: 'retrieved', message: 'm', refs: 'r' },
        delivery: { state: 'retrieved', packetId: 'pkt_e', updatedAt: 't0' },
        retention: { member, dueMs: 1000, storeExpiryMs: later, dossierMember: `dossier|${dossier}`, statusDueMs: later, statusStoreExpiryMs: later },
      },
    ]);
    expect(await store.packetState('pkt_e')).toEqual({ state: 'retrieved', type: null });
    const request = { id: 'pkt_e', dossier, partner: 'dvla', member, at: 't1', reason: 'recalled' };
    expect(await store.erasePacket({ ...request, onlyIfState: 'delivered' })).toBe('skipped');
    expect(await store.packetState('pkt_e')).toEqual({ state: 'retrieved', type: null });
    expect(await store.erasePacket(request)).toBe('erased');
    expect(await store.packetState('pkt_e')).toEqual({ state: null, type: null });
    expect(await f.redis.zscore(f.keys.mailbox('dvla'), 'pkt_e')).toBeNull();
    expect(await store.due(5000, 10)).not.toContain(member);
    expect(JSON.parse((await f.redis.hget(f.keys.deliveries(dossier), 'dvla'))!)).toEqual({ state: 'expired', packetId: 'pkt_e', updatedAt: 't1', reason: 'recalled' });
    expect(await store.erasePacket(request)).toBe('gone');
  });

  it('erases a dossier with everything kept with it, its companions included', async () => {
    const store = new RedisRetention(f.redis, f.keys, f.auth);
    const id = dossierId();
    await new DossierStore(f.redis, f.keys, f.auth).create({ id, source: 's', client: 'c', receivedAt: 't', state: 'accepted', revision: 'r', partners: ['dvla'] }, 'sealed');
    const companion = `${f.keys.prefix}:exchange:out:${id}`;
    await f.redis.hset(companion, 'peer', '{}');
    await f.redis.sadd(f.keys.dossierCompanions(id), companion);
    await f.redis.hset(f.keys.hits(id), 'h1', 'sealed-hit');
    await f.redis.set(f.keys.dossierLinks(id), 'sealed-links');
    await store.schedule(`dossier|${id}`, 1000);
    expect(await store.dossierRemains(id)).toEqual({ sealedLeft: true, present: true, companions: 1 });
    await store.eraseDossier(id, `dossier|${id}`);
    const keys = [f.keys.dossier(id), f.keys.deliveries(id), f.keys.hits(id), f.keys.dossierLinks(id), f.keys.dossierCompanions(id), companion];
    expect(await f.redis.exists(...keys)).toBe(0);
    expect(await f.redis.zscore(f.keys.retentionDue(), `dossier|${id}`)).toBeNull();
    expect(await store.dossierRemains(id)).toEqual({ sealedLeft: false, present: false, companions: 0 });
  });
});
