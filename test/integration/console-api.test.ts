/**
 * The governance console's JSON routes and page on a running gateway (real Redis, real keys, real HTTP)
 * over a copy of the sample policies: agreements with their status, the revisions served, the diff
 * against a candidate (paths checked, sizes capped, invalid sets explained, never written to the
 * policy directory, audited) and against an earlier revision; the page's files under the CSP.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANDIDATE_MAX_FILE_BYTES } from '../../gateway/governance/candidate.js';
import { CONSOLE_DIR } from '../../gateway/http/routes-console.js';
import { api, ROOT, startTestGateway, TOKENS, until, type TestGateway } from '../helpers/gateway.js';
import { copyPolicies, editYaml } from '../helpers/policies.js';

const GOV = TOKENS.governance!;
let gw: TestGateway;
let policies: { dir: string; cleanup(): Promise<void> };

const diff = (body: unknown) => api(gw.url, 'POST', '/v1/governance/diff', GOV, body);

async function policyFile(rel: string): Promise<string> {
  return readFile(path.join(policies.dir, rel), 'utf8');
}

async function withoutField(rel: string, field: string): Promise<string> {
  const doc = YAML.parseDocument(await policyFile(rel));
  doc.deleteIn(['fields', field]);
  return doc.toString();
}

async function candidateDirs(): Promise<string[]> {
  return (await readdir(os.tmpdir())).filter((n) => n.startsWith('cordon-candidate-'));
}

beforeAll(async () => {
  policies = await copyPolicies();
  // One agreement past its review date, one due for review soon: the statuses the console shows.
  await editYaml(path.join(policies.dir, 'partners/hmrc.yaml'), ['agreement', 'reviewBy'], '2026-01-31');
  const soon = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);
  await editYaml(path.join(policies.dir, 'partners/dvla.yaml'), ['agreement', 'reviewBy'], soon);
  gw = await startTestGateway({ role: 'api', policyDir: policies.dir });
});

afterAll(async () => {
  await gw?.stop();
  await policies?.cleanup();
});

describe('GET /v1/governance/agreements', () => {
  it('lists every partner with its agreement dates, status, disclosure mode and answers', async () => {
    const res = await api(gw.url, 'GET', '/v1/governance/agreements', GOV);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const byId = Object.fromEntries(res.json.partners.map((p: { partner: { id: string } }) => [p.partner.id, p]));
    expect(Object.keys(byId)).toHaveLength(6);
    expect(byId.hmrc.agreement).toMatchObject({ reference: 'ISA-WMP-HMRC-FIS-2025-04', reviewBy: '2026-01-31', status: 'expired', daysLeft: null, disclosure: 'after-match' });
    expect(byId.dvla.agreement.status).toBe('review_due');
    expect(byId.dvla.agreement.daysLeft).toBeGreaterThanOrEqual(29);
    expect(byId['council-housing'].agreement).toMatchObject({ status: 'in_force', disclosure: 'immediate', inForceFrom: '2025-04-01' });
    expect(byId['immigration-enforcement'].agreement).toMatchObject({ disclosure: 'after-match', followUp: 'approval' });
    expect(byId['council-housing'].answers).toEqual({ hit: 0, noTrace: 0, withdrawn: 0, hitRate: null });
    expect(res.json.reviewWarnDays).toBe(90);
  });
});

describe('POST /v1/governance/diff', () => {
  it('diffs the live set against changed files laid over it, never writing them to the policy directory, and audits it', async () => {
    const before = await policyFile('partners/dvla.yaml');
    const res = await diff({ candidate: { base: 'live', files: { 'partners/dvla.yaml': await withoutField('partners/dvla.yaml', 'subjects[].vehicles[].colour') } } });
    expect(res.status, res.text).toBe(200);
    const live = (await api(gw.url, 'GET', '/v1/governance/revisions', GOV)).json.live.revision;
    expect(res.json.from).toEqual({ revision: live, label: 'live' });
    expect(res.json.to.revision).toMatch(/^[0-9a-f]{16}$/);
    expect(res.json.to.revision).not.toBe(live);
    expect(res.json.dossiers.map((d: { dossier: string }) => d.dossier)).toEqual(['dossier-full.json', 'dossier-minimal.json']);
    const dvla = res.json.dossiers[0].partners.find((p: { partner: string }) => p.partner === 'dvla');
    expect(dvla.paths).toEqual([{ path: 'subjects[].vehicles[].colour', change: 'lost', from: 'keep' }]);
    expect(res.json.dossiers[0].partners.filter((p: { unchanged: boolean }) => !p.unchanged).map((p: { partner: string }) => p.partner)).toEqual(['dvla']);
    expect(await policyFile('partners/dvla.yaml')).toBe(before);
    expect(await candidateDirs()).toEqual([]);

    const audit = await api(gw.url, 'GET', '/v1/audit?kind=consultation&limit=500', GOV);
    const diffed = audit.json.records.filter((r: { action: string }) => r.action === 'policy.diffed');
    expect(diffed.at(-1)).toMatchObject({ actor: 'governance', policyRevision: live, fromRevision: live, toRevision: res.json.to.revision, against: 'candidate', dossiers: 2 });
  });

  it('diffs on a dossier given in the body, and refuses one that breaks the schema with its path', async () => {
    const dossier = JSON.parse(await readFile(path.join(ROOT, 'examples/dossier-full.json'), 'utf8'));
    const ok = await diff({ dossier, candidate: { base: 'live', files: { 'partners/dvla.yaml': await policyFile('partners/dvla.yaml') } } });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.json.dossiers).toHaveLength(1);
    expect(ok.json.changed).toBe(0);
    const bad = await diff({ dossier: { ...dossier, subjects: [{ ...dossier.subjects[0], dateOfBirth: 'soon' }] }, revision: '0123456789abcdef' });
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe('schema_violation');
    expect(bad.json.error.details.map((d: { path: string }) => d.path)).toContain('/dossier/subjects/0/dateOfBirth');
  });

  it('takes a whole folder (base none); a set that does not load answers 422 candidate_invalid with every problem', async () => {
    const files: Record<string, string> = {};
    for (const rel of (await api(gw.url, 'GET', '/v1/governance/revisions', GOV)).json.live.files as string[]) files[rel] = await policyFile(rel);
    const whole = await diff({ candidate: { base: 'none', files } });
    expect(whole.status, whole.text).toBe(200);
    expect(whole.json.changed).toBe(0);
    expect(whole.json.to.revision).toBe(whole.json.from.revision);

    const broken = await diff({ candidate: { base: 'none', files: { ...files, 'partners/hmrc.yaml': 'partner: [unclosed\n' } } });
    expect(broken.status).toBe(422);
    expect(broken.json.error.code).toBe('candidate_invalid');
    expect(broken.json.error.details[0].path).toMatch(/^\/candidate\/files\/partners\/hmrc\.yaml/);

    const partial = await diff({ candidate: { base: 'none', files: { 'partners/dvla.yaml': files['partners/dvla.yaml'] } } });
    expect(partial.status).toBe(422);
    const paths = partial.json.error.details.map((d: { path: string }) => d.path).join('\n');
    expect(paths).toContain('/candidate/files/gateway.yaml');
    expect(await candidateDirs()).toEqual([]);
  });

  it('refuses paths outside the set, non-text content and oversized files with their paths, writing nothing', async () => {
    for (const rel of ['clients.yaml', 'tests/dvla-full.yaml', 'partners/sub/x.yaml', 'partners.d/x.yaml', '../evil.yaml', '/etc/cordon.yaml', 'a/b/c/d.yaml', 'partners/.hidden.yaml', 'partners/x.js', 'partners\\x.yaml', './gateway.yaml']) {
      const res = await diff({ candidate: { base: 'live', files: { [rel]: 'x: 1\n' } } });
      expect(res.status, rel).toBe(400);
      expect(res.json.error.code).toBe('schema_violation');
      expect(res.json.error.details[0].path).toBe(`/candidate/files/${rel.replace(/~/g, '~0').replace(/\//g, '~1')}`);
    }
    const typed = await diff({ candidate: { base: 'live', files: { 'gateway.yaml': 42 } } });
    expect(typed.status).toBe(400);
    expect(typed.json.error.details).toEqual([{ path: '/candidate/files/gateway.yaml', message: 'must be the file content as a string' }]);
    const big = await diff({ candidate: { base: 'live', files: { 'gateway.yaml': `# ${'x'.repeat(CANDIDATE_MAX_FILE_BYTES)}\n` } } });
    expect(big.status).toBe(400);
    expect(big.json.error.details[0].message).toMatch(/larger than/);
    const files = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`keys/k${i}.asc`, 'x'.repeat(CANDIDATE_MAX_FILE_BYTES - 10)]));
    const total = await diff({ candidate: { base: 'live', files } });
    expect(total.status).toBe(413);
    expect(total.json.error.code).toBe('payload_too_large');
    const odd = await diff({ candidate: { base: 'elsewhere', files: { 'gateway.yaml': '' }, dir: '/etc' } });
    expect(odd.status).toBe(400);
    expect(odd.json.error.details.map((d: { path: string }) => d.path).sort()).toEqual(['/candidate/base', '/candidate/dir']);
    expect(await candidateDirs()).toEqual([]);
  });

  it('needs exactly one of candidate or revision; an unknown revision is 404', async () => {
    for (const body of [{}, { revision: 'abcdefabcdefabcd', candidate: { files: {} } }]) {
      const res = await diff(body);
      expect(res.status).toBe(400);
      expect(res.json.error.details.some((d: { path: string }) => d.path === '')).toBe(true);
    }
    expect((await diff({ revision: '../../etc' })).json.error.details).toEqual([{ path: '/revision', message: 'must be a policy revision (16 hex digits)' }]);
    const unknown = await diff({ revision: 'abcdefabcdefabcd' });
    expect(unknown.status).toBe(404);
    expect(unknown.json.error.details[0].path).toBe('/revision');
  });

  it('diffs an earlier revision this process served against the live one, after a reload', async () => {
    const before = (await api(gw.url, 'GET', '/v1/governance/revisions', GOV)).json;
    expect(before.earlier).toEqual([]);
    await writeFile(path.join(policies.dir, 'partners/dvla.yaml'), await withoutField('partners/dvla.yaml', 'subjects[].vehicles[].make'));
    const after = await until('the reload', async () => {
      const r = (await api(gw.url, 'GET', '/v1/governance/revisions', GOV)).json;
      return r.live.revision !== before.live.revision ? r : undefined;
    });
    expect(after.earlier).toMatchObject([{ revision: before.live.revision, loadedAt: before.live.loadedAt }]);
    expect(Date.parse(after.earlier[0].replacedAt)).toBeGreaterThan(Date.parse(before.live.loadedAt));
    const res = await diff({ revision: before.live.revision });
    expect(res.status, res.text).toBe(200);
    expect(res.json.from).toEqual({ revision: before.live.revision, label: 'earlier' });
    expect(res.json.to).toEqual({ revision: after.live.revision, label: 'live' });
    const dvla = res.json.dossiers[0].partners.find((p: { partner: string }) => p.partner === 'dvla');
    expect(dvla.paths).toEqual([{ path: 'subjects[].vehicles[].make', change: 'lost', from: 'keep' }]);
    // The live revision itself is not an "earlier" one.
    expect((await diff({ revision: after.live.revision })).status).toBe(404);
  });
});

describe('GET /v1/governance/examples', () => {
  it('lists the example dossiers and serves one; nothing else', async () => {
    expect((await api(gw.url, 'GET', '/v1/governance/examples', GOV)).json).toEqual({ examples: ['dossier-full.json', 'dossier-minimal.json'] });
    const full = await api(gw.url, 'GET', '/v1/governance/examples/dossier-full.json', GOV);
    expect(full.json.reference).toBe('WMP-OCG-2026-00412');
    for (const name of ['..%2Fpackage.json', 'package.json', '%2e%2e']) expect((await api(gw.url, 'GET', `/v1/governance/examples/${name}`, GOV)).status).toBe(404);
  });
});

describe('GET /v1/governance/isa/:partner', () => {
  it('renders the agreement from the live set: sections for the page, Markdown and HTML for download; 404 for an unknown partner', async () => {
    const res = await api(gw.url, 'GET', '/v1/governance/isa/council-housing', GOV);
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({ partner: 'council-housing', reference: 'ISA-WMP-CCC-HSG-2025-01', status: 'in_force' });
    expect(res.json.revision).toBe((await api(gw.url, 'GET', '/v1/governance/revisions', GOV)).json.live.revision);
    expect(res.json.sections.map((s: { heading: string }) => s.heading)[3]).toBe('4. Data items');
    expect(res.json.markdown).toContain('## 8. Security');
    expect(res.json.html).toMatch(/^<!doctype html>/);
    expect(res.json.html).not.toMatch(/<script/i);
    // The gateway names its own signing key in the security section.
    const security = JSON.stringify(res.json.sections[7]);
    expect(security).toContain('Gateway (signs packets)');
    const unknown = await api(gw.url, 'GET', '/v1/governance/isa/nobody', GOV);
    expect(unknown.status).toBe(404);
    expect(unknown.json.error.code).toBe('not_found');
  });
});

describe('GET /console', () => {
  it('serves the page under the CSP, with scripts from the gateway only and no inline script, style or handler', async () => {
    const res = await api(gw.url, 'GET', '/console');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const csp = String(res.headers.get('content-security-policy'));
    expect(csp).toMatch(/default-src 'self'/);
    expect(csp).toMatch(/script-src 'self'(;|$)/);
    const html = res.text;
    for (const [, attrs, body] of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
      expect(attrs).toMatch(/\bsrc="\/console\/[a-z]+\.js"/);
      expect(body!.trim()).toBe('');
    }
    expect(html).not.toMatch(/\son[a-z]+\s*=/i);
    expect(html).not.toMatch(/<style\b|\sstyle\s*=/i);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//i);
    expect(html).not.toMatch(/<input[^>]*name="token"/);
    for (const [, ref] of html.matchAll(/(?:src|href)="(\/[^"]+)"/g)) expect((await api(gw.url, 'GET', ref!)).status).toBe(200);
  });

  it('every script module is served, keeps the token in sessionStorage and never parses data as HTML', async () => {
    const names = (await readdir(CONSOLE_DIR)).filter((n) => n.endsWith('.js'));
    expect(names.sort()).toEqual(['audit.js', 'common.js', 'console.js', 'diff.js', 'isa.js', 'partners.js', 'preview.js']);
    let all = '';
    for (const name of names) {
      const res = await api(gw.url, 'GET', `/console/${name}`);
      expect(res.status, name).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/javascript/);
      all += res.text;
    }
    expect(all).toContain('sessionStorage');
    expect(all).toMatch(/Authorization: `Bearer \$\{token\}`/);
    for (const banned of ['innerHTML', 'outerHTML', 'insertAdjacentHTML', 'document.write', 'localStorage', 'document.cookie', 'eval(', 'new Function', 'location.search', 'location.hash']) {
      expect(all, banned).not.toContain(banned);
    }
    expect((await api(gw.url, 'GET', '/console/index.html')).status).toBe(404);
    expect((await api(gw.url, 'GET', '/console/../routes-console.ts')).status).toBe(404);
    expect((await api(gw.url, 'POST', '/console')).status).toBe(405);
  });

  it('ships in the image: the build copies the page files to dist/', async () => {
    // @ts-expect-error: plain JavaScript, no declarations
    const { assets } = (await import('../../scripts/build.mjs')) as { assets: (dir: string) => Promise<string[]> };
    const files = (await readdir(CONSOLE_DIR)).map((f) => path.join('http', 'console', f));
    expect(await assets(path.join(ROOT, 'gateway'))).toEqual(expect.arrayContaining(files));
  });
});
