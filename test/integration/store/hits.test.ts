/** Hits and link items on a real Redis: sealed, first one wins, living as long as the dossier's record. */
import { describe, expect, it } from 'vitest';
import { deriveKey, seal } from '../../../gateway/crypto/seal.js';
import { DossierStore } from '../../../gateway/store/dossiers.js';
import { RedisHitStore, type StoredHit } from '../../../gateway/store/hits.js';
import { dossierId, useStoreFixture } from './fixture.js';

const f = useStoreFixture('hits');
const master = Buffer.alloc(32, 9);

function hitStore(): RedisHitStore<{ value: string }> {
  return new RedisHitStore(f.redis, f.keys, deriveKey(master, 'seal'), (source) => deriveKey(master, `link-index:${source}`));
}

function hit(id: string): StoredHit {
  return {
    id, subject: 'S1', partner: 'dvla', packet: 'pkt_a', kind: 'vehicle', detail: { vrm: 'AB12CDE' }, matchedOn: ['name'],
    confidence: 'confirmed', receivedAt: '2026-12-04T10:00:00.000Z', agreement: { reference: 'ISA-1' },
  };
}

async function withDossier(state: 'accepted' | 'withdrawn' = 'accepted'): Promise<string> {
  const id = dossierId();
  await new DossierStore(f.redis, f.keys, f.auth).create({ id, source: 'west-midlands', client: 'c', receivedAt: 't', state, revision: 'r', partners: [] }, 's');
  return id;
}

describe('RedisHitStore', () => {
  it('stores new hits sealed (first one wins), expiring with the dossier record, and reads them back', async () => {
    const store = hitStore();
    const id = await withDossier();
    const mac = store.mac('west-midlands', 'vrm', 'AB12CDE');
    expect(mac).toBe(hitStore().mac('west-midlands', 'vrm', 'AB12CDE'));
    expect(mac).not.toBe(store.mac('merseyside', 'vrm', 'AB12CDE'));
    expect(await store.add(id, 'west-midlands', [hit('h1'), hit('h2')], [mac])).toEqual({ added: 2, total: 2 });
    expect(await store.add(id, 'west-midlands', [{ ...hit('h1'), subject: 'S9' }, hit('h3')], [mac])).toEqual({ added: 1, total: 3 });
    expect((await store.hits(id)).find((h) => h.id === 'h1')?.subject).toBe('S1');
    expect(await store.count(id)).toBe(3);
    expect(await store.existing(id, ['h1', 'h4'])).toEqual(new Set(['h1']));
    expect(await store.existing(id, [])).toEqual(new Set());
    expect(JSON.stringify(await f.redis.hgetall(f.keys.hits(id)))).not.toContain('AB12CDE');
    expect(await f.redis.pexpiretime(f.keys.hits(id))).toBe(await f.redis.pexpiretime(f.keys.dossier(id)));
  });

  it('refuses hits for a dossier that is gone, or recalled when asked to', async () => {
    const store = hitStore();
    await expect(store.add(dossierId(), 'west-midlands', [hit('h1')], [])).rejects.toMatchObject({ code: 'not_found' });
    const recalled = await withDossier('withdrawn');
    await expect(store.add(recalled, 'west-midlands', [hit('h1')], [], { refuseRecalled: true })).rejects.toMatchObject({ code: 'dossier_recalled' });
    expect(await store.count(recalled)).toBe(0);
    expect(await store.add(recalled, 'west-midlands', [hit('h1')], [])).toEqual({ added: 1, total: 1 });
  });

  it('stores a dossier’s link items once and finds the dossiers of a source sharing a value', async () => {
    const store = hitStore();
    const [a, b] = [await withDossier(), await withDossier()];
    const mac = store.mac('west-midlands', 'phone', '07700900123');
    expect(await store.putDossierLinks({ dossier: a, reference: 'REF-A', items: [{ value: '07700900123' }] }, 'west-midlands', [mac])).toBe(true);
    expect(await store.putDossierLinks({ dossier: a, reference: 'REF-A', items: [] }, 'west-midlands', [mac])).toBe(false);
    expect(await store.putDossierLinks({ dossier: dossierId(), reference: 'X', items: [] }, 'west-midlands', [mac])).toBe(false);
    expect(await store.dossierLinks(a)).toEqual({ dossier: a, reference: 'REF-A', items: [{ value: '07700900123' }] });
    expect(await store.dossierLinks(b)).toBeUndefined();
    await store.putDossierLinks({ dossier: b, reference: 'REF-B', items: [] }, 'west-midlands', [mac, mac]);
    expect(await store.dossiersWith('west-midlands', [mac], a)).toEqual([b]);
    expect((await store.dossiersWith('west-midlands', [mac], 'none')).sort()).toEqual([a, b].sort());
    expect(await store.dossiersWith('merseyside', [mac], a)).toEqual([]);
    expect(await store.dossiersWith('west-midlands', [], a)).toEqual([]);
  });

  it('stores link items sealed in binary and still reads those sealed as text before', async () => {
    const store = hitStore();
    const a = await withDossier();
    await store.putDossierLinks({ dossier: a, reference: 'REF-A', items: [{ value: 'x' }] }, 'west-midlands', []);
    const raw = await f.redis.getBuffer(f.keys.dossierLinks(a));
    expect(raw![0]).toBe(2);
    expect(raw!.includes(Buffer.from('REF-A'))).toBe(false);
    const old = await withDossier();
    const sealKey = deriveKey(master, 'seal');
    await f.redis.set(f.keys.dossierLinks(old), seal(sealKey, JSON.stringify({ dossier: old, reference: 'OLD', items: [{ value: 'y' }] }), `links:${old}`));
    expect(await store.dossierLinks(old)).toEqual({ dossier: old, reference: 'OLD', items: [{ value: 'y' }] });
  });
});
