/**
 * The audit trail as governance uses it: a whole exchange leaves the expected s.62 records in order,
 * `GET /v1/audit` answers "who received data about subject S1 of dossier WMP-OCG-2026-00412" (and only
 * to governance), `cordon audit verify` (a child process) proves the live log and an export intact, the
 * export carries no dossier value, and editing, deleting, reordering or cutting records is caught with
 * the bad record named.
 */
import { spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anchorName } from '../../gateway/audit/checkpoint.js';
import type { AuditRecord } from '../../gateway/audit/log.js';
import { api, deleteKeys, fixture, PARTNERS, REDIS_URL, ROOT, startTestGateway, TOKENS, waitSettled, type TestGateway, dossierValues } from '../helpers/gateway.js';

const FORCE = TOKENS['west-midlands-rocu']!;
const GOV = TOKENS['governance']!;
const full = fixture('dossier-full.json') as any;
let gw: TestGateway;
let work: string;
let dossierId: string;
let keyFile: string;
const copies: string[] = [];

function cordon(...args: string[]) {
  const res = spawnSync(process.execPath, [path.join(ROOT, 'scripts/cordon.mjs'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

async function records(prefix = gw.prefix): Promise<AuditRecord[]> {
  return (await gw.redis.lrange(`${prefix}:audit:log`, 0, -1)).map((r) => JSON.parse(r) as AuditRecord);
}

beforeAll(async () => {
  gw = await startTestGateway();
  work = await mkdtemp(path.join(os.tmpdir(), 'cordon-audit-e2e-'));
  keyFile = path.join(work, 'gateway.asc');
  await writeFile(keyFile, (await api(gw.url, 'GET', '/v1/keys/gateway')).text);

  const res = await api(gw.url, 'POST', '/v1/dossiers', FORCE, full);
  expect(res.status).toBe(202);
  dossierId = res.json.id;
  await waitSettled(gw.url, dossierId);
  for (const partner of ['dvla', 'council-housing']) {
    const list = await api(gw.url, 'GET', '/v1/packets', TOKENS[partner]);
    const id = list.json.packets[0].id;
    expect((await api(gw.url, 'GET', `/v1/packets/${id}`, TOKENS[partner])).status).toBe(200);
    if (partner === 'dvla') expect((await api(gw.url, 'POST', `/v1/packets/${id}/ack`, TOKENS[partner])).status).toBe(200);
  }
});

afterAll(async () => {
  for (const p of copies) await deleteKeys(gw.redis, p);
  await gw?.stop();
  await rm(work, { recursive: true, force: true });
});

describe('the s.62 trail of one exchange', () => {
  it('records collection, each disclosure or block, erasure, retrieval and acknowledgement, in order', async () => {
    const all = await records();
    expect(all[0]).toMatchObject({ kind: 'alteration', action: 'policy.loaded', seq: 1 });
    expect(all.some((r) => r.kind === 'checkpoint' && r.reason === 'start-up')).toBe(true);
    const mine = all.filter((r) => r.dossier === dossierId);
    const actions = mine.map((r) => r.action);
    expect(actions[0]).toBe('dossier.received');
    // With the collection, the recipient choice: the example reaches every partner, children's services
    // also under its statutory condition (Tyler is a child), which is recorded with its reason.
    const chosen = mine.slice(1).filter((r) => r.action.startsWith('delivery.') && r.action !== 'delivery.blocked');
    expect(chosen.map((r) => `${r.action}:${r.recipient}`)).toEqual(['delivery.statutory:childrens-services']);
    expect(actions.slice(1, 1 + chosen.length)).toEqual(chosen.map((r) => r.action));
    const first = 1 + chosen.length;
    const decided = actions.slice(first, first + PARTNERS.length);
    // Partners under after-match agreements (DWP, HMRC, Immigration Enforcement) get a match request first.
    // Riverside Homes (blind-match) gets a blind-match request: blinded keys only.
    expect(decided.every((a) => a === 'packet.created' || a === 'match.created' || a === 'blind.created' || a === 'delivery.blocked')).toBe(true);
    expect(mine.filter((r) => r.action === 'blind.created').map((r) => r.recipient)).toEqual(['riverside-homes']);
    expect(mine.filter((r) => r.action === 'match.created').map((r) => r.recipient).sort()).toEqual(['dwp-benefits', 'hmrc', 'immigration-enforcement']);
    expect(mine.slice(first, first + PARTNERS.length).map((r) => r.recipient).sort()).toEqual(PARTNERS);
    // The sealed dossier is kept while those match requests await their answers (the follow-up is made from it).
    expect(actions).not.toContain('dossier.sealed_content_erased');
    const consult = mine.filter((r) => r.action === 'packet.retrieved' || r.action === 'packet.acknowledged').map((r) => `${r.action}:${r.actor}`);
    expect(consult).toEqual(['packet.retrieved:dvla', 'packet.acknowledged:dvla', 'packet.retrieved:council-housing']);
    // Sequence numbers and times only go forwards.
    for (let i = 1; i < all.length; i++) {
      expect(all[i]!.seq).toBe(all[i - 1]!.seq + 1);
      expect(Date.parse(all[i]!.at)).toBeGreaterThanOrEqual(Date.parse(all[i - 1]!.at));
    }

    const received = mine[0]!;
    expect(received).toMatchObject({ kind: 'collection', actor: 'west-midlands-rocu', source: 'west-midlands', subjects: 4, justification: { dossierPurpose: `sealed with dossier ${dossierId}` } });
    expect(received.index!.subjects).toHaveLength(4);
    const dvla = mine.find((r) => r.action === 'packet.created' && r.recipient === 'dvla')!;
    expect(dvla).toMatchObject({
      kind: 'disclosure',
      policyRevision: expect.stringMatching(/^[0-9a-f]{16}$/),
      agreement: { reference: expect.any(String), legalBasis: expect.any(String), purpose: expect.any(String) },
      justification: { agreement: dvla.agreement!.reference, agreementPurpose: dvla.agreement!.purpose, dossierPurpose: `sealed with dossier ${dossierId}` },
      keyFingerprint: expect.stringMatching(/^[0-9A-F]{40}$/),
    });
    expect(dvla.fields!.length).toBeGreaterThan(0);
    expect(dvla.fields!.every((f) => typeof f.path === 'string' && typeof f.op === 'string')).toBe(true);
    expect(dvla.fields!.map((f) => f.path)).toContain('subjects[].vehicles[].vrm');
  });

  it('`cordon audit verify` proves the live log intact against its head and the state directory', () => {
    const res = cordon('audit', 'verify', '--redis', REDIS_URL, '--prefix', gw.prefix, '--state', gw.stateDir);
    expect(res.stderr).not.toMatch(/BROKEN/);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/audit trail intact: \d+ record\(s\), seq 1–\d+, [1-9]\d* signed checkpoint/);
  });

  it('without the gateway key the verifier refuses to run (exit 2)', () => {
    const res = cordon('audit', 'verify', '--redis', REDIS_URL, '--prefix', gw.prefix);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/--state DIR.*--key FILE/);
  });
});

describe('GET /v1/audit', () => {
  it('answers who received data about subject S1 of dossier WMP-OCG-2026-00412, when, under which agreement and policy revision', async () => {
    const res = await api(gw.url, 'GET', '/v1/audit?reference=WMP-OCG-2026-00412&subject=S1&kind=disclosure', GOV);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const rows = res.json.records as AuditRecord[];
    // Children's services only gets the under-18s: S1 never went there.
    expect(rows.map((r) => r.recipient).sort()).toEqual(PARTNERS.filter((p) => p !== 'childrens-services'));
    for (const r of rows) {
      expect(r).toMatchObject({ action: expect.stringMatching(/^(packet|match|blind)\.created$/), dossier: dossierId, at: expect.any(String), policyRevision: expect.any(String), agreement: { reference: expect.any(String) } });
    }
    const tyler = await api(gw.url, 'GET', '/v1/audit?reference=WMP-OCG-2026-00412&subject=S4&kind=disclosure', GOV);
    expect(tyler.json.records.map((r: AuditRecord) => r.recipient)).toContain('childrens-services');
    expect(tyler.json.records.map((r: AuditRecord) => r.recipient)).not.toContain('dvla');
    const nobody = await api(gw.url, 'GET', '/v1/audit?reference=WMP-OCG-2026-00412&subject=S99', GOV);
    expect(nobody.json.records).toEqual([]);
    // The whole life of one packet, by its id.
    const dvlaPacket = rows.find((r) => r.recipient === 'dvla')!.packet!;
    const life = await api(gw.url, 'GET', `/v1/audit?packet=${dvlaPacket}`, GOV);
    expect(life.json.records.map((r: AuditRecord) => r.action)).toEqual(['packet.created', 'packet.retrieved', 'packet.acknowledged']);
  });

  it('filters by partner, dossier and time, and pages with bounded limits', async () => {
    const byPartner = await api(gw.url, 'GET', `/v1/audit?partner=dvla&dossier=${dossierId}`, GOV);
    expect(byPartner.json.records.every((r: AuditRecord) => r.recipient === 'dvla' && r.dossier === dossierId)).toBe(true);
    const seen: number[] = [];
    let after: number | null = 0;
    while (after !== null) {
      const page = await api(gw.url, 'GET', `/v1/audit?dossier=${dossierId}&limit=3&after=${after}`, GOV);
      expect(page.status).toBe(200);
      expect(page.json.records.length).toBeLessThanOrEqual(3);
      seen.push(...page.json.records.map((r: AuditRecord) => r.seq));
      after = page.json.next;
    }
    expect(seen).toEqual((await records()).filter((r) => r.dossier === dossierId).map((r) => r.seq));
    const future = await api(gw.url, 'GET', `/v1/audit?since=${new Date(Date.now() + 86_400_000).toISOString()}`, GOV);
    expect(future.json).toEqual({ records: [], next: null });
  });

  it('is refused to every role but governance, and bad filters answer 400 with each one named', async () => {
    for (const token of [FORCE, TOKENS['dvla']!]) {
      const res = await api(gw.url, 'GET', '/v1/audit?subject=S1', token);
      expect(res.status).toBe(403);
      expect(res.json.error.code).toBe('forbidden');
      expect(JSON.stringify(res.json)).not.toContain('packet.created');
    }
    expect((await api(gw.url, 'GET', '/v1/audit')).status).toBe(401);
    const bad = await api(gw.url, 'GET', '/v1/audit?limit=100000&since=last-week&dossier=../etc&colour=red', GOV);
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe('query_invalid');
    expect(bad.json.error.details.map((d: { path: string }) => d.path).sort()).toEqual(['colour', 'dossier', 'limit', 'since']);
    expect((await api(gw.url, 'GET', '/v1/audit?subject=S1&subject=S2', GOV)).status).toBe(400);
    expect((await api(gw.url, 'POST', '/v1/audit', GOV, {})).status).toBe(405);
  });

  it('audits each search with the reference and subject as keyed HMACs only', async () => {
    const queries = (await records()).filter((r) => r.action === 'audit.queried');
    expect(queries.length).toBeGreaterThan(0);
    expect(queries.every((r) => r.actor === 'governance')).toBe(true);
    const text = JSON.stringify(queries);
    expect(text).not.toContain('WMP-OCG-2026-00412');
    expect(text).not.toMatch(/"S1"|"S4"/);
    expect(queries.some((r) => Array.isArray((r.filter as any)?.subjectTerms))).toBe(true);
  });

  it('writes a signed checkpoint on demand (governance only)', async () => {
    expect((await api(gw.url, 'POST', '/v1/audit/checkpoint', FORCE)).status).toBe(403);
    const res = await api(gw.url, 'POST', '/v1/audit/checkpoint', GOV);
    expect(res.status).toBe(201);
    expect(res.json.checkpoint).toMatchObject({ kind: 'checkpoint', reason: 'on demand', signature: expect.stringContaining('BEGIN PGP SIGNATURE') });
    const anchor = JSON.parse(await readFile(path.join(gw.stateDir, anchorName(gw.prefix)), 'utf8'));
    expect(anchor).toMatchObject({ seq: res.json.checkpoint.seq, hash: res.json.checkpoint.hash });
  });
});

describe('export', () => {
  let exported: string;

  it('`cordon audit export` writes JSON Lines that verify offline with the public key', async () => {
    exported = path.join(work, 'audit.jsonl');
    const res = cordon('audit', 'export', '--redis', REDIS_URL, '--prefix', gw.prefix, '--out', exported);
    expect(res.code, res.stderr).toBe(0);
    const lines = (await readFile(exported, 'utf8')).trim().split('\n');
    expect(lines.length).toBe((await records()).length);
    expect(JSON.parse(lines[0]!)).toMatchObject({ seq: 1 });
    const ajv = new Ajv2020({ strict: true, allErrors: true });
    addFormats.default(ajv);
    const valid = ajv.compile(JSON.parse(await readFile(path.join(ROOT, 'schemas/audit-event.schema.json'), 'utf8')));
    for (const line of lines) expect(valid(JSON.parse(line)), JSON.stringify(valid.errors)).toBe(true);
    const verify = cordon('audit', 'verify', '--file', exported, '--key', keyFile);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/intact/);

    const since = (await records()).find((r) => r.dossier === dossierId)!.at;
    const part = cordon('audit', 'export', '--redis', REDIS_URL, '--prefix', gw.prefix, '--since', since);
    expect(part.code).toBe(0);
    expect(JSON.parse(part.stdout.split('\n')[0]!)).toMatchObject({ action: 'dossier.received', dossier: dossierId });
    expect(cordon('audit', 'export', '--redis', REDIS_URL, '--prefix', gw.prefix, '--since', 'tuesday').code).toBe(2);
  });

  it('carries no dossier value: no name, date of birth, address, identifier, reference or subject id', async () => {
    const text = await readFile(exported, 'utf8');
    const values = await dossierValues(full, 4);
    for (const must of ['Okafor', '1987-04-12', '14 Cedar Road', 'CV6 5HX', 'QQ123456C', 'WMP-OCG-2026-00412', full.purpose]) expect(values).toContain(must);
    for (const v of values) expect(text, `the export holds "${v}"`).not.toContain(JSON.stringify(v).slice(1, -1));
    // Short ids: no string value anywhere in a record is a subject id (signatures aside, which are base64).
    const strings: string[] = [];
    const collect = (v: unknown, k?: string) => {
      if (typeof v === 'string' && k !== 'signature') strings.push(v);
      else if (Array.isArray(v)) v.forEach((x) => collect(x));
      else if (v && typeof v === 'object') Object.entries(v).forEach(([kk, x]) => collect(x, kk));
    };
    for (const line of text.trim().split('\n')) collect(JSON.parse(line));
    for (const id of ['S1', 'S2', 'S3', 'S4']) expect(strings.filter((s) => new RegExp(`\\b${id}\\b`).test(s)), id).toEqual([]);
  });
});

describe('tampering', () => {
  /** A copy of the live log under its own prefix, to tamper with while the gateway keeps running. */
  async function copy(): Promise<string> {
    const prefix = `cordon-test-tamper-${randomBytes(4).toString('hex')}`;
    copies.push(prefix);
    const rows = await gw.redis.lrange(`${gw.prefix}:audit:log`, 0, -1);
    const head = JSON.parse(rows.at(-1)!) as AuditRecord;
    await gw.redis.rpush(`${prefix}:audit:log`, ...rows);
    await gw.redis.set(`${prefix}:audit:head`, `${head.seq}:${head.hash}:${Date.parse(head.at)}:0`);
    return prefix;
  }
  const verify = (prefix: string) => cordon('audit', 'verify', '--redis', REDIS_URL, '--prefix', prefix, '--key', keyFile);

  it('an intact copy verifies', async () => {
    expect(verify(await copy()).code).toBe(0);
  });

  it('editing one record is caught and the record named', async () => {
    const prefix = await copy();
    const rows = await records(prefix);
    const target = rows.find((r) => r.action === 'match.created' && r.recipient === 'hmrc')!;
    await gw.redis.lset(`${prefix}:audit:log`, target.seq - 1, JSON.stringify({ ...target, recipient: 'dvla' }));
    const res = verify(prefix);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(new RegExp(`BROKEN at record seq ${target.seq} \\(position ${target.seq}\\): content does not match its hash`));
  });

  it('deleting one record is caught and the gap named', async () => {
    const prefix = await copy();
    const target = (await records(prefix)).find((r) => r.action === 'packet.retrieved')!;
    await gw.redis.lset(`${prefix}:audit:log`, target.seq - 1, '__gone__');
    await gw.redis.lrem(`${prefix}:audit:log`, 1, '__gone__');
    const res = verify(prefix);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(new RegExp(`BROKEN at record seq ${target.seq + 1} .*records ${target.seq}–${target.seq} are missing`));
  });

  it('swapping two records is caught and the first out of place named', async () => {
    const prefix = await copy();
    const rows = await gw.redis.lrange(`${prefix}:audit:log`, 0, -1);
    const i = rows.findIndex((r) => r.includes('"dossier.received"'));
    await gw.redis.lset(`${prefix}:audit:log`, i, rows[i + 1]!);
    await gw.redis.lset(`${prefix}:audit:log`, i + 1, rows[i]!);
    const res = verify(prefix);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(new RegExp(`BROKEN at record seq ${i + 2} \\(position ${i + 1}\\): expected seq ${i + 1}`));
  });

  it('cutting the newest records off is caught against the head, and against the anchor even with the head reset', async () => {
    const prefix = await copy();
    const rows = await records(prefix);
    await gw.redis.rpop(`${prefix}:audit:log`, 2);
    const res = verify(prefix);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(new RegExp(`records ${rows.length - 1}–${rows.length} are missing \\(truncated\\)`));

    // The intruder also resets the head; the anchor in the state directory still knows better.
    const last = rows.at(-3)!;
    await gw.redis.set(`${prefix}:audit:head`, `${last.seq}:${last.hash}:${Date.parse(last.at)}:0`);
    expect(verify(prefix).code).toBe(0); // the public key alone cannot tell
    const state = path.join(work, `state-${prefix}`);
    await import('node:fs/promises').then((fs) => fs.mkdir(state, { recursive: true }));
    await copyFile(path.join(gw.stateDir, 'gateway-key.asc'), path.join(state, 'gateway-key.asc'));
    const cp = rows.filter((r) => r.kind === 'checkpoint').at(-1)!;
    expect(cp.seq).toBeGreaterThan(last.seq); // the on-demand checkpoint is among the cut records
    await writeFile(path.join(state, anchorName(prefix)), JSON.stringify({ prefix, seq: cp.seq, hash: cp.hash, at: cp.at }));
    const anchored = cordon('audit', 'verify', '--redis', REDIS_URL, '--prefix', prefix, '--state', state);
    expect(anchored.code).toBe(1);
    expect(anchored.stderr).toMatch(new RegExp(`anchors a checkpoint at seq ${cp.seq}.*truncated`));
  });
});
