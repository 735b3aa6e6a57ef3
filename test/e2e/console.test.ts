/**
 * The governance console in a real browser: headless Chromium (Debian's, at /usr/bin/chromium or
 * CHROMIUM_PATH) driven by playwright-core against a real gateway (real Redis, real keys, real HTTP) on
 * a copy of the sample policies. Each view is opened as a person would, and the assertions are on what
 * is on the screen: a wrong token refused, the partners' agreements with their answer counts, one
 * dossier previewed for every partner with the subjects aligned by id and the trace on click, diffs
 * against a candidate chosen in the page and against an earlier revision, and audit search results
 * (the page's own searches among them). The CSP header is checked and no CSP violation may be logged.
 * A screenshot of each view is written to test-output/console/.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile, cp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decryptAndVerify, parseArmoredPrivateKey, parseArmoredPublicKey } from '../../gateway/crypto/openpgp.js';
import { api, fixture, ROOT, startTestGateway, TOKENS, until, waitSettled, type TestGateway } from '../helpers/gateway.js';
import YAML from 'yaml';
import { copyPolicies } from '../helpers/policies.js';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const OUT = path.join(ROOT, 'test-output', 'console');
const FORCE = TOKENS['west-midlands-rocu']!;
const GOV = TOKENS.governance!;
const PARTNER_COUNT = 7;

let gw: TestGateway;
let policies: { dir: string; cleanup(): Promise<void> };
let scratch: string;
let browser: Browser;
let page: Page;
let dossierId: string;
/** Every console message that reports a Content-Security-Policy violation, and every page error. */
const violations: string[] = [];

/** Deletes a key of a policy file, keeping the rest of it as it is. */
async function dropKey(file: string, at: string[]): Promise<void> {
  const doc = YAML.parseDocument(await readFile(file, 'utf8'));
  expect(doc.hasIn(at)).toBe(true);
  doc.deleteIn(at);
  await writeFile(file, doc.toString());
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: true });
}

/** The text of every cell of a table row, by the row's data-subject. */
async function previewRow(subject: string): Promise<Record<string, string>> {
  return page.$$eval(`#preview-table tbody tr[data-subject="${subject}"] td`, (tds) => Object.fromEntries(tds.map((td) => [(td as HTMLElement).dataset.partner!, (td.textContent ?? '').trim()])));
}

async function useToken(token: string): Promise<void> {
  await page.fill('#token', token);
  await page.click('#token-form button[type="submit"]');
}

async function tab(name: string): Promise<void> {
  await page.click(`#tabs button[data-view="${name}"]`);
  await page.waitForSelector(`#view-${name}:not([hidden])`);
}

/** Council housing answers hit for Daniel (S1) and no trace for Samuel (S2): the counts the partners view shows. */
async function councilAnswers(): Promise<void> {
  const status = await api(gw.url, 'GET', `/v1/dossiers/${dossierId}`, FORCE);
  const packet = status.json.deliveries.find((d: { partner: string }) => d.partner === 'council-housing').packetId as string;
  const res = await api(gw.url, 'GET', `/v1/packets/${packet}`, TOKENS['council-housing']);
  const secret = await parseArmoredPrivateKey(await readFile(path.join(ROOT, 'test/fixtures/keys/council-housing.sec.asc'), 'utf8'));
  const gatewayKey = await parseArmoredPublicKey((await api(gw.url, 'GET', '/v1/keys/gateway')).text);
  const { data } = await decryptAndVerify(res.text, secret, [gatewayKey]);
  const refs = Object.fromEntries((JSON.parse(data).dossier.subjects as Array<{ id: string; name: { given: string } }>).map((s) => [s.name.given, s.id]));
  const results = [
    { subject: refs.Daniel, result: 'hit' },
    { subject: refs.Samuel, result: 'no_trace' },
  ];
  const answered = await api(gw.url, 'POST', `/v1/packets/${packet}/matches`, TOKENS['council-housing'], { schema: 'cordon.matches/v1', packet, results });
  expect(answered.status, answered.text).toBe(202);
}

beforeAll(async () => {
  await mkdir(OUT, { recursive: true });
  scratch = await mkdtemp(path.join(os.tmpdir(), 'cordon-console-'));
  policies = await copyPolicies();
  gw = await startTestGateway({ policyDir: policies.dir });
  const res = await api(gw.url, 'POST', '/v1/dossiers', FORCE, fixture('dossier-full.json'));
  expect(res.status, res.text).toBe(202);
  dossierId = res.json.id;
  await waitSettled(gw.url, dossierId);
  await councilAnswers();

  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [] });
  page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to (execute|load|apply|connect|evaluate)/i.test(m.text())) violations.push(m.text());
  });
  page.on('pageerror', (err) => violations.push(`page error: ${err.message}`));
  // Runs before the page's own scripts, outside its CSP: every violation the browser reports.
  await page.addInitScript(() => {
    const seen: string[] = [];
    (window as unknown as { cspViolations: string[] }).cspViolations = seen;
    document.addEventListener('securitypolicyviolation', (e) => seen.push(e.effectiveDirective));
  });
});

afterAll(async () => {
  await browser?.close();
  await gw?.stop();
  await policies?.cleanup();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('the governance console in headless Chromium', () => {
  it('is served under the CSP with no inline script, and refuses a wrong token and a partner token', async () => {
    const res = await page.goto(`${gw.url}/console`);
    expect(res?.status()).toBe(200);
    const csp = (await res!.allHeaders())['content-security-policy'] ?? '';
    expect(csp).toMatch(/default-src 'self'/);
    expect(csp).toMatch(/script-src 'self'(;|$)/);
    expect(csp).toMatch(/script-src-attr 'none'/);
    expect(await page.$$eval('script', (s) => s.map((x) => ({ src: x.getAttribute('src'), body: x.textContent })))).toEqual([{ src: '/console/console.js', body: '' }]);
    await expect(page.textContent('#status')).resolves.toContain('Enter a governance token');

    await useToken('not-a-real-token');
    await page.waitForSelector('#status.error');
    expect(await page.textContent('#status')).toMatch(/HTTP 401 unauthenticated/);
    expect(await page.isHidden('#tabs')).toBe(true);
    expect(await page.evaluate(() => sessionStorage.getItem('cordon.console.token'))).toBeNull();

    await useToken(TOKENS.dvla!);
    await page.waitForFunction(() => /403/.test(document.getElementById('status')!.textContent ?? ''));
    expect(await page.textContent('#status')).toMatch(/HTTP 403 forbidden/);
    expect(await page.isHidden('#tabs')).toBe(true);
    expect(await page.$$('#partners-table')).toHaveLength(0);
    await shot('0-token-refused');
  });

  it('partners view: every partner with its agreement, review date, status, disclosure mode and answers', async () => {
    await useToken(GOV);
    await page.waitForSelector('#status.ok');
    expect(await page.evaluate(() => sessionStorage.getItem('cordon.console.token'))).toBe(GOV);
    expect(await page.evaluate(() => localStorage.length + document.cookie.length)).toBe(0);
    await page.waitForSelector('#partners-table tbody tr');
    expect(await page.$$('#partners-table tbody tr')).toHaveLength(PARTNER_COUNT);
    const row = async (id: string) => (await page.textContent(`#partners-table tr[data-partner="${id}"]`))!;
    const dvla = await row('dvla');
    expect(dvla).toContain('Driver and Vehicle Licensing Agency');
    expect(dvla).toContain('ISA-WMP-DVLA-2025-02');
    expect(dvla).toContain('2028-04-30');
    expect(dvla).toMatch(/in force \(\d+ days left\)/);
    expect(dvla).toContain('immediate');
    expect(await row('dwp-benefits')).toContain('after-match');
    // Council housing's answers on the dossier pushed before: one hit, one no trace.
    const cells = await page.$$eval('#partners-table tr[data-partner="council-housing"] td.num', (tds) => tds.map((t) => t.textContent));
    expect(cells).toEqual(['1', '1', '50 %', '0']);
    await shot('1-partners');
  });

  it('preview view: one dossier for every partner side by side, aligned by subject id, with the trace on click', async () => {
    await tab('preview');
    await page.waitForFunction(() => (document.getElementById('preview-dossier') as HTMLTextAreaElement).value.includes('WMP-OCG-2026-00412'));
    await page.click('#preview-form button[type="submit"]');
    await page.waitForSelector('#preview-table');
    const partners = await page.$$eval('#preview-table thead th[data-partner]', (ths) => ths.map((t) => (t as HTMLElement).dataset.partner));
    expect(partners).toHaveLength(PARTNER_COUNT);
    expect(await page.$$eval('#preview-table tbody tr', (trs) => trs.map((t) => (t as HTMLElement).dataset.subject))).toEqual(['', 'S1', 'S2', 'S3', 'S4']);
    // Partners asked first say what the match request carries; the others are sent at once.
    expect(await page.textContent('#preview-table thead th[data-partner="immigration-enforcement"] .match')).toMatch(/^asked first: a match request on .*name\.family.*; the cells are what follows a hit \(once the force approves\)$/);
    expect(await page.$$('#preview-table thead th[data-partner="dvla"] .match')).toHaveLength(0);

    // DVLA is sent the adult group members only; children's services only the child (S4). Aligned by
    // position, S4's record would sit on S1's row of children's services' column.
    const s1 = await previewRow('S1');
    const s4 = await previewRow('S4');
    expect(s1.dvla).toContain('Okafor');
    expect(s1.dvla).not.toContain('Brooks');
    expect((await previewRow('S3')).dvla).toBe('not shared');
    expect(s4.dvla).toBe('not shared');
    expect(s1['childrens-services']).toBe('not shared');
    expect(s4['childrens-services']).toContain('Brooks');
    expect(s4['childrens-services']).not.toContain('Okafor');

    // The trace: a tooltip on every cell, and the panel on click.
    const title = await page.getAttribute('#preview-table tr[data-subject="S1"] td[data-partner="dvla"] button', 'title');
    expect(title).toMatch(/→ keep → /);
    await page.click('#preview-table tr[data-subject="S1"] td[data-partner="dvla"] button');
    await page.waitForSelector('#trace:not([hidden])');
    expect(await page.textContent('#trace-title')).toBe('Decision trace: dvla · S1 · Daniel Okafor (principal)');
    const lines = await page.$$eval('#trace-lines li', (lis) => lis.map((l) => l.textContent ?? ''));
    expect(lines.length).toBeGreaterThan(3);
    expect(lines.some((l) => /→ keep → subjects\[\]\.name/.test(l))).toBe(true);
    await shot('2-preview');

    // Each partner's preview is in the audit trail.
    const audited = await api(gw.url, 'GET', '/v1/audit?kind=consultation&limit=500', GOV);
    expect(audited.json.records.filter((r: { action: string }) => r.action === 'preview.used')).toHaveLength(PARTNER_COUNT);

    // A dossier uploaded as a file that breaks the schema: the page shows each offending path.
    const full = fixture('dossier-full.json') as { subjects: Array<{ id: string }> };
    const upload = path.join(scratch, 'upload.json');
    await writeFile(upload, JSON.stringify({ ...full, subjects: [full.subjects[3], full.subjects[0]] }));
    await page.setInputFiles('#preview-file', upload);
    await page.waitForFunction(() => JSON.parse((document.getElementById('preview-dossier') as HTMLTextAreaElement).value).subjects.length === 2);
    await page.click('#preview-form button[type="submit"]');
    await page.waitForSelector('#preview-out .error');
    expect(await page.textContent('#preview-out .error')).toMatch(/HTTP 400 schema_violation.*\/dossier\/subjects\/0\/associates\/0\/subject: must be the id of a subject in this dossier/s);

    // Its subjects in the reverse order: the rows follow the dossier, each still its own subject's.
    await writeFile(upload, JSON.stringify({ ...full, subjects: [...full.subjects].reverse() }));
    await page.setInputFiles('#preview-file', []);
    await page.setInputFiles('#preview-file', upload);
    await page.waitForFunction(() => JSON.parse((document.getElementById('preview-dossier') as HTMLTextAreaElement).value).subjects[0].id === 'S4');
    await page.click('#preview-form button[type="submit"]');
    await page.waitForSelector('#preview-table');
    expect(await page.$$eval('#preview-table tbody tr', (trs) => trs.map((t) => (t as HTMLElement).dataset.subject))).toEqual(['', 'S4', 'S3', 'S2', 'S1']);
    expect((await previewRow('S4'))['childrens-services']).toContain('Brooks');
    expect((await previewRow('S1')).dvla).toContain('Okafor');
    expect((await previewRow('S4')).dvla).toBe('not shared');
  });

  it('diff view: changed files chosen in the page, laid over the live set, show the lines a partner loses', async () => {
    await tab('diff');
    const dvla = path.join(scratch, 'dvla.yaml');
    await cp(path.join(policies.dir, 'partners/dvla.yaml'), dvla);
    await dropKey(dvla, ['fields', 'subjects[].vehicles[].colour']);
    await page.setInputFiles('#diff-files', dvla);
    await page.waitForFunction(() => /partners\/dvla\.yaml/.test(document.getElementById('diff-chosen')!.textContent ?? ''));
    expect(await page.textContent('#diff-chosen')).toContain('1 file laid over the live set: partners/dvla.yaml');
    await page.click('#diff-form button[type="submit"]');
    await page.waitForSelector('#diff-summary');
    expect(await page.textContent('#diff-summary')).toMatch(/^From live [0-9a-f]{16} to candidate \(1 file over the live set\) [0-9a-f]{16}: [1-9]\d* partner views? changed\.$/);
    const lost = await page.$$eval('.diff-partner[data-partner="dvla"] tr.line.lost', (trs) => trs.map((t) => [...t.querySelectorAll('td')].map((td) => td.textContent)));
    expect(lost).toContainEqual(['−', 'subjects[].vehicles[].colour', 'keep', '·']);
    expect(await page.textContent('.diff-partner[data-partner="council-housing"] h4')).toBe('council-housing: no change');
    await shot('3-diff-candidate');
  });

  it('diff view: a whole folder chosen in the page; a set that does not load shows its problems; nothing reaches the policy directory', async () => {
    const before = await readFile(path.join(policies.dir, 'partners/dvla.yaml'), 'utf8');
    const folder = path.join(scratch, 'policies');
    await cp(policies.dir, folder, { recursive: true });
    await writeFile(path.join(folder, 'partners/hmrc.yaml'), 'partner: [not, a, policy\n');
    await page.setInputFiles('#diff-folder', folder);
    await page.waitForFunction(() => /whole set/.test(document.getElementById('diff-chosen')!.textContent ?? ''));
    const chosen = (await page.textContent('#diff-chosen'))!;
    expect(chosen).toMatch(/skipped: \d+ \(/);
    // The set's own files only: the sample clients file (token hashes) and the policy tests stay in the browser.
    expect(chosen.split('; not part')[0]).not.toMatch(/clients|tests\//);
    await page.click('#diff-form button[type="submit"]');
    await page.waitForSelector('#diff-out .error');
    const error = (await page.textContent('#diff-out .error'))!;
    expect(error).toContain('HTTP 422 candidate_invalid');
    expect(error).toContain('/candidate/files/partners/hmrc.yaml');
    expect(await readFile(path.join(policies.dir, 'partners/dvla.yaml'), 'utf8')).toBe(before);
    await shot('3-diff-invalid');
  });

  it('audit view: who received what about subject S1 of the reference; the page\'s own searches are in the trail', async () => {
    await tab('audit');
    await page.fill('#audit-reference', 'WMP-OCG-2026-00412');
    await page.fill('#audit-subject', 'S1');
    await page.selectOption('#audit-kind', 'disclosure');
    await page.click('#audit-form button[type="submit"]');
    await page.waitForSelector('#audit-table tbody tr');
    const rows = await page.$$eval('#audit-table tbody tr', (trs) => trs.map((t) => ({ action: (t as HTMLElement).dataset.action, cells: [...t.querySelectorAll('td')].map((td) => td.textContent) })));
    const recipients = new Set(rows.map((r) => r.cells[5]));
    // S1 (an adult principal) went to council housing and DVLA; never to children's services.
    expect(recipients).toContain('council-housing');
    expect(recipients).toContain('dvla');
    expect(recipients).not.toContain('childrens-services');
    expect(rows.every((r) => r.cells[2] === 'disclosure')).toBe(true);
    expect(rows.find((r) => r.cells[5] === 'dvla')!.cells[6]).toBe('ISA-WMP-DVLA-2025-02');
    expect(await page.textContent('#audit-summary')).toMatch(/^\d+ records?\./);
    // What DVLA received: the record's field paths, on click.
    await page.click('#audit-table tbody tr:has(td:text-is("dvla")) button.link');
    await page.waitForSelector('#audit-detail:not([hidden])');
    const detail = (await page.textContent('#audit-detail'))!;
    expect(detail).toContain('disclosedsubjects[].vehicles[].vrm → keep');
    expect(detail).toContain('disclosedsubjects[].addresses[].postcode → generalise:postcode');
    expect(detail).not.toContain('Daniel');
    await shot('4-audit');

    // The search just made is itself a record, found from the page.
    await page.fill('#audit-reference', '');
    await page.fill('#audit-subject', '');
    await page.selectOption('#audit-kind', 'consultation');
    await page.click('#audit-form button[type="submit"]');
    await page.waitForFunction(() => document.querySelectorAll('#audit-table tbody tr[data-action="audit.queried"]').length >= 1);
    const queried = await page.$$eval('#audit-table tbody tr[data-action="audit.queried"]', (trs) => trs.map((t) => t.querySelectorAll('td')[4]!.textContent));
    expect(queried).toContain('governance');
    await shot('4-audit-own-searches');
  });

  it('diff view: an earlier revision this gateway served against the live one, after a reload', async () => {
    const before = (await api(gw.url, 'GET', '/v1/governance/revisions', GOV)).json.live.revision as string;
    await dropKey(path.join(policies.dir, 'partners/council-housing.yaml'), ['fields', 'subjects[].name.aliases[]']);
    await until('the reload', async () => {
      const r = (await api(gw.url, 'GET', '/v1/governance/revisions', GOV)).json;
      return r.live.revision !== before && r.earlier.some((e: { revision: string }) => e.revision === before) ? true : undefined;
    });
    await tab('partners');
    await tab('diff');
    await page.check('input[name="against"][value="revision"]');
    expect(await page.$eval('#diff-revision', (s) => (s as HTMLSelectElement).value)).toBe(before);
    await page.click('#diff-form button[type="submit"]');
    await page.waitForFunction((rev) => (document.getElementById('diff-summary')?.textContent ?? '').startsWith(`From earlier ${rev}`), before);
    const lost = await page.$$eval('.diff-partner[data-partner="council-housing"] tr.line.lost td.path', (tds) => tds.map((t) => t.textContent));
    expect(lost).toContain('subjects[].name.aliases[]');
    expect(await page.textContent('.diff-partner[data-partner="dvla"] h4')).toBe('dvla: no change');
    await shot('3-diff-revision');
  });

  it('agreement view: the ISA rendered from the live policy, which changes when the policy does, and downloads as Markdown', async () => {
    await tab('isa');
    await page.waitForSelector('#isa-document');
    await page.selectOption('#isa-partner', 'dvla');
    await page.waitForSelector('#isa-document[data-partner="dvla"]');
    expect(await page.textContent('#isa-document h3')).toContain('Driver and Vehicle Licensing Agency');
    const headings = await page.$$eval('#isa-document h4', (hs) => hs.map((h) => h.textContent));
    expect(headings).toEqual(expect.arrayContaining(['1. Parties', '3. Legal basis', '4. Data items', '8. Security', '11. Signatories']));
    const dataItems = async () => page.$eval('#isa-document section:nth-of-type(4)', (s) => s.textContent ?? '');
    expect(await dataItems()).toContain('subjects[].identifiers.drivingLicence');
    expect(await page.$$eval('#isa-document code', (cs) => cs.length)).toBeGreaterThan(5);
    await shot('5-agreement');

    const download = page.waitForEvent('download');
    await page.click('#isa-out a[download$=".md"]');
    const md = await readFile((await (await download).path())!, 'utf8');
    expect(md).toMatch(/^# .*Driver and Vehicle Licensing Agency/);
    expect(md).toContain('## 4. Data items');

    // Change the policy: the document's data items change with it.
    const revision = await page.getAttribute('#isa-document', 'data-revision');
    await dropKey(path.join(policies.dir, 'partners/dvla.yaml'), ['fields', 'subjects[].identifiers.drivingLicence']);
    await until('the reload', async () => ((await api(gw.url, 'GET', '/v1/governance/revisions', GOV)).json.live.revision !== revision ? true : undefined));
    await page.click('#isa-refresh');
    // The new revision's document, its sections drawn (the attribute may change before they are).
    await page.waitForFunction((rev) => {
      const doc = document.getElementById('isa-document');
      return doc?.dataset.revision !== rev && doc?.querySelector('section:nth-of-type(4)') !== null;
    }, revision);
    expect(await dataItems()).not.toContain('drivingLicence');
  });

  it('forgets the token on request, and no CSP violation or page error was logged in any view', async () => {
    await page.click('#forget');
    expect(await page.isHidden('#tabs')).toBe(true);
    expect(await page.evaluate(() => sessionStorage.getItem('cordon.console.token'))).toBeNull();
    expect(violations).toEqual([]);
    expect(await page.evaluate(() => (window as unknown as { cspViolations: string[] }).cspViolations)).toEqual([]);

    // The watch works, and the policy holds: a script injected into the page is refused and reported.
    await page.evaluate(() => {
      const s = document.createElement('script');
      s.textContent = 'document.title = "injected"';
      document.body.append(s);
    });
    await page.waitForFunction(() => (window as unknown as { cspViolations: string[] }).cspViolations.length > 0);
    expect(await page.title()).toBe('Cordon · governance console');
    expect(await page.evaluate(() => (window as unknown as { cspViolations: string[] }).cspViolations)).toEqual(['script-src-elem']);
  });
});
