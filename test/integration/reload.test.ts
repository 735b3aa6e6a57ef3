/**
 * Hot reload as a governance team meets it: a running gateway on a copy of the sample policies; an edit
 * to a partner policy is picked up without a restart (the new revision is stamped in the packets and
 * the new rule applies); a broken edit is refused, the last good revision keeps serving, and /readyz,
 * the logs' audit counterpart and preview all say so.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../gateway/audit/log.js';
import { RedisAuditChain } from '../../gateway/store/audit.js';
import { decryptAndVerify, parseArmoredPrivateKey, parseArmoredPublicKey } from '../../gateway/crypto/openpgp.js';
import { Keys } from '../../gateway/store/redis.js';
import { api, fixture, ROOT, startTestGateway, TOKENS, waitSettled, type TestGateway, until } from '../helpers/gateway.js';
import { copyPolicies } from '../helpers/policies.js';

let gw: TestGateway;
let policies: Awaited<ReturnType<typeof copyPolicies>>;
let dvlaFile: string;
let original: string;
const full = fixture('dossier-full.json');

beforeAll(async () => {
  policies = await copyPolicies();
  dvlaFile = path.join(policies.dir, 'partners/dvla.yaml');
  original = await readFile(dvlaFile, 'utf8');
  gw = await startTestGateway({ policyDir: policies.dir });
});

afterAll(async () => {
  await gw?.stop();
  await policies?.cleanup();
});

/** Push the full dossier and return DVLA's decrypted packet. */
async function dvlaPacket(key: string): Promise<{ packet: { policy: { revision: string } }; dossier: any }> {
  const pushed = await api(gw.url, 'POST', '/v1/dossiers', TOKENS['west-midlands-rocu'], full, { 'idempotency-key': key });
  expect(pushed.status, pushed.text).toBe(202);
  const status = await waitSettled(gw.url, pushed.json.id);
  const d = status.deliveries.find((x: { partner: string }) => x.partner === 'dvla');
  expect(d?.state, JSON.stringify(d)).toBe('delivered');
  const armored = await api(gw.url, 'GET', `/v1/packets/${d.packetId}`, TOKENS.dvla);
  const secret = await parseArmoredPrivateKey(await readFile(path.join(ROOT, 'test/fixtures/keys/dvla.sec.asc'), 'utf8'));
  const verify = await parseArmoredPublicKey((await api(gw.url, 'GET', '/v1/keys/gateway')).text);
  return JSON.parse((await decryptAndVerify(armored.text, secret, [verify])).data);
}

async function liveRevision(): Promise<string> {
  const res = await api(gw.url, 'POST', '/v1/preview', TOKENS.governance, { dossier: full, partner: 'dvla' });
  expect(res.status, res.text).toBe(200);
  return res.json.policy.revision as string;
}

async function auditRecords() {
  return new AuditLog(new RedisAuditChain(gw.redis, new Keys(gw.prefix))).read();
}

describe('policy hot reload', () => {
  let first: string;
  let second: string;

  it('stamps the start-up revision in packets', async () => {
    const p = await dvlaPacket('reload-1');
    first = p.packet.policy.revision;
    expect(first).toMatch(/^[0-9a-f]{16}$/);
    expect(p.dossier.subjects[0].vehicles[0].colour).toBe('black');
    expect(await liveRevision()).toBe(first);
  });

  it('picks up an edited policy without a restart', async () => {
    await writeFile(dvlaFile, original.replace('  subjects[].vehicles[].colour: keep\n', ''));
    second = await until('the new revision', async () => {
      const r = await liveRevision();
      return r !== first ? r : undefined;
    });
    const p = await dvlaPacket('reload-2');
    expect(p.packet.policy.revision).toBe(second);
    expect(p.dossier.subjects[0].vehicles[0].vrm).toBe('AB12 CDE');
    expect(p.dossier.subjects[0].vehicles[0]).not.toHaveProperty('colour');
    const loaded = (await auditRecords()).filter((r) => r.kind === 'alteration' && r.action === 'policy.loaded');
    expect(loaded.at(-1)).toMatchObject({ policyRevision: second, previousRevision: first, reason: 'file change' });
    const ready = await api(gw.url, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(JSON.stringify(ready.json)).toContain(second);
  });

  it('refuses a broken edit and keeps serving the last good revision', async () => {
    // A typo in an operation and a path that does not exist: the set does not validate.
    await writeFile(dvlaFile, original.replace('  subjects[].vehicles[].colour: keep\n', '  subjects[].vehicles[].colour: kep\n  subjects[].vehicles[].shade: keep\n'));
    const detail = await until('the refusal in /readyz', async () => {
      const r = await api(gw.url, 'GET', '/readyz');
      const text = JSON.stringify(r.json);
      return text.includes('reload refused') ? { status: r.status, json: r.json, text } : undefined;
    });
    // Still ready: the last good set serves. The detail says what happened.
    expect(detail.status).toBe(200);
    const m = /reload refused at \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z: (\d+) problems?; serving revision [0-9a-f]{16}/.exec(detail.text);
    expect(m, detail.text).not.toBeNull();
    const problems = Number(m![1]);
    expect(problems).toBeGreaterThan(0);
    expect(detail.text).toContain(`serving revision ${second}`);

    expect(await liveRevision()).toBe(second);
    const p = await dvlaPacket('reload-3');
    expect(p.packet.policy.revision).toBe(second);
    expect(p.dossier.subjects[0].vehicles[0]).not.toHaveProperty('colour');
    expect(p.dossier.subjects[0].vehicles[0]).not.toHaveProperty('shade');

    const refused = (await auditRecords()).filter((r) => r.kind === 'alteration' && r.action === 'policy.refused');
    expect(refused.at(-1)).toMatchObject({ policyRevision: second, problems, reason: 'file change' });
    // The record holds counts and revisions, never policy text or dossier values.
    expect(JSON.stringify(refused.at(-1))).not.toContain('shade');
  });

  it('recovers when the file is fixed (here by SIGHUP as well as the watcher)', async () => {
    await writeFile(dvlaFile, original);
    process.emit('SIGHUP');
    const r = await until('the original revision', async () => {
      const rev = await liveRevision();
      return rev === first ? rev : undefined;
    });
    expect(r).toBe(first);
    const ready = await api(gw.url, 'GET', '/readyz');
    expect(JSON.stringify(ready.json)).not.toContain('reload refused');
    const p = await dvlaPacket('reload-4');
    expect(p.packet.policy.revision).toBe(first);
    expect(p.dossier.subjects[0].vehicles[0].colour).toBe('black');
  });
});
