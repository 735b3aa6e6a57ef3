/** Partners' mailboxes on a real Redis: create once, list, advance, recall notices, and retention bookkeeping. */
import { describe, expect, it } from 'vitest';
import { DossierStore, type Delivery } from '../../../gateway/store/dossiers.js';
import { RedisMailbox, type PacketRecord, type PacketRetention } from '../../../gateway/store/mailbox.js';
import { DAY_MS, dossierId, useStoreFixture } from './fixture.js';

const f = useStoreFixture('mailbox');
const NOW = Date.parse('2026-12-04T10:00:00.000Z');

function packet(dossier: string, id: string, partner = 'dvla', createdMs = NOW): PacketRecord {
  return {
    id, partner, dossier, source: 'west-midlands',
    createdAt: new Date(createdMs).toISOString(), expiresAt: new Date(NOW + 30 * DAY_MS).toISOString(),
    state: 'delivered', message: '-----BEGIN PGP MESSAGE-----', refs: 'sealed-refs',
  };
}

function retention(p: PacketRecord, statusDueMs = NOW + 60 * DAY_MS): PacketRetention {
  return {
    member: `packet|${p.id}|${p.dossier}|${p.partner}`, dueMs: Date.parse(p.expiresAt), storeExpiryMs: Date.parse(p.expiresAt) + 60_000,
    dossierMember: `dossier|${p.dossier}`, statusDueMs, statusStoreExpiryMs: statusDueMs + DAY_MS,
  };
}

/** Files one packet (a batch of one): true when this call created it. */
async function createOne(mailbox: RedisMailbox, p: PacketRecord, delivery: Delivery, r: PacketRetention): Promise<boolean> {
  return (await mailbox.create([{ packet: p, delivery, retention: r }])).created[0]!;
}

async function withDossier(): Promise<string> {
  const id = dossierId();
  await new DossierStore(f.redis, f.keys, f.auth).create({ id, source: 'west-midlands', client: 'c', receivedAt: 't', state: 'accepted', revision: 'r', partners: ['dvla', 'hmrc'] }, 's');
  return id;
}

describe('RedisMailbox', () => {
  it('keeps a binary message as bytes and reads it back as bytes; text stays text', async () => {
    const mailbox = new RedisMailbox(f.redis, f.keys, f.auth);
    const dossier = await withDossier();
    const bytes = Uint8Array.from([0xc1, 0x00, 0xff, 0x80, 0x0a, 0x2d]);
    const p = { ...packet(dossier, 'pkt_binary'), message: bytes };
    expect(await createOne(mailbox, p, { state: 'delivered', packetId: p.id, updatedAt: p.createdAt }, retention(p))).toBe(true);
    expect((await f.redis.hgetBuffer(f.keys.packet(p.id), 'message'))!.equals(Buffer.from(bytes))).toBe(true);
    const read = await mailbox.get(p.id);
    expect(Buffer.isBuffer(read!.message)).toBe(true);
    expect(Buffer.from(read!.message as Uint8Array).equals(Buffer.from(bytes))).toBe(true);
    expect(await mailbox.list('dvla')).toEqual(expect.arrayContaining([expect.objectContaining({ id: p.id })]));
  });

  it('creates a packet once: files it, schedules it, sets the delivery and extends the dossier record', async () => {
    const mailbox = new RedisMailbox(f.redis, f.keys, f.auth);
    const dossier = await withDossier();
    const p = packet(dossier, 'pkt_one');
    const delivery = { state: 'delivered' as const, packetId: p.id, expiresAt: p.expiresAt, updatedAt: p.createdAt };
    // The record keeps 400 days from its creation: a packet outliving it lengthens it.
    const statusDue = Date.now() + 500 * DAY_MS;
    expect(await createOne(mailbox, p, delivery, retention(p, statusDue))).toBe(true);
    expect(await createOne(mailbox, { ...p, message: 'other' }, delivery, retention(p))).toBe(false);
    expect(await mailbox.get(p.id)).toEqual(p);
    expect(await mailbox.exists(p.id)).toBe(true);
    expect(JSON.parse((await f.redis.hget(f.keys.deliveries(dossier), 'dvla'))!)).toEqual(delivery);
    expect(Number(await f.redis.zscore(f.keys.retentionDue(), retention(p).member))).toBe(Date.parse(p.expiresAt));
    expect(Number(await f.redis.zscore(f.keys.retentionDue(), `dossier|${dossier}`))).toBe(statusDue);
    expect(await f.redis.pexpiretime(f.keys.packet(p.id))).toBe(retention(p).storeExpiryMs);
    for (const k of [f.keys.dossier(dossier), f.keys.deliveries(dossier)]) expect(await f.redis.pexpiretime(k)).toBe(statusDue + DAY_MS);
    // Another packet due earlier never moves the dossier's erasure earlier.
    const q = packet(dossier, 'pkt_two', 'hmrc');
    await createOne(mailbox, q, { ...delivery, packetId: q.id }, retention(q, statusDue - 10 * DAY_MS));
    expect(Number(await f.redis.zscore(f.keys.retentionDue(), `dossier|${dossier}`))).toBe(statusDue);
    expect(await f.redis.pexpiretime(f.keys.dossier(dossier))).toBe(statusDue + DAY_MS);
  });

  it('files the packets of a dossier in one step: each at most once, the existing ones untouched, the deliveries as they now are', async () => {
    const mailbox = new RedisMailbox(f.redis, f.keys, f.auth);
    const dossier = await withDossier();
    const [a, b, c] = (['dvla', 'hmrc', 'batch-partner'] as const).map((partner, i) => packet(dossier, `pkt_batch${i}`, partner));
    const delivered = (p: PacketRecord): Delivery => ({ state: 'delivered', packetId: p.id, expiresAt: p.expiresAt, updatedAt: p.createdAt });
    const statusDue = Date.now() + 500 * DAY_MS;
    expect(await createOne(mailbox, a!, delivered(a!), retention(a!))).toBe(true);
    await f.redis.hset(f.keys.deliveries(dossier), 'dwp-benefits', JSON.stringify({ state: 'blocked', reason: 'r', updatedAt: 't' }));
    const filed = await mailbox.create([
      { packet: { ...a!, message: 'other' }, delivery: { ...delivered(a!), updatedAt: 'later' }, retention: retention(a!) },
      { packet: b!, delivery: delivered(b!), retention: retention(b!, statusDue) },
      { packet: c!, delivery: { ...delivered(c!), matchPacketId: c!.id }, retention: retention(c!, statusDue - DAY_MS) },
    ]);
    expect(filed.created).toEqual([false, true, true]);
    expect(filed.deliveries).toEqual({
      dvla: delivered(a!),
      hmrc: delivered(b!),
      'batch-partner': { ...delivered(c!), matchPacketId: c!.id },
      'dwp-benefits': { state: 'blocked', reason: 'r', updatedAt: 't' },
    });
    expect(await mailbox.get(a!.id)).toEqual(a);
    for (const p of [b!, c!]) {
      expect(await mailbox.get(p.id)).toEqual(p);
      expect(await f.redis.zscore(f.keys.mailbox(p.partner), p.id)).not.toBeNull();
      expect(await f.redis.zscore(f.keys.mailboxPending(p.partner), p.id)).not.toBeNull();
      expect(Number(await f.redis.zscore(f.keys.retentionDue(), retention(p).member))).toBe(Date.parse(p.expiresAt));
    }
    // The latest any created packet asks for.
    expect(Number(await f.redis.zscore(f.keys.retentionDue(), `dossier|${dossier}`))).toBe(statusDue);
    expect(await f.redis.pexpiretime(f.keys.deliveries(dossier))).toBe(statusDue + DAY_MS);
    expect(await mailbox.create([{ packet: b!, delivery: delivered(b!), retention: retention(b!) }])).toMatchObject({ created: [false] });
    await expect(mailbox.create([])).rejects.toThrow();
    await expect(mailbox.create([{ packet: b!, delivery: delivered(b!), retention: retention(b!) }, { packet: packet('dos_other', 'pkt_x'), delivery: delivered(b!), retention: retention(b!) }])).rejects.toThrow();
  });

  it('lists newest first, or the pending ones oldest first, without messages, pruning erased ids', async () => {
    const mailbox = new RedisMailbox(f.redis, f.keys, f.auth);
    const dossier = await withDossier();
    const ps = [1, 2, 3].map((i) => packet(dossier, `pkt_list${i}`, 'council-housing', NOW + i * 1000));
    for (const p of ps) await createOne(mailbox, p, { state: 'delivered', packetId: p.id, updatedAt: p.createdAt }, retention(p));
    const newest = await mailbox.list('council-housing');
    expect(newest.map((p) => p.id)).toEqual(['pkt_list3', 'pkt_list2', 'pkt_list1']);
    expect(newest[0]).not.toHaveProperty('message');
    expect(newest[0]).not.toHaveProperty('refs');
    expect((await mailbox.list('council-housing', 2, true)).map((p) => p.id)).toEqual(['pkt_list1', 'pkt_list2']);
    await f.redis.del(f.keys.packet('pkt_list2'));
    expect((await mailbox.list('council-housing')).map((p) => p.id)).toEqual(['pkt_list3', 'pkt_list1']);
    expect(await f.redis.zscore(f.keys.mailbox('council-housing'), 'pkt_list2')).toBeNull();
    expect(await f.redis.zscore(f.keys.mailboxPending('council-housing'), 'pkt_list2')).toBeNull();
    expect(await mailbox.list('nobody')).toEqual([]);
  });

  it('advances a packet and its delivery, never backwards, and takes it off the pending list', async () => {
    const mailbox = new RedisMailbox(f.redis, f.keys, f.auth);
    const dossier = await withDossier();
    const p = packet(dossier, 'pkt_adv', 'dwp-benefits');
    await createOne(mailbox, p, { state: 'delivered', packetId: p.id, updatedAt: p.createdAt }, retention(p));
    await mailbox.advance(p, 'acknowledged', 't2');
    await mailbox.advance(p, 'retrieved', 't3');
    expect(await mailbox.get(p.id)).toMatchObject({ state: 'acknowledged', acknowledgedAt: 't2' });
    expect((await mailbox.get(p.id))?.retrievedAt).toBeUndefined();
    expect(JSON.parse((await f.redis.hget(f.keys.deliveries(dossier), 'dwp-benefits'))!)).toMatchObject({ state: 'acknowledged', updatedAt: 't2' });
    expect(await mailbox.list('dwp-benefits', 10, true)).toEqual([]);
    await mailbox.advance(packet(dossier, 'pkt_absent', 'dwp-benefits'), 'retrieved', 't4');
    expect(await mailbox.exists('pkt_absent')).toBe(false);
  });

  it('stores a recall notice once, in the mailbox and the schedule, without touching the delivery', async () => {
    const mailbox = new RedisMailbox(f.redis, f.keys, f.auth);
    const dossier = await withDossier();
    const notice = { ...packet(dossier, 'pkt_notice', 'dvla'), type: 'recall' as const, recalls: 'pkt_one' };
    const r = { member: `packet|${notice.id}|${dossier}|dvla`, dueMs: NOW + 7 * DAY_MS, storeExpiryMs: NOW + 8 * DAY_MS };
    expect(await mailbox.createNotice(notice, r)).toBe(true);
    expect(await mailbox.createNotice(notice, r)).toBe(false);
    expect(await mailbox.get(notice.id)).toEqual(notice);
    expect((await mailbox.list('dvla', 10, true)).map((p) => p.id)).toContain(notice.id);
    expect(Number(await f.redis.zscore(f.keys.retentionDue(), r.member))).toBe(r.dueMs);
    expect(await f.redis.pexpiretime(f.keys.packet(notice.id))).toBe(r.storeExpiryMs);
    await mailbox.advance(notice, 'retrieved', 't5');
    expect(JSON.parse((await f.redis.hget(f.keys.deliveries(dossier), 'dvla'))!)).toMatchObject({ state: 'queued' });
  });
});
