/**
 * `cordon policy lint`'s checks: loader problems with lines, agreements and keys, rules that can never
 * fire or change nothing, and tests naming unknown partners. Plus the satisfiability check itself.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { cp, mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseRecipientKey } from '../../gateway/crypto/openpgp.js';
import { lintPolicies, type LintFinding } from '../../gateway/governance/lint.js';
import { parseLocation, YamlLocator } from '../../gateway/policy/locate.js';
import { canHold } from '../../gateway/policy/satisfiable.js';
import type { Condition } from '../../gateway/policy/types.js';

const NOW = new Date('2026-11-21T12:00:00Z');
const SAMPLE = path.resolve(import.meta.dirname, '../../policies');
const FIXTURE_KEYS = path.resolve(import.meta.dirname, '../fixtures/keys');
const checkKey = async (armored: string, fp: string) => parseRecipientKey(armored, fp, new Date());

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function sampleCopy(edit: Record<string, (text: string) => string> = {}): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'cordon-lint-'));
  dirs.push(dir);
  await cp(SAMPLE, dir, { recursive: true });
  for (const [rel, fn] of Object.entries(edit)) {
    const file = path.join(dir, rel);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, fn(await readFile(file, 'utf8').catch(() => '')));
  }
  return dir;
}

function find(findings: LintFinding[], file: string, pattern: RegExp): LintFinding | undefined {
  return findings.find((f) => f.file === file && pattern.test(f.message));
}

const lineOf = (text: string, needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1;

describe('lintPolicies on the sample policies', () => {
  it('finds nothing to report', async () => {
    const r = await lintPolicies(SAMPLE, { now: NOW, checkKey });
    expect(r.findings).toEqual([]);
    expect(r).toMatchObject({ loads: true, errors: 0, warnings: 0, partners: 7, sources: 1 });
    expect(r.revision).toMatch(/^[0-9a-f]{16}$/);
  });
});

describe('lintPolicies: loader problems with lines', () => {
  it('locates schema and semantic problems, keeps checking the files that load', async () => {
    const dir = await sampleCopy({
      'partners/dvla.yaml': (t) =>
        t
          .replace('  subjects[].vehicles[].colour: keep', '  subjects[].vehicles[].colour: keep\n  subjects[].vehicles[].shade: keep\n  subjects[].gender: { op: generalise, to: year }'),
      'partners/dwp-benefits.yaml': (t) => t.replace(/ {2}checks: \[([a-z, -]+)\]/, '  checks: [$1, bribes]'),
      'partners/hmrc.yaml': (t) => t.replace(/reviewBy: "[0-9-]+"/, 'reviewBy: "2026-11-01"'),
      'partners/council-housing.yaml': (t) => t.replace('name: minors-go-to-childrens-services', 'name: [unclosed'),
    });
    const r = await lintPolicies(dir, { now: NOW, checkKey });
    expect(r.loads).toBe(false);
    expect(r.revision).toBeUndefined();
    const dvla = await readFile(path.join(dir, 'partners/dvla.yaml'), 'utf8');
    expect(find(r.findings, 'partners/dvla.yaml', /no such field/)).toMatchObject({ severity: 'error', location: 'fields."subjects[].vehicles[].shade"', line: lineOf(dvla, 'shade'), column: 3 });
    expect(find(r.findings, 'partners/dvla.yaml', /applies to dates/)).toMatchObject({ line: lineOf(dvla, 'subjects[].gender'), column: 3 });
    // the sequence item itself
    const dwp = await readFile(path.join(dir, 'partners/dwp-benefits.yaml'), 'utf8');
    expect(find(r.findings, 'partners/dwp-benefits.yaml', /must be one of/)).toMatchObject({ location: expect.stringMatching(/^partner\.checks\[\d\]$/), line: lineOf(dwp, 'checks:') });
    // YAML syntax errors carry their own position
    const syntax = r.findings.find((f) => f.file === 'partners/council-housing.yaml');
    expect(syntax?.line).toBeGreaterThan(0);
    expect(syntax?.location).toBeUndefined();
    // the files that load are still checked (an agreement past its review date)
    const hmrc = await readFile(path.join(dir, 'partners/hmrc.yaml'), 'utf8');
    expect(find(r.findings, 'partners/hmrc.yaml', /was due for review by 2026-11-01: sharing with hmrc has stopped/)).toMatchObject({ severity: 'error', location: 'agreement.reviewBy', line: lineOf(hmrc, 'reviewBy') });
    // a test of a partner whose file does not load is not reported again
    expect(r.findings.find((f) => f.file.startsWith('tests/') && /council-housing|dvla/.test(f.message))).toBeUndefined();
  });

  it('points a missing required property at its parent', () => {
    const loc = new YamlLocator('partner:\n  id: x\nagreement:\n  reference: A\n');
    expect(loc.locate(parseLocation('agreement.owner')!)).toEqual({ line: 3, column: 1 });
    expect(loc.locate(parseLocation('partner.id')!)).toEqual({ line: 2, column: 3 });
    expect(parseLocation('fields."subjects[].a".where')).toEqual(['fields', 'subjects[].a', 'where']);
    expect(parseLocation('rules[2].then.set."x[]"')).toEqual(['rules', 2, 'then', 'set', 'x[]']);
    expect(parseLocation('[1].expect')).toEqual([1, 'expect']);
  });
});

describe('lintPolicies: agreements and keys', () => {
  it('warns 90 days before the review date and before the agreement is in force; an expired one is an error', async () => {
    const dir = await sampleCopy({
      'partners/dvla.yaml': (t) => t.replace(/reviewBy: "[0-9-]+"/, 'reviewBy: "2027-02-19"'),
      'partners/hmrc.yaml': (t) => t.replace(/reviewBy: "[0-9-]+"/, 'reviewBy: "2027-02-20"'),
      'partners/dwp-benefits.yaml': (t) => t.replace(/inForceFrom: "[0-9-]+"/, 'inForceFrom: "2027-01-01"'),
      'partners/council-housing.yaml': (t) => t.replace(/reviewBy: "[0-9-]+"/, 'reviewBy: "2026-11-20"'),
    });
    const r = await lintPolicies(dir, { now: NOW, checkKey });
    expect(find(r.findings, 'partners/dvla.yaml', /due for review by 2027-02-19 \(90 days left\)/)?.severity).toBe('warning');
    expect(find(r.findings, 'partners/hmrc.yaml', /review/)).toBeUndefined();
    expect(find(r.findings, 'partners/dwp-benefits.yaml', /not in force until 2027-01-01/)?.severity).toBe('warning');
    expect(find(r.findings, 'partners/council-housing.yaml', /sharing with council-housing has stopped/)?.severity).toBe('error');
    expect(r.loads).toBe(true);
    expect(r.errors).toBe(1);
  });

  it('reports partners and sources without a usable key', async () => {
    const dir = await sampleCopy({
      'partners/dvla.yaml': (t) => t.replace(/fingerprint: "[0-9A-F]+"/, 'fingerprint: "0000000000000000000000000000000000000000"'),
    });
    await rm(path.join(dir, 'keys/hmrc.asc'));
    await cp(path.join(FIXTURE_KEYS, 'expired.asc'), path.join(dir, 'keys/dwp-benefits.asc'));
    const fps = JSON.parse(await readFile(path.join(FIXTURE_KEYS, 'fingerprints.json'), 'utf8')) as Record<string, string>;
    const dwp = path.join(dir, 'partners/dwp-benefits.yaml');
    await writeFile(dwp, (await readFile(dwp, 'utf8')).replace(/fingerprint: "[0-9A-F]+"/, `fingerprint: "${fps.expired}"`));
    await rm(path.join(dir, 'keys/west-midlands.asc'));
    const r = await lintPolicies(dir, { now: NOW, checkKey });
    expect(find(r.findings, 'partners/dvla.yaml', /does not match the pinned/)).toMatchObject({ severity: 'error', location: 'partner.key.fingerprint' });
    expect(find(r.findings, 'partners/hmrc.yaml', /key file keys\/hmrc\.asc is missing: every delivery to hmrc is blocked/)).toMatchObject({ severity: 'error', location: 'partner.key.file' });
    expect(find(r.findings, 'partners/dwp-benefits.yaml', /expired/)?.severity).toBe('error');
    expect(find(r.findings, 'sources/west-midlands.yaml', /missing: hits for west-midlands cannot be encrypted/)?.severity).toBe('error');
  });

  it('warns about a key that expires within 30 days', async () => {
    const soon = new Date(NOW.getTime() + 10 * 24 * 3600 * 1000);
    const r = await lintPolicies(SAMPLE, { now: NOW, checkKey: async () => ({ expiresAt: soon }) });
    expect(r.warnings).toBe(8);
    expect(find(r.findings, 'partners/dvla.yaml', /expires on \d{4}-\d{2}-\d{2}: import a renewed key/)?.severity).toBe('warning');
  });
});

describe('lintPolicies: rules', () => {
  const rule = (name: string, when: string, conditions: string, then: string) => `
  - name: ${name}
    when: ${when}
    conditions: ${conditions}
    then: ${then}
`;

  it('errors on rules that can never fire, warns on rules that change nothing', async () => {
    const dir = await sampleCopy({
      'partners/dvla.yaml': (t) =>
        t +
        rule('adult-child', 'subject', '{ all: [{ fact: isAdult, operator: equal, value: true }, { fact: ageAtDossier, operator: lessThan, value: 18 }] }', '{ exclude: true }') +
        rule('victim-not-victim', 'subject', '{ all: [{ fact: role, operator: in, value: [victim] }, { not: { fact: role, operator: in, value: [victim, witness] } }] }', '{ exclude: true }') +
        rule('either-impossible', 'dossier', '{ any: [{ all: [{ fact: handlingCode, operator: equal, value: P }, { fact: handlingCode, operator: equal, value: C }] }, { fact: subjectCount, operator: lessThan, value: 0 }] }', '{ set: { purpose: strip } }') +
        rule('phones', 'subject', '{ all: [{ fact: role, operator: equal, value: member }] }', '{ set: { "subjects[].phones[]": strip, "subjects[].bankAccounts[]": strip } }') +
        rule('keep-kept', 'subject', '{ all: [{ fact: role, operator: equal, value: member }] }', '{ set: { "subjects[].vehicles[].vrm": keep } }') +
        rule('fine', 'subject', '{ all: [{ fact: role, operator: equal, value: member }] }', '{ set: { "subjects[].vehicles[].colour": strip } }'),
      'partners/immigration-enforcement.yaml': (t) => t.replace('handlingCodes: [P, C]', 'handlingCodes: [P]') + rule('conditions-only', 'dossier', '{ all: [{ fact: handlingCode, operator: equal, value: C }] }', '{ set: { purpose: strip } }'),
    });
    const r = await lintPolicies(dir, { now: NOW, checkKey });
    const dvla = await readFile(path.join(dir, 'partners/dvla.yaml'), 'utf8');
    const at = (name: string) => lineOf(dvla, `name: ${name}`);
    expect(find(r.findings, 'partners/dvla.yaml', /"adult-child" can never fire: its conditions contradict each other, so what it excludes never happens/)).toMatchObject({ severity: 'error', location: 'rules[2].conditions', line: at('adult-child') + 2 });
    expect(find(r.findings, 'partners/dvla.yaml', /"victim-not-victim" can never fire/)?.severity).toBe('error');
    expect(find(r.findings, 'partners/dvla.yaml', /"either-impossible" can never fire.*sets \(purpose\)/)?.severity).toBe('error');
    expect(find(r.findings, 'partners/dvla.yaml', /"phones" changes nothing: it only touches paths the base allowlist already strips \(subjects\[\]\.phones\[\], subjects\[\]\.bankAccounts\[\]\)/)).toMatchObject({ severity: 'warning', location: 'rules[5].then', line: at('phones') + 3 });
    expect(find(r.findings, 'partners/dvla.yaml', /"keep-kept" changes nothing: it asks for nothing stricter/)?.severity).toBe('warning');
    expect(find(r.findings, 'partners/dvla.yaml', /"fine"/)).toBeUndefined();
    expect(find(r.findings, 'partners/immigration-enforcement.yaml', /"conditions-only" can never fire: its conditions hold only for dossiers agreement .* refuses \(it accepts OFFICIAL, OFFICIAL-SENSITIVE; handling P\)/)?.severity).toBe('error');
    expect(r.findings.filter((f) => /sample|known-adults-only|no-victims/.test(f.message))).toEqual([]);
  });
});

describe('lintPolicies: tests', () => {
  it('errors on a test of an unknown partner and warns about partners no test covers', async () => {
    const dir = await sampleCopy({
      'tests/dvla-full.yaml': (t) => t.replace('partner: dvla', 'partner: dvla-typo'),
      // Its other tests, on covert intelligence and on victims and witnesses, check HMRC twice instead:
      // no test is left covering DVLA.
      'tests/covert-intelligence.yaml': (t) => t.replace('partner: dvla\n', 'partner: hmrc\n'),
      'tests/victims-and-witnesses.yaml': (t) => t.replace('partner: dvla\n', 'partner: hmrc\n'),
      // The handling-condition tests cover dvla too.
      'tests/handling-conditions-safeguarding.yaml': (t) => t.replace(/partner: dvla\n/g, 'partner: dvla-typo\n'),
      'tests/handling-conditions-dossier.yaml': (t) => t.replace(/partner: dvla\n/g, 'partner: dvla-typo\n'),
      // And the recipient-choice tests.
      'tests/recipients-chosen.yaml': (t) => t.replace(/partner: dvla\n/g, 'partner: dvla-typo\n'),
    });
    const r = await lintPolicies(dir, { now: NOW, checkKey });
    expect(find(r.findings, 'tests/dvla-full.yaml', /no partner "dvla-typo"/)).toMatchObject({ severity: 'error', location: 'partner', line: 3, column: 1 });
    expect(find(r.findings, 'partners/dvla.yaml', /no policy test .* covers partner dvla/)?.severity).toBe('warning');
  });

  it('reports malformed tests with their lines', async () => {
    const dir = await sampleCopy({
      'tests/broken.yaml': () => '- name: one\n  dossier: example:dossier-full\n  partner: dvla\n  expect: { absent: ["subjects[].identifiers.pnc"] }\n- name: two\n  dossier: example:dossier-full\n  partner: dvla\n  expect: { colour: red }\n',
    });
    const r = await lintPolicies(dir, { now: NOW, checkKey });
    const f = r.findings.find((x) => x.file === 'tests/broken.yaml');
    expect(f).toMatchObject({ severity: 'error', location: '[1].expect', line: 8, column: 3 });
  });
});

describe('canHold', () => {
  const c = (fact: string, operator: string, value: unknown): Condition => ({ fact, operator, value });
  const all = (...x: Condition[]): Condition => ({ all: x });
  const any = (...x: Condition[]): Condition => ({ any: x });
  const not = (x: Condition): Condition => ({ not: x });

  it('sees contradictions on one fact and between views of the age', () => {
    expect(canHold(all(c('role', 'equal', 'victim'), c('role', 'equal', 'witness')))).toBe(false);
    expect(canHold(all(c('role', 'in', ['victim', 'witness']), c('role', 'notIn', ['victim', 'witness'])))).toBe(false);
    expect(canHold(all(c('role', 'in', ['victim', 'witness']), c('role', 'notEqual', 'victim')))).toBe(true);
    expect(canHold(all(c('isAdult', 'equal', true), c('isMinor', 'equal', true)))).toBe(false);
    expect(canHold(all(c('isAdult', 'equal', false), c('isMinor', 'equal', false)))).toBe(true); // age unknown
    expect(canHold(all(c('ageKnown', 'equal', false), c('ageAtDossier', 'greaterThan', 3)))).toBe(false);
    expect(canHold(all(c('ageAtDossier', 'greaterThanInclusive', 18), c('ageAtDossier', 'lessThan', 18)))).toBe(false);
    expect(canHold(all(c('ageAtDossier', 'greaterThan', 120)))).toBe(false);
    expect(canHold(all(c('isMinor', 'equal', true), c('ageAtDossier', 'lessThan', 10)))).toBe(true);
  });

  it('follows json-rules-engine on nulls: a numeric comparison never holds for an unknown value, notIn does', () => {
    expect(canHold(all(c('ageKnown', 'equal', false), not(c('ageAtDossier', 'lessThan', 18))))).toBe(true);
    expect(canHold(all(c('threatBand', 'equal', null), c('threatBand', 'notIn', ['A', 'B'])))).toBe(true);
    expect(canHold(all(c('threatBand', 'equal', null), c('threatBand', 'in', ['A', 'B'])))).toBe(false);
  });

  it('handles lists, open strings, any, not and the agreement', () => {
    expect(canHold(all(c('vulnerabilities', 'contains', 'x'), c('vulnerabilities', 'doesNotContain', 'x')))).toBe(false);
    expect(canHold(all(c('vulnerabilities', 'contains', 'x'), c('isVulnerable', 'equal', false)))).toBe(false);
    expect(canHold(all(c('vulnerabilities', 'contains', 'x'), c('isVulnerable', 'equal', true)))).toBe(true);
    expect(canHold(all(c('crimeTypes', 'contains', 'a'), not(c('crimeTypes', 'contains', 'a'))))).toBe(false);
    expect(canHold(all(c('nationality', 'equal', 'GB'), c('nationality', 'notIn', ['GB', 'IE'])))).toBe(false);
    expect(canHold(all(c('nationality', 'notEqual', 'GB'), c('nationality', 'notEqual', 'IE')))).toBe(true);
    expect(canHold(all(c('originatorForce', 'in', ['a', 'b']), c('originatorForce', 'in', ['b', 'c'])))).toBe(true);
    expect(canHold(all(c('originatorForce', 'in', ['a']), c('originatorForce', 'in', ['b'])))).toBe(false);
    expect(canHold(any(all(c('role', 'equal', 'victim'), c('role', 'equal', 'witness')), c('isAdult', 'equal', true)))).toBe(true);
    expect(canHold(not(any(c('isAdult', 'equal', true), c('isAdult', 'equal', false))))).toBe(false);
    expect(canHold(c('classification', 'equal', 'OFFICIAL-SENSITIVE'), { classification: ['OFFICIAL'] })).toBe(false);
    expect(canHold(c('handlingCode', 'in', ['P', 'C']), { handlingCode: ['P'] })).toBe(true);
  });

  it('gives up (assumes it can hold) rather than expand a huge condition', () => {
    const big = all(...Array.from({ length: 12 }, () => any(c('role', 'equal', 'victim'), c('role', 'equal', 'witness'))), c('role', 'equal', 'member'));
    expect(canHold(big)).toBe(true);
  });
});

describe('lintPolicies on peer files', () => {
  const PEER = 'peers/warwickshire.yaml';
  it('reports a peer agreement past its review date (error) and one due for review (warning), like a partner’s', async () => {
    const expired = await lintPolicies(await sampleCopy({ [PEER]: (t) => t.replace('inForceFrom: "2025-07-01"', 'inForceFrom: "2024-07-01"').replace('reviewBy: "2028-06-30"', 'reviewBy: "2026-06-30"') }), { now: NOW, checkKey });
    const error = find(expired.findings, PEER, /ISA-WMP-WARKS-2025-07 was due for review by 2026-06-30/);
    expect(error).toMatchObject({ severity: 'error' });
    const due = await lintPolicies(await sampleCopy({ [PEER]: (t) => t.replace('reviewBy: "2028-06-30"', 'reviewBy: "2026-12-21"') }), { now: NOW, checkKey });
    expect(find(due.findings, PEER, /due for review by 2026-12-21 \(30 days left\)/)).toMatchObject({ severity: 'warning' });
  });

  it('warns about a peer file without a hits policy, and about one letting every hit cross as reported', async () => {
    const none = await lintPolicies(await sampleCopy({ [PEER]: (t) => t.replace(/\nhits:\n( {2}.*\n)+/, '\n') }), { now: NOW, checkKey });
    expect(find(none.findings, PEER, /no hits policy: partners' hits relayed to warwickshire carry kind and subject only/)).toMatchObject({ severity: 'warning' });
    const open = await lintPolicies(await sampleCopy({ [PEER]: (t) => t.replace(/\nhits:\n( {2}.*\n)+/, '\nhits:\n  detail: keep\n  partnerRecordRef: keep\n') }), { now: NOW, checkKey });
    expect(find(open.findings, PEER, /every kind of partners' hits crosses to warwickshire with its detail and record refs/)).toMatchObject({ severity: 'warning' });
    const sample = await lintPolicies(SAMPLE, { now: NOW, checkKey });
    expect(sample.findings.filter((f) => f.file === PEER)).toEqual([]);
  });
});
