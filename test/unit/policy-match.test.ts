/**
 * Match first, then disclose (policy/match.ts): what a match allowlist may name and what the loader
 * and lint say of it; the match step's plan (identifiers only, as the full plan has them) and the
 * follow-up's (the full plan for some subjects), applied by the one redactor, on the sample policies.
 */
import path from 'node:path';
import YAML from 'yaml';
import { readFile, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lintPolicies } from '../../gateway/governance/lint.js';
import { Decider } from '../../gateway/policy/decide.js';
import { loadPolicySet } from '../../gateway/policy/load.js';
import { isIdentifierPath, matchPlan, onlySubjects } from '../../gateway/policy/match.js';
import { redact } from '../../gateway/redact/redact.js';
import { fixture, ROOT } from '../helpers/gateway.js';
import { copyPolicies, editYaml } from '../helpers/policies.js';
import type { Dossier } from '../../gateway/dossier/types.js';

const NOW = new Date('2026-11-21T12:00:00Z');
const KEY = Buffer.alloc(32, 7);

describe('identifier paths', () => {
  it('admits names, dates of birth, addresses, VRMs, contact details, businesses and identifiers only', () => {
    for (const p of ['subjects[].name.given', 'subjects[].dateOfBirth', 'subjects[].addresses[].postcode', 'subjects[].vehicles[].vrm', 'subjects[].identifiers.niNumber', 'subjects[].phones[]']) {
      expect(isIdentifierPath(p), p).toBe(true);
    }
    for (const p of ['subjects[].role', 'subjects[].intelligence[].summary', 'group.name', 'subjects[].nationality', 'subjects[].vulnerabilities[]', 'subjects[].associates[].subject', 'reference']) {
      expect(isIdentifierPath(p), p).toBe(false);
    }
  });
});

describe('loading and linting a match allowlist', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ dir, cleanup } = await copyPolicies()));
  afterEach(async () => cleanup());

  async function problems(): Promise<Array<{ path?: string; message: string }>> {
    try {
      await loadPolicySet(dir, NOW);
      return [];
    } catch (err) {
      return (err as { details: Array<{ path?: string; message: string }> }).details;
    }
  }

  it('refuses a path that is not an identifier, a neverShare path and an unknown one, each with its place', async () => {
    const file = path.join(dir, 'partners/dwp-benefits.yaml');
    await editYaml(file, ['match'], ['subjects[].role', 'subjects[].identifiers.pnc', 'subjects[].nope', 'subjects[].name.given']);
    const found = await problems();
    expect(found).toEqual([
      expect.objectContaining({ path: 'partners/dwp-benefits.yaml: match[0]', message: expect.stringContaining('is not an identifier') }),
      expect.objectContaining({ path: 'partners/dwp-benefits.yaml: match[1]', message: expect.stringContaining('neverShare') }),
      expect.objectContaining({ path: 'partners/dwp-benefits.yaml: match[2]', message: 'no such field in the dossier schema' }),
    ]);
  });

  it('refuses an after-match agreement without a match allowlist, and followUp on an immediate one', async () => {
    const dwp = path.join(dir, 'partners/dwp-benefits.yaml');
    const doc = YAML.parseDocument(await readFile(dwp, 'utf8'));
    doc.delete('match');
    await writeFile(dwp, doc.toString());
    await editYaml(path.join(dir, 'partners/dvla.yaml'), ['agreement', 'followUp'], 'approval');
    const found = await problems();
    expect(found).toEqual(expect.arrayContaining([
      expect.objectContaining({ path: 'partners/dwp-benefits.yaml: match', message: expect.stringContaining('needs a match allowlist') }),
      expect.objectContaining({ path: 'partners/dvla.yaml: agreement.followUp', message: expect.stringContaining('after-match') }),
    ]));
    expect(found).toHaveLength(2);
  });

  it('loads an after-match peer agreement with its match allowlist, checked like a partner\'s', async () => {
    const peer = path.join(dir, 'peers/warwickshire.yaml');
    await editYaml(peer, ['agreement', 'disclosure'], 'after-match');
    await editYaml(peer, ['agreement', 'followUp'], 'approval');
    await editYaml(peer, ['match'], ['subjects[].name.given', 'subjects[].name.family', 'subjects[].dateOfBirth']);
    expect(await problems()).toEqual([]);
    const set = await loadPolicySet(dir, NOW);
    const w = set.peerPolicies!.get('warwickshire')!;
    expect(w.agreement.disclosure).toBe('after-match');
    expect(w.agreement.followUp).toBe('approval');
    expect(w.match).toEqual(['subjects[].name.given', 'subjects[].name.family', 'subjects[].dateOfBirth']);
  });

  it('refuses an after-match peer agreement without a match allowlist, one naming what is not an identifier, and followUp on an immediate one', async () => {
    const peer = path.join(dir, 'peers/warwickshire.yaml');
    await editYaml(peer, ['agreement', 'disclosure'], 'after-match');
    expect((await problems()).map((p) => p.path)).toEqual(['peers/warwickshire.yaml: match']);
    await editYaml(peer, ['match'], ['subjects[].name.given', 'subjects[].intelligence[].summary', 'group.name']);
    const found = await problems();
    expect(found.map((p) => p.path)).toEqual(['peers/warwickshire.yaml: match[1]', 'peers/warwickshire.yaml: match[2]']);
    expect(found[0]!.message).toContain('is not an identifier');
    await editYaml(peer, ['agreement', 'disclosure'], 'immediate');
    await editYaml(peer, ['match'], ['subjects[].name.given']);
    await editYaml(peer, ['agreement', 'followUp'], 'automatic');
    expect((await problems()).map((p) => p.path)).toEqual(['peers/warwickshire.yaml: agreement.followUp']);
  });

  it('lint warns of a peer match allowlist an immediate agreement never uses, and of an identifier its fields do not grant', async () => {
    const peer = path.join(dir, 'peers/warwickshire.yaml');
    await editYaml(peer, ['match'], ['subjects[].name.given', 'subjects[].phones[]']);
    let r = await lintPolicies(dir, { now: NOW });
    let warnings = r.findings.filter((f) => f.file === 'peers/warwickshire.yaml' && /match/.test(f.message + (f.location ?? '')));
    expect(warnings.map((f) => f.message)).toEqual(expect.arrayContaining([expect.stringContaining('the match allowlist is not used'), 'subjects[].phones[] is not granted by fields: it is never in a match request']));
    await editYaml(peer, ['agreement', 'disclosure'], 'after-match');
    r = await lintPolicies(dir, { now: NOW });
    warnings = r.findings.filter((f) => f.file === 'peers/warwickshire.yaml' && /match/.test(f.message + (f.location ?? '')));
    expect(warnings.map((f) => f.message)).toEqual(['subjects[].phones[] is not granted by fields: it is never in a match request']);
    expect(r.errors).toBe(0);
  });

  it('lint warns of an identifier fields does not grant, and of a match allowlist an immediate agreement never uses', async () => {
    await editYaml(path.join(dir, 'partners/dwp-benefits.yaml'), ['match'], ['subjects[].name.given', 'subjects[].vehicles[].vrm']);
    await editYaml(path.join(dir, 'partners/dvla.yaml'), ['match'], ['subjects[].vehicles[].vrm']);
    const r = await lintPolicies(dir, { now: NOW });
    const warnings = r.findings.filter((f) => f.severity === 'warning' && /match/.test(f.message + (f.location ?? '')));
    expect(warnings.map((f) => [f.file, f.message])).toEqual(expect.arrayContaining([
      ['partners/dvla.yaml', expect.stringContaining('the match allowlist is not used')],
      ['partners/dwp-benefits.yaml', 'subjects[].vehicles[].vrm is not granted by fields: it is never in a match request'],
    ]));
    expect(r.errors).toBe(0);
  });
});

describe('the match step and the follow-up, through the one redactor', () => {
  it('the match plan keeps only allowlisted identifiers, in the form the full plan gives them', async () => {
    const set = await loadPolicySet(path.join(ROOT, 'policies'), NOW);
    const dossier = fixture('dossier-full.json') as unknown as Dossier;
    const decision = await new Decider(set).decide('hmrc', dossier, NOW);
    const refs = new Map(dossier.subjects.map((s, i) => [s.id, `ref-${i + 1}`]));
    const { dossier: out, disclosed } = redact(dossier, matchPlan(decision.plan, set.partners.get('hmrc')!.match!), { refs, pseudonymKey: KEY });
    const subjects = out.subjects as Array<Record<string, unknown>>;
    expect(subjects.map((s) => s.id)).toEqual(['ref-1', 'ref-2']); // the full policy's subjects, no others
    expect(subjects[0]).toEqual({
      id: 'ref-1',
      name: { given: 'Daniel', family: 'Okafor' },
      dateOfBirth: '1987', // generalised to the year, as HMRC's full policy does
      identifiers: { niNumber: 'QQ123456C' },
      addresses: [{ postcode: 'CV6 4FL' }], // HMRC's item filter holds here too: business addresses only
      businesses: [{ companyNumber: '09876543' }],
    });
    expect(Object.keys(out).sort()).toEqual(['schema', 'subjects']);
    expect(disclosed.map((d) => d.path)).not.toContain('subjects[].role');
  });

  it('the follow-up plan is the full plan for the subjects with a hit: associates to the others are dropped', async () => {
    const set = await loadPolicySet(path.join(ROOT, 'policies'), NOW);
    const dossier = fixture('dossier-full.json') as unknown as Dossier;
    const decision = await new Decider(set).decide('council-housing', dossier, NOW);
    const refs = new Map(dossier.subjects.map((s, i) => [s.id, `ref-${i + 1}`]));
    const full = redact(dossier, decision.plan, { refs, pseudonymKey: KEY }).dossier;
    const fullDaniel = (full.subjects as Array<Record<string, unknown>>)[0]!;
    expect(JSON.stringify(fullDaniel.associates)).toContain('ref-2');
    const only = redact(dossier, onlySubjects(decision.plan, (i) => dossier.subjects[i]!.id === 'S1'), { refs, pseudonymKey: KEY }).dossier;
    const subjects = only.subjects as Array<Record<string, unknown>>;
    expect(subjects.map((s) => s.id)).toEqual(['ref-1']);
    expect(JSON.stringify(only)).not.toContain('ref-2');
    expect(JSON.stringify(only)).not.toContain('Samuel');
    // Everything else about Daniel is as in the full disclosure.
    const { associates: _a, ...restFull } = fullDaniel;
    const { associates: _b, ...restOnly } = subjects[0]!;
    expect(restOnly).toEqual(restFull);
  });
});
