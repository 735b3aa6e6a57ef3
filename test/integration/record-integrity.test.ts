/**
 * Record metadata in Redis is authenticated (gateway/store/record-mac.ts): someone able to write to
 * Redis changes a packet's partner, or restores an older copy of a dossier's record over its recall,
 * and the gateway refuses the record to everyone (500 `record_tampered`, nothing of it disclosed) and
 * audits it; untouched records keep working. And a recalled dossier's evidence is no longer linked into
 * the source's other bundles.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../gateway/audit/log.js';
import { decryptAndVerify, parseArmoredPrivateKey, parseArmoredPublicKey } from '../../gateway/crypto/openpgp.js';
import { api, deleteKeys, fixture, ROOT, startTestGateway, TOKENS, waitSettled, type TestGateway } from '../helpers/gateway.js';

const FORCE = TOKENS['west-midlands-rocu']!;
let gw: TestGateway;

async function auditOf(): Promise<AuditRecord[]> {
  return (await gw.redis.lrange(`${gw.prefix}:audit:log`, 0, -1)).map((r) => JSON.parse(r) as AuditRecord);
}

async function push(dossier: unknown): Promise<string> {
  const res = await api(gw.url, 'POST', '/v1/dossiers', FORCE, dossier);
  expect(res.status, res.text).toBe(202);
  await waitSettled(gw.url, res.json.id);
  return res.json.id as string;
}

async function packetFor(dossier: string, partner: string): Promise<string> {
  const status = await api(gw.url, 'GET', `/v1/dossiers/${dossier}`, FORCE);
  return status.json.deliveries.find((d: { partner: string }) => d.partner === partner).packetId as string;
}

async function bundle(dossier: string): Promise<any> {
  const res = await api(gw.url, 'GET', `/v1/dossiers/${dossier}/hits`, FORCE);
  expect(res.status, res.text).toBe(200);
  const secret = await parseArmoredPrivateKey(await readFile(path.join(ROOT, 'test/fixtures/keys/west-midlands.sec.asc'), 'utf8'));
  const gatewayKey = await parseArmoredPublicKey((await api(gw.url, 'GET', '/v1/keys/gateway')).text);
  return JSON.parse((await decryptAndVerify(res.text, secret, [gatewayKey])).data);
}

function expectTampered(res: { status: number; text: string; json: any }): void {
  expect(res.status, res.text).toBe(500);
  expect(res.json.error.code).toBe('record_tampered');
  expect(res.text).not.toContain('BEGIN PGP');
}

beforeAll(async () => {
  gw = await startTestGateway();
});
afterAll(async () => {
  await gw?.stop();
});

describe('authenticated record metadata', () => {
  it("a packet whose partner was changed in Redis is refused to both partners, left out of listings, and audited", async () => {
    const id = await push(fixture('dossier-full.json'));
    const packet = await packetFor(id, 'dvla');
    const untouched = await packetFor(id, 'hmrc');
    await gw.redis.hset(`${gw.prefix}:packet:${packet}`, 'partner', 'hmrc');

    expectTampered(await api(gw.url, 'GET', `/v1/packets/${packet}`, TOKENS['dvla']));
    expectTampered(await api(gw.url, 'GET', `/v1/packets/${packet}`, TOKENS['hmrc']));
    expectTampered(await api(gw.url, 'POST', `/v1/packets/${packet}/ack`, TOKENS['hmrc']));
    for (const partner of ['dvla', 'hmrc']) {
      const list = await api(gw.url, 'GET', '/v1/packets', TOKENS[partner]);
      expect(list.status).toBe(200);
      expect(JSON.stringify(list.json)).not.toContain(packet);
    }
    const tampered = (await auditOf()).filter((r) => r.action === 'record.tampered' && r.packet === packet);
    expect(tampered.length).toBeGreaterThanOrEqual(1);
    expect(tampered[0]).toMatchObject({ kind: 'decision', record: 'packet', problem: 'mac_invalid' });
    expect((await auditOf()).some((r) => r.action === 'packet.retrieved' && r.packet === packet)).toBe(false);

    // Everything untouched keeps working: the same dossier's HMRC packet, listed and retrieved.
    expect(JSON.stringify((await api(gw.url, 'GET', '/v1/packets', TOKENS['hmrc'])).json)).toContain(untouched);
    const ok = await api(gw.url, 'GET', `/v1/packets/${untouched}`, TOKENS['hmrc']);
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('BEGIN PGP MESSAGE');
  });

  it("a packet's older copy restored after it was retrieved is refused (stale version)", async () => {
    const id = await push(fixture('dossier-full.json'));
    const packet = await packetFor(id, 'dwp-benefits');
    const key = `${gw.prefix}:packet:${packet}`;
    const before = await gw.redis.dumpBuffer(key);
    expect((await api(gw.url, 'GET', `/v1/packets/${packet}`, TOKENS['dwp-benefits'])).status).toBe(200);
    await gw.redis.restore(key, 0, before!, 'REPLACE');
    expectTampered(await api(gw.url, 'GET', `/v1/packets/${packet}`, TOKENS['dwp-benefits']));
    expect((await auditOf()).some((r) => r.action === 'record.tampered' && r.packet === packet && (r as any).problem === 'version_stale')).toBe(true);
  });

  it('an older copy of a dossier record restored over its recall is refused: status, bundle and hits', async () => {
    const id = await push(fixture('dossier-full.json'));
    const packet = await packetFor(id, 'dvla');
    const key = `${gw.prefix}:dossier:${id}`;
    const before = await gw.redis.dumpBuffer(key);
    const recall = await api(gw.url, 'POST', `/v1/dossiers/${id}/recall`, FORCE, { reason: 'withdrawn' });
    expect(recall.status, recall.text).toBe(200);
    expect((await api(gw.url, 'GET', `/v1/dossiers/${id}`, FORCE)).json.state).toBe('withdrawn');

    await gw.redis.restore(key, 0, before!, 'REPLACE');
    expect(await gw.redis.hget(key, 'state')).toBe('processed'); // the copy is the gateway's own, MAC and all
    expectTampered(await api(gw.url, 'GET', `/v1/dossiers/${id}`, FORCE));
    expectTampered(await api(gw.url, 'GET', `/v1/dossiers/${id}/hits`, FORCE));
    const hits = await api(gw.url, 'POST', `/v1/packets/${packet}/hits`, TOKENS['dvla'], {
      schema: 'cordon.hits/v1',
      packet,
      hits: [{ subject: 'x', kind: 'vehicle', detail: { vrm: 'AB12CDE' }, matchedOn: ['name'], confidence: 'confirmed' }],
    });
    expect(hits.status).not.toBe(202);
    expect(await gw.redis.exists(`${gw.prefix}:dossier:${id}:hits`)).toBe(0);
    const tampered = (await auditOf()).filter((r) => r.action === 'record.tampered' && r.dossier === id);
    expect(tampered[0]).toMatchObject({ kind: 'decision', record: 'dossier', problem: 'version_stale' });
  });

  it("a dossier record whose source was edited is refused, its MAC removed or not", async () => {
    const id = await push(fixture('dossier-minimal.json'));
    const key = `${gw.prefix}:dossier:${id}`;
    await gw.redis.hset(key, 'state', 'accepted');
    expectTampered(await api(gw.url, 'GET', `/v1/dossiers/${id}`, FORCE));
    await gw.redis.hdel(key, 'mac', 'v');
    expectTampered(await api(gw.url, 'GET', `/v1/dossiers/${id}`, FORCE));
    expect((await auditOf()).some((r) => r.action === 'record.tampered' && r.dossier === id && (r as any).problem === 'mac_missing')).toBe(true);
  });
});

describe('links and recalled dossiers', () => {
  it("a recalled dossier's evidence is left out of the links of the source's other bundles", async () => {
    // A value only these two dossiers share (the file's other dossiers share the fixture's own).
    const full = fixture('dossier-full.json') as any;
    full.subjects[0].vehicles.push({ vrm: 'KX26RCL' });
    const a = await push(full);
    const minimal = fixture('dossier-minimal.json') as any;
    minimal.subjects[0].vehicles = [{ vrm: 'KX26 RCL' }];
    const b = await push(minimal);
    const shared = (l: any) => l.kind === 'vehicle' && l.value === 'KX26RCL';
    expect((await bundle(a)).links.find(shared)).toMatchObject({ subjects: ['S1'], otherDossiers: [{ dossier: b, subject: 'S1' }] });

    const recall = await api(gw.url, 'POST', `/v1/dossiers/${b}/recall`, FORCE, { reason: 'withdrawn' });
    expect(recall.status, recall.text).toBe(200);
    const after = await bundle(a);
    expect(JSON.stringify(after)).not.toContain(b);
    expect(after.links.find(shared)).toBeUndefined();
    // A's own links are untouched.
    expect(after.links.some((l: any) => l.kind === 'postcode' && l.value === 'CV6 5HX')).toBe(true);
  });
});

describe('records written before records were authenticated', () => {
  it('are sealed once, at the first start on a state directory; a record without a MAC after that is refused', async () => {
    const prefix = `cordon-test-${randomBytes(4).toString('hex')}`;
    const stateDir = await mkdtemp(path.join(os.tmpdir(), 'cordon-state-'));
    const legacy = (id: string) => ({ id, source: 'west-midlands', client: 'west-midlands-rocu', receivedAt: new Date().toISOString(), state: 'processed', revision: 'r0', partners: '[]' });
    const before = `dos_${randomBytes(16).toString('hex')}`;
    const after = `dos_${randomBytes(16).toString('hex')}`;
    const first = await startTestGateway({ redisPrefix: prefix, stateDir });
    try {
      // Written by the version before (no MAC, no version key); the gateway started on an empty store.
      await first.close();
      await first.redis.hset(`${prefix}:dossier:${before}`, legacy(before));
      await rm(path.join(stateDir, 'records-sealed.json'));
      const upgraded = await startTestGateway({ redisPrefix: prefix, stateDir });
      try {
        const res = await api(upgraded.url, 'GET', `/v1/dossiers/${before}`, FORCE);
        expect(res.status, res.text).toBe(200);
        expect(res.json.state).toBe('processed');
        const sealed = (await upgraded.redis.lrange(`${prefix}:audit:log`, 0, -1)).map((r) => JSON.parse(r)).filter((r) => r.action === 'records.sealed');
        expect(sealed.at(-1)).toMatchObject({ kind: 'alteration', count: 1 });
        await upgraded.close();
        // Later, a record without a MAC (stripped, or written by a process of the old version): the
        // restart on the same state directory does not seal it.
        await upgraded.redis.hset(`${prefix}:dossier:${after}`, legacy(after));
        const restarted = await startTestGateway({ redisPrefix: prefix, stateDir });
        try {
          expectTampered(await api(restarted.url, 'GET', `/v1/dossiers/${after}`, FORCE));
          expect((await api(restarted.url, 'GET', `/v1/dossiers/${before}`, FORCE)).status).toBe(200);
        } finally {
          await restarted.close();
          await restarted.redis.quit();
        }
      } finally {
        await upgraded.redis.quit();
      }
    } finally {
      await deleteKeys(first.redis, prefix);
      await first.redis.quit();
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});
