import { afterAll, describe, expect, it } from 'vitest';
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { loadPolicyTests } from '../../gateway/governance/policy-tests.js';
import { loadPolicySet } from '../../gateway/policy/load.js';
import { canonicalPath } from '../../gateway/policy/schema-index.js';
import { GatewayError } from '../../gateway/errors/index.js';
import fingerprints from '../fixtures/keys/fingerprints.json' with { type: 'json' };

const NOW = new Date('2026-11-21T12:00:00Z');
const SAMPLE = path.resolve(import.meta.dirname, '../../policies');
const FPR = '1162733E2E89CF983AE1FD8E1CD45476B17A1220';
const KEY = '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEtest\n-----END PGP PUBLIC KEY BLOCK-----\n';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function policyDir(files: Record<string, string | object>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'cordon-policy-'));
  dirs.push(dir);
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), typeof content === 'string' ? content : stringify(content));
  }
  return dir;
}

const gateway = {
  neverShare: ['originator.officer.name', 'subjects[].identifiers.pnc'],
  alwaysFilter: { 'subjects[].intelligence[]': { all: [{ fact: 'sourceType', operator: 'notEqual', value: 'CHIS' }] } },
};

const agreement = {
  reference: 'ISA-TEST-1',
  parties: ['West Midlands Police', 'Test Partner'],
  purpose: 'Testing',
  legalBasis: 'Crime and Disorder Act 1998 s.115',
  dataItems: ['names'],
  owner: 'Someone',
  inForceFrom: '2025-01-01',
  reviewBy: '2027-12-31',
  retentionDays: 30,
  highestClassification: 'OFFICIAL-SENSITIVE',
  handlingCodes: ['P', 'C'],
};

function partner(id: string, fields: Record<string, unknown>, rules: unknown[] = [], keyFile = `keys/${id}.asc`) {
  return {
    partner: { id, name: `Partner ${id}`, kind: 'local-authority', key: { file: keyFile, fingerprint: FPR }, checks: ['address'] },
    agreement,
    fields,
    rules,
  };
}

const source = (id: string) => ({ source: { id, name: 'A force', key: { file: `keys/${id}.asc`, fingerprint: FPR } } });

async function problems(dir: string): Promise<Array<{ path?: string; message: string }>> {
  try {
    await loadPolicySet(dir, NOW);
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    const e = err as GatewayError;
    expect(e.code).toBe('policy_invalid');
    const n = e.details?.length ?? 0;
    expect(e.message).toBe(`${n} problem${n === 1 ? '' : 's'} in the policy set`);
    return e.details ?? [];
  }
  throw new Error('the policy set loaded');
}

describe('loadPolicySet: the sample policies', () => {
  it('loads all seven partners and the source, with pinned keys read', async () => {
    const set = await loadPolicySet(SAMPLE, NOW);
    expect([...set.partners.keys()]).toEqual(['childrens-services', 'council-housing', 'dvla', 'dwp-benefits', 'hmrc', 'immigration-enforcement', 'riverside-homes']);
    expect([...set.sources.keys()]).toEqual(['west-midlands']);
    expect(set.revision).toMatch(/^[0-9a-f]{16}$/);
    expect(set.loadedAt).toBe(NOW.toISOString());
    for (const [id, p] of [...set.partners, ...[...set.sources].map(([k, s]) => [k, { partner: s.source }] as const)]) {
      expect(p.partner.key.fingerprint).toBe((fingerprints as Record<string, string>)[id]);
      expect(p.partner.key.armored).toMatch(/BEGIN PGP PUBLIC KEY BLOCK/);
    }
    for (const p of set.partners.values()) {
      for (const [path, op] of Object.entries(p.fields)) {
        expect(canonicalPath(path)).toBe(path);
        expect(typeof op).toBe('object');
      }
      expect(p.partner.checks.length).toBeGreaterThan(0);
      expect(p.agreement.reviewBy >= '2027-12-04').toBe(true); // renewed on 2026-12-04 for at least a year
    }
  });

  it('has a revision that depends on every file and nothing else', async () => {
    const files = {
      'gateway.yaml': gateway,
      'partners/p1.yaml': partner('p1', { reference: 'keep' }),
      'sources/s1.yaml': source('s1'),
      'keys/p1.asc': KEY,
    };
    const a = await loadPolicySet(await policyDir(files), NOW);
    const b = await loadPolicySet(await policyDir(files), new Date());
    expect(a.revision).toBe(b.revision);
    const c = await loadPolicySet(await policyDir({ ...files, 'keys/p1.asc': KEY + '\n' }), NOW);
    expect(c.revision).not.toBe(a.revision);
    const d = await loadPolicySet(await policyDir({ ...files, 'partners/p1.yaml': partner('p1', { reference: 'keep', purpose: 'keep' }) }), NOW);
    expect(d.revision).not.toBe(a.revision);
  });
});

describe('loadPolicySet: a minimal set', () => {
  it('normalises shorthand and array spellings, tolerates a missing peers dir and a missing key file', async () => {
    const dir = await policyDir({
      'gateway.yaml': gateway,
      'partners/p1.yaml': partner('p1', {
        reference: 'keep',
        'subjects[].phones': { op: 'mask', show: 'last', chars: 3 },
        'subjects[].vehicles': 'count',
        'subjects[].dateOfBirth': { op: 'generalise', to: 'ageBand' },
      }),
      'sources/s1.yaml': source('s1'),
    });
    const set = await loadPolicySet(dir, NOW);
    const p = set.partners.get('p1');
    expect(p?.fields).toEqual({
      reference: { op: 'keep' },
      'subjects[].dateOfBirth': { op: 'generalise', to: 'ageBand' },
      'subjects[].vehicles[]': { op: 'count' },
      'subjects[].phones[]': { op: 'mask', show: 'last', chars: 3 },
    });
    expect(p?.partner.key.armored).toBeUndefined();
    expect(set.peers?.size).toBe(0);
  });
});

describe('loadPolicySet: every problem, with its file', () => {
  it('collects schema, YAML and semantic problems across all files', async () => {
    const dir = await policyDir({
      'gateway.yaml': { ...gateway, neverShare: [...gateway.neverShare, 'originator.officer.rank'] },
      'partners/a.yaml': partner(
        'b',
        {
          reference: 'keep',
          'subjects[].foo': 'keep',
          'subjects[].name': 'keep',
          'subjects[].gender': { op: 'generalise', to: 'year' },
          'subjects[].dateOfBirth': { op: 'generalise', to: 'sector' },
          'subjects[].name.given': { op: 'generalise', to: 'band', width: 5 },
          'subjects[].role': 'count',
          'subjects[].phones[]': { op: 'filter', where: { all: [{ fact: 'x', operator: 'equal', value: 1 }] } },
          'subjects[].vehicles[]': { op: 'generalise', to: 'town' },
          'subjects[].id': 'keep',
          'subjects[].associates[].subject': 'pseudonymise',
          'originator.officer.name': 'keep',
          'subjects[].intelligence[]': { op: 'filter', where: { all: [{ fact: 'sourceType', operator: 'notEqual', value: 'chis' }] } },
          'subjects[].intelligence[].summary': 'keep',
          'subjects[].emails[]': { op: 'generalise', to: 'district' },
          'subjects[].nationality': { op: 'mask', show: 'first', chars: 1 },
          'locations[]': { op: 'filter', where: { all: [{ fact: 'grading.source', operator: 'lessThan', value: 2 }] } },
        },
        [
          { name: 'r1', when: 'subject', conditions: { all: [{ fact: 'shoeSize', operator: 'equal', value: 9 }] }, then: { exclude: true } },
          { name: 'r2', when: 'dossier', conditions: { all: [{ fact: 'isAdult', operator: 'equal', value: false }] }, then: { exclude: true } },
          { name: 'r3', when: 'subject', conditions: { all: [{ fact: 'role', operator: 'in', value: ['potential_victim'] }] }, then: { set: { 'subjects[].identifiers.pnc': 'keep', reference: 'strip' } } },
          { name: 'r3', when: 'subject', conditions: { all: [{ fact: 'ageAtDossier', operator: 'lessThan', value: '18' }] }, then: { exclude: true } },
          { name: 'r5', when: 'subject', conditions: { all: [{ fact: 'vulnerabilities', operator: 'equal', value: 'x' }] }, then: { exclude: true } },
        ],
        '../outside.asc',
      ),
      'partners/c.yaml': 'partner:\n  id: c\n  name: [unclosed\n',
      'partners/d.yaml': {
        ...partner('d', { reference: { op: 'publish' }, purpose: 'kep' }),
        partner: { id: 'd', name: 'D', kind: 'x', key: { file: 'keys/d.asc', fingerprint: 'abc' }, checks: ['tenancy', 'bribes'] },
        colour: 'red',
      },
      'partners/e.yaml': partner('e', { reference: 'keep' }),
      'keys/e.asc': '-----BEGIN PGP PRIVATE KEY BLOCK-----\nxx\n-----END PGP PRIVATE KEY BLOCK-----\n',
      'partners/f.yaml': partner('f', { 'subjects[].vehicles[]': 'count', 'subjects[].vehicles[].vrm': 'keep', 'subjects[].phones': 'keep', 'subjects[].phones[]': 'keep' }),
      'partners/g.yaml': { ...partner('g', { reference: 'keep' }), agreement: { ...agreement, inForceFrom: '2025-02-30', reviewBy: '2024-01-01' } },
      'sources/w.yaml': source('x'),
    });
    const details = await problems(dir);
    const expected: Array<[string, RegExp]> = [
      ['gateway.yaml: neverShare[2]', /no such field/],
      ['partners/a.yaml: partner.id', /must equal the file name/],
      ['partners/a.yaml: fields."subjects[].foo"', /no such field/],
      ['partners/a.yaml: fields."subjects[].name"', /keep only applies to leaves/],
      ['partners/a.yaml: fields."subjects[].gender"', /applies to dates/],
      ['partners/a.yaml: fields."subjects[].dateOfBirth"', /applies to postcodes/],
      ['partners/a.yaml: fields."subjects[].name.given"', /applies to numbers/],
      ['partners/a.yaml: fields."subjects[].role"', /count applies to arrays/],
      ['partners/a.yaml: fields."subjects[].phones[]"', /filter applies to arrays of objects/],
      ['partners/a.yaml: fields."subjects[].vehicles[]"', /arrays of addresses/],
      ['partners/a.yaml: fields."subjects[].id"', /never shared/],
      ['partners/a.yaml: fields."subjects[].associates[].subject"', /kept .* or stripped/],
      ['partners/a.yaml: fields."originator.officer.name"', /neverShare/],
      ['partners/a.yaml: fields."subjects[].intelligence[]".where', /"chis" is not one of the values/],
      ['partners/a.yaml: fields."subjects[].emails[]"', /applies to postcodes/],
      ['partners/a.yaml: fields."locations[]".where', /unknown fact "grading.source"/],
      ['partners/a.yaml: fields."subjects[].intelligence[].handlingConditions"', /travels with every shared item/],
      ['partners/a.yaml: fields."subjects[].intelligence[].grading.source"', /travels with every shared item/],
      ['partners/a.yaml: rules[0].conditions', /unknown fact "shoeSize"/],
      ['partners/a.yaml: rules[1].conditions', /isAdult is a subject fact/],
      ['partners/a.yaml: rules[1].then.exclude', /only subject rules can exclude/],
      ['partners/a.yaml: rules[2].conditions', /"potential_victim" is not one of the values/],
      ['partners/a.yaml: rules[2].then.set."subjects[].identifiers.pnc"', /neverShare/],
      ['partners/a.yaml: rules[2].then.set.reference', /subject rule can only set subjects\[\] fields/],
      ['partners/a.yaml: rules[3].name', /duplicate rule name/],
      ['partners/a.yaml: rules[3].conditions', /needs a number value/],
      ['partners/a.yaml: rules[4].conditions', /is a list: use contains/],
      ['partners/a.yaml: partner.key.file', /inside the policy directory/],
      ['partners/c.yaml: line 4, column 1', /Flow sequence/],
      ['partners/d.yaml', /unknown property "colour"/],
      ['partners/d.yaml: partner.key.fingerprint', /must match pattern/],
      ['partners/d.yaml: partner.checks[1]', /must be one of/],
      ['partners/d.yaml: fields.reference', /unknown operation "publish"/],
      ['partners/d.yaml: fields.purpose', /must be one of "keep", "strip", "pseudonymise", "count"/],
      ['partners/e.yaml: partner.key.file', /SECRET key/],
      ['partners/f.yaml: fields."subjects[].vehicles[].vrm"', /is under subjects\[\]\.vehicles\[\], which is count/],
      ['partners/f.yaml: fields."subjects[].phones[]"', /names the same field as "subjects\[\]\.phones"/],
      ['partners/g.yaml: agreement.inForceFrom', /not a real date/],
      ['sources/w.yaml: source.id', /must equal the file name/],
    ];
    for (const [p, message] of expected) {
      expect(details, `${p} ${message}`).toContainEqual(expect.objectContaining({ path: p, message: expect.stringMatching(message) }));
    }
    // the mask on nationality is fine (text), so it must not be reported
    expect(details.find((d) => d.path === 'partners/a.yaml: fields."subjects[].nationality"')).toBeUndefined();
  });

  it('reports a missing gateway.yaml, partners and sources directories', async () => {
    const dir = await policyDir({ 'README.md': 'nothing here' });
    const details = await problems(dir);
    expect(details.map((d) => d.path)).toEqual(expect.arrayContaining(['gateway.yaml', 'partners/', 'sources/']));
  });

  it('reports a directory that does not exist', async () => {
    const details = await problems(path.join(tmpdir(), 'cordon-does-not-exist-' + Date.now()));
    expect(details).toHaveLength(1);
  });

  it('refuses a key file that links outside the policy directory', async () => {
    const outside = await policyDir({ 'k.asc': KEY });
    const dir = await policyDir({ 'gateway.yaml': gateway, 'partners/p1.yaml': partner('p1', { reference: 'keep' }), 'sources/s1.yaml': source('s1') });
    await mkdir(path.join(dir, 'keys'), { recursive: true });
    await symlink(path.join(outside, 'k.asc'), path.join(dir, 'keys/p1.asc'));
    const details = await problems(dir);
    expect(details).toContainEqual(expect.objectContaining({ path: 'partners/p1.yaml: partner.key.file', message: expect.stringMatching(/outside the policy directory/) }));
  });

  it('refuses keep on a container so that later schema fields cannot slip through', async () => {
    const dir = await policyDir({
      'gateway.yaml': gateway,
      'partners/p1.yaml': partner('p1', { 'subjects[].identifiers': 'keep', 'subjects[].addresses[]': 'keep', group: 'keep' }),
      'sources/s1.yaml': source('s1'),
    });
    const details = await problems(dir);
    expect(details.filter((d) => /keep only applies to leaves/.test(d.message))).toHaveLength(3);
  });
});

describe('loadPolicySet: neverShare', () => {
  it('refuses any grant under a neverShare container', async () => {
    const dir = await policyDir({
      'gateway.yaml': { ...gateway, neverShare: ['originator.officer'] },
      'partners/p1.yaml': partner('p1', { 'originator.officer.id': 'keep', 'originator.force': 'keep' }, [
        { name: 'r', when: 'dossier', conditions: { all: [{ fact: 'subjectCount', operator: 'greaterThan', value: 0 }] }, then: { set: { 'originator.officer.email': { op: 'mask', show: 'first', chars: 1 } } } },
      ]),
      'sources/s1.yaml': source('s1'),
    });
    const details = await problems(dir);
    expect(details).toEqual([
      { path: 'partners/p1.yaml: fields."originator.officer.id"', message: expect.stringMatching(/under originator\.officer, which is on the gateway's neverShare list/) },
      { path: 'partners/p1.yaml: rules[0].then.set."originator.officer.email"', message: expect.stringMatching(/neverShare/) },
    ]);
  });
});

describe('loadPolicySet: reliability information travels with intelligence', () => {
  it('refuses a rule that would separate an item from its grading or handling conditions', async () => {
    const intel = {
      'subjects[].intelligence[].summary': 'keep',
      'subjects[].intelligence[].grading.source': 'keep',
      'subjects[].intelligence[].grading.intelligence': 'keep',
      'subjects[].intelligence[].grading.handling': 'keep',
      'subjects[].intelligence[].handlingConditions': 'keep',
    };
    const ok = await policyDir({ 'gateway.yaml': gateway, 'partners/p1.yaml': partner('p1', intel), 'sources/s1.yaml': source('s1') });
    await expect(loadPolicySet(ok, NOW)).resolves.toBeDefined();
    const rule = { name: 'r', when: 'subject', conditions: { all: [{ fact: 'isMinor', operator: 'equal', value: true }] }, then: { set: { 'subjects[].intelligence[].handlingConditions': 'strip' } } };
    const bad = await policyDir({ 'gateway.yaml': gateway, 'partners/p1.yaml': partner('p1', intel, [rule]), 'sources/s1.yaml': source('s1') });
    expect(await problems(bad)).toEqual([
      { path: 'partners/p1.yaml: rules[0].then.set."subjects[].intelligence[].handlingConditions"', message: expect.stringMatching(/must travel with every shared item/) },
    ]);
  });
});

describe('loadPolicyTests', () => {
  it('loads the sample policy tests with their dossiers', async () => {
    const tests = await loadPolicyTests(SAMPLE);
    expect(tests.length).toBeGreaterThanOrEqual(6);
    for (const t of tests) expect(t.dossier.schema).toBe('cordon.dossier/v1');
  });

  it('reports malformed tests and unreadable dossiers', async () => {
    const dir = await policyDir({
      'tests/a.yaml': { name: 'x', dossier: 'example:no-such-dossier', partner: 'dvla', expect: { absent: ['/a'] } },
      'tests/b.yaml': { name: 'y', dossier: '../escape.json', partner: 'dvla', expect: {} },
    });
    await expect(loadPolicyTests(dir)).rejects.toMatchObject({ code: 'policy_invalid' });
  });
});
