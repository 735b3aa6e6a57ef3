/**
 * `POST /v1/preview` on a running gateway: governance only; what the partner would receive is exactly
 * what its real packet holds (up to the per-packet placeholders), with the decision trace; every use is
 * audited without values; bad requests are answered with paths; if the audit cannot be written there is
 * no preview.
 */
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import express from 'express';
import { pino } from 'pino';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../gateway/audit/log.js';
import { RedisAuditChain } from '../../gateway/store/audit.js';
import { ClientRegistry, loadClientsFile } from '../../gateway/config/clients.js';
import { decryptAndVerify, parseArmoredPrivateKey, parseArmoredPublicKey } from '../../gateway/crypto/openpgp.js';
import { createApp, type HttpDeps } from '../../gateway/http/app.js';
import { recordViolations } from '../helpers/openapi.js';
import { buildLiveSet } from '../../gateway/policy/live.js';
import { loadPolicySet } from '../../gateway/policy/load.js';
import { PolicyPreview } from '../../gateway/governance/preview.js';
import { Keys } from '../../gateway/store/redis.js';
import { api, fixture, PARTNERS, ROOT, startTestGateway, TOKENS, waitSettled, type TestGateway } from '../helpers/gateway.js';

let gw: TestGateway;
const full = fixture('dossier-full.json') as any;
const minimal = fixture('dossier-minimal.json') as any;

beforeAll(async () => {
  gw = await startTestGateway();
});
afterAll(async () => {
  await gw?.stop();
});

const preview = (body: unknown, token: string | undefined = TOKENS.governance, headers: Record<string, string> = {}) => api(gw.url, 'POST', '/v1/preview', token, body, headers);

async function audit() {
  return new AuditLog(new RedisAuditChain(gw.redis, new Keys(gw.prefix))).read();
}

/** Replace every ref (`ref_…`) by its order of first appearance, so two packets can be compared. */
function normaliseRefs(doc: unknown): unknown {
  const seen = new Map<string, string>();
  return JSON.parse(JSON.stringify(doc), (_k, v) => {
    if (typeof v === 'string' && /^ref_[A-Za-z0-9_]+$/.test(v)) {
      if (!seen.has(v)) seen.set(v, `REF${seen.size + 1}`);
      return seen.get(v);
    }
    return v;
  });
}

describe('POST /v1/preview', () => {
  it('shows each partner exactly what its real packet holds, with placeholders for per-packet values', async () => {
    const pushed = await api(gw.url, 'POST', '/v1/dossiers', TOKENS['west-midlands-rocu'], full, { 'idempotency-key': 'preview-compare' });
    expect(pushed.status).toBe(202);
    const status = await waitSettled(gw.url, pushed.json.id);
    const verify = await parseArmoredPublicKey((await api(gw.url, 'GET', '/v1/keys/gateway')).text);
    for (const partner of PARTNERS) {
      const res = await preview({ dossier: full, partner });
      expect(res.status, res.text).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      const d = status.deliveries.find((x: { partner: string }) => x.partner === partner);
      expect(res.json.blocked, partner).toBeNull();
      expect(d.state, partner).toBe('delivered');
      const armored = await api(gw.url, 'GET', `/v1/packets/${d.packetId}`, TOKENS[partner]);
      const secret = await parseArmoredPrivateKey(await readFile(path.join(ROOT, `test/fixtures/keys/${partner}.sec.asc`), 'utf8'));
      const real = JSON.parse((await decryptAndVerify(armored.text, secret, [verify])).data);
      if (real.request) {
        // Blind-match: the real first packet holds blinded keys only; the preview shows the identifiers they are made from.
        expect(real.blindMatch.agreement).toEqual(res.json.match.plaintext.match.agreement);
        expect(JSON.stringify(real)).not.toContain(full.subjects[0].name.family);
        continue;
      }
      if (res.json.match) {
        // After-match: the real first packet is the match request, and the preview shows it as step one.
        expect(d.matchPacketId, partner).toBe(d.packetId);
        const step = res.json.match.plaintext;
        expect(step.match.id).toBe('pkt_preview');
        expect(step.match.policy).toEqual(real.match.policy);
        expect(step.match.agreement).toEqual(real.match.agreement);
        const refless = (subjects: Array<Record<string, unknown>>) => subjects.map(({ ref: _ref, ...rest }) => rest);
        expect(refless(step.subjects), partner).toEqual(refless(real.subjects));
        expect(res.json.match.disclosed.length).toBeGreaterThan(0);
        continue;
      }
      const shown = res.json.plaintext;
      // The same packet-shaped plaintext: same header fields, same policy and agreement.
      expect(Object.keys(shown.packet).sort()).toEqual(Object.keys(real.packet).sort());
      expect(shown.packet.id).toBe('pkt_preview');
      expect(shown.packet.policy).toEqual(real.packet.policy);
      expect(shown.packet.agreement).toEqual(real.packet.agreement);
      expect(shown.packet.classification).toEqual(real.packet.classification);
      expect(shown.packet.handling).toEqual(real.packet.handling);
      // The same dossier, up to the subject refs (random per packet) and pseudonyms (none in the samples).
      expect(normaliseRefs(shown.dossier), partner).toEqual(normaliseRefs(real.dossier));
      expect(JSON.stringify(shown.dossier)).not.toMatch(/"S[1-4]"/);
      // The trace explains it: rule → operation → path.
      expect(res.json.trace.length).toBeGreaterThan(0);
      for (const t of res.json.trace) expect(Object.keys(t)).toEqual(expect.arrayContaining(['rule', 'op', 'path', 'scope']));
      expect(res.json.policy.revision).toBe(real.packet.policy.revision);
    }
  });

  it('traces exclusions and rule operations per subject', async () => {
    const res = await preview({ dossier: full, partner: 'immigration-enforcement' });
    expect(res.json.trace).toContainEqual({ rule: 'never-victims-or-witnesses', scope: 'subject', subject: 'S3', subjectIndex: 2, path: 'subjects[]', op: 'exclude' });
    expect(res.json.trace).toContainEqual(expect.objectContaining({ rule: 'gateway', path: 'subjects[].identifiers.pnc', op: 'strip', subject: 'S1' }));
    expect(res.json.refs.map((r: { subject: string }) => r.subject)).toEqual(['S1', 'S2']);
    expect(res.json.plaintext.dossier.subjects.map((s: { id: string }) => s.id)).toEqual(['ref_preview_1', 'ref_preview_2']);
  });

  it('reports a block with its reason and no plaintext', async () => {
    const res = await preview({ dossier: minimal, partner: 'childrens-services' });
    expect(res.status).toBe(200);
    expect(res.json.blocked).toMatchObject({ reason: 'no_shareable_subjects' });
    expect(res.json.plaintext).toBeNull();
    expect(res.json.trace).toContainEqual(expect.objectContaining({ rule: 'known-children-only', op: 'exclude' }));
  });

  it('audits every use (who, which partner, which revision) and never a value; stores nothing else', async () => {
    const before = await gw.redis.keys(`${gw.prefix}:*`);
    const res = await preview({ dossier: { ...full, reference: 'WMP-PREVIEW-ONLY-1' }, partner: 'hmrc' });
    expect(res.status).toBe(200);
    const records = (await audit()).filter((r) => r.action === 'preview.used');
    const last = records.at(-1)!;
    expect(last).toMatchObject({ kind: 'consultation', action: 'preview.used', actor: 'governance', recipient: 'hmrc', policyRevision: res.json.policy.revision });
    const text = JSON.stringify(last);
    for (const value of ['WMP-PREVIEW-ONLY-1', 'Okafor', 'QQ123456C', 'Cedar']) expect(text).not.toContain(value);
    const blocked = (await preview({ dossier: minimal, partner: 'childrens-services' })).json;
    expect((await audit()).filter((r) => r.action === 'preview.used').at(-1)).toMatchObject({ recipient: 'childrens-services', reason: blocked.blocked.reason });
    // No dossier, no packet, no key of any kind was created by previews (the audit trail aside).
    const after = await gw.redis.keys(`${gw.prefix}:*`);
    // (Rate-limit counters hold a client id and a number: they may roll over to a new window.)
    const added = after.filter((k) => !before.includes(k) && !k.includes(':audit') && !k.includes(':rl:'));
    expect(added).toEqual([]);
    for (const k of after.filter((x) => !x.includes(':audit'))) {
      const type = await gw.redis.type(k);
      const content = type === 'string' ? await gw.redis.get(k) : type === 'hash' ? JSON.stringify(await gw.redis.hgetall(k)) : type === 'list' ? JSON.stringify(await gw.redis.lrange(k, 0, -1)) : '';
      expect(content ?? '').not.toContain('WMP-PREVIEW-ONLY-1');
    }
  });

  it('is for the governance role only', async () => {
    expect((await preview({ dossier: full, partner: 'dvla' }, '')).status).toBe(401);
    expect((await preview({ dossier: full, partner: 'dvla' }, TOKENS.dvla)).status).toBe(403);
    expect((await preview({ dossier: full, partner: 'dvla' }, TOKENS['west-midlands-rocu'])).status).toBe(403);
  });

  it('answers bad requests with every problem and its path', async () => {
    const bad = await preview({ dossier: { ...full, createdAt: 'yesterday', subjects: [{ ...full.subjects[0], dateOfBirth: '1987-13-45' }] }, partner: 'dvla', extra: 1 });
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe('schema_violation');
    const paths = bad.json.error.details.map((d: { path: string }) => d.path);
    expect(paths).toEqual(expect.arrayContaining(['/extra', '/dossier/createdAt', '/dossier/subjects/0/dateOfBirth']));

    const missing = await preview({ partner: 'Not An Id' });
    expect(missing.status).toBe(400);
    expect(missing.json.error.details.map((d: { path: string }) => d.path).sort()).toEqual(['/dossier', '/partner']);

    expect((await preview([1, 2])).status).toBe(400);
    expect((await preview('{"dossier":', TOKENS.governance, { 'content-type': 'application/json' })).json.error.code).toBe('invalid_json');
    expect((await preview('x', TOKENS.governance, { 'content-type': 'text/plain' })).status).toBe(415);
    const get = await api(gw.url, 'GET', '/v1/preview', TOKENS.governance);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
  });

  it('says clearly when the partner does not exist, and refuses SECRET material outright', async () => {
    const unknown = await preview({ dossier: full, partner: 'mi5' });
    expect(unknown.status).toBe(404);
    expect(unknown.json.error.code).toBe('not_found');
    expect(unknown.json.error.message).toMatch(/No partner "mi5" in policy revision [0-9a-f]{16}/);
    expect(unknown.json.error.details[0].message).toContain('dvla');
    const secret = await preview({ dossier: { ...full, classification: 'SECRET' }, partner: 'dvla' });
    expect(secret.status).toBe(422);
    expect(secret.json.error.code).toBe('classification_refused');
    expect(secret.json.error.details[0].path).toBe('/dossier/classification');
  });
});

describe('POST /v1/preview when the audit trail cannot be written', () => {
  it('shows nothing (503 audit_unavailable)', async () => {
    const set = await loadPolicySet(path.join(ROOT, 'policies'));
    const live = await buildLiveSet(set, async () => ({}));
    const broken = { append: async () => Promise.reject(new Error('redis is down')) };
    const clients = new ClientRegistry(await loadClientsFile(path.join(ROOT, 'policies/clients.sample.yaml')));
    const deps = {
      logger: pino({ level: 'silent' }),
      bodyLimitBytes: 1024 * 1024,
      clients: () => clients,
      audit: broken as unknown as AuditLog,
      intake: {} as never,
      packets: {} as never,
      policies: () => set,
      gatewayPublicKey: '',
      readiness: async () => ({}),
      trustProxyHops: 0,
      preview: new PolicyPreview({ live: () => live, audit: broken }),
      observe: recordViolations,
    } satisfies HttpDeps;
    const app: express.Express = createApp(deps);
    const res = await request(app).post('/v1/preview').set('authorization', `Bearer ${TOKENS.governance}`).send({ dossier: full, partner: 'dvla' });
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('audit_unavailable');
    expect(JSON.stringify(res.body)).not.toContain('Okafor');
  });
});
