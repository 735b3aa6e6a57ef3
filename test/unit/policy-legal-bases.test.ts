/**
 * The legal-basis catalogue and the data-items check, as `cordon policy lint` applies them: a basis that
 * does not cover the recipient's kind, an exemption cited as a basis, a citation the catalogue does not
 * know, DPA 2018 Part 3 for a recipient that is not a competent authority (errors); data items and
 * fields that disagree, a review date within 90 days (warnings). And the shipped samples are clean.
 */
import { afterAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { parseRecipientKey } from '../../gateway/crypto/openpgp.js';
import { compareDataItems, familiesOfItem } from '../../gateway/governance/data-items.js';
import { assessLegalBasis, citedBases, LEGAL_BASES, RECIPIENT_KINDS, unknownInstruments } from '../../gateway/governance/legal-bases.js';
import { lintPolicies, type LintFinding } from '../../gateway/governance/lint.js';
import { loadPolicySet } from '../../gateway/policy/load.js';
import type { Operation } from '../../gateway/policy/types.js';
import { copyPolicies, editYaml } from '../helpers/policies.js';

const NOW = new Date('2026-12-04T12:00:00Z');
const SAMPLE = path.resolve(import.meta.dirname, '../../policies');
const checkKey = async (armored: string, fp: string) => parseRecipientKey(armored, fp, new Date());

const copies: Array<Awaited<ReturnType<typeof copyPolicies>>> = [];
afterAll(async () => {
  for (const c of copies) await c.cleanup();
});

/** A copy of the samples with some YAML values set, linted at NOW. */
async function lintEdited(edits: Array<[file: string, at: (string | number)[], value: unknown]>) {
  const copy = await copyPolicies();
  copies.push(copy);
  for (const [file, at, value] of edits) await editYaml(path.join(copy.dir, file), at, value);
  return lintPolicies(copy.dir, { now: NOW, checkKey });
}

const about = (r: { findings: LintFinding[] }, file: string, location: string) => r.findings.filter((f) => f.file === file && f.location === location);
const keep: Operation = { op: 'keep' };

describe('the legal-basis catalogue', () => {
  const la = { kind: 'local-authority', competentAuthority: false };
  const dwp = { kind: 'benefits-authority', competentAuthority: true };

  it('has unique ids, patterns for every entry and only kinds it describes', () => {
    expect(new Set(LEGAL_BASES.map((e) => e.id)).size).toBe(LEGAL_BASES.length);
    for (const e of LEGAL_BASES) {
      expect(e.patterns.length).toBeGreaterThan(0);
      for (const k of e.kinds ?? []) expect(RECIPIENT_KINDS[k], `${e.id}: ${k}`).toBeDefined();
    }
  });

  it('recognises citations however they are written', () => {
    const ids = (t: string) => citedBases(t).map((e) => e.id);
    expect(ids('Crime and Disorder Act 1998 s.115')).toEqual(['cda-1998-s115']);
    expect(ids('Crime and Disorder Act 1998, section 115')).toEqual(['cda-1998-s115']);
    expect(ids('Crime and Disorder Act 1998 s.17')).toEqual([]);
    expect(ids('Data Protection Act 2018 Part 3 s.35')).toEqual(['dpa-2018-part3-s35']);
    expect(ids('DPA 2018 s. 35 (first principle)')).toEqual(['dpa-2018-part3-s35']);
    expect(ids('Data Protection Act 2018 Sch. 2\n    para 2 (crime and taxation)')).toEqual(['dpa-2018-sch2-para2']);
    expect(ids('Data Protection Act 2018 Schedule 2, Part 1, paragraph 4')).toEqual(['dpa-2018-sch2-para4']);
    expect(ids('Commissioners for Revenue and Customs Act 2005 s.18(2) and s.20')).toEqual(['crca-2005-s18-s20']);
    expect(ids('Children Act 2004 ss.10-11')).toEqual(['children-act-2004']);
    expect(ids('Digital Economy Act 2017 Part 5 Chapter 4 (fraud)')).toEqual(['dea-2017-part5']);
    expect(ids('Road Vehicles (Registration and Licensing) Regulations 2002 reg. 27')).toEqual(['rvrl-2002-reg27']);
  });

  it('errors when a gateway does not cover the kind of recipient (DWP is not a s.115 relevant authority)', () => {
    const r = assessLegalBasis('Crime and Disorder Act 1998 s.115; Social Security Administration Act 1992 s.122', dwp);
    expect(r.problems).toEqual([{ severity: 'error', message: expect.stringMatching(/^cites Crime and Disorder Act 1998 s\.115, which does not cover a recipient of kind benefits-authority: it is a power to disclose to a relevant authority .*, and covers police-force, local-authority,/) }]);
    expect(assessLegalBasis('Crime and Disorder Act 1998 s.115', la).problems).toEqual([]);
    expect(assessLegalBasis('Commissioners for Revenue and Customs Act 2005 s.20', la).problems.map((p) => p.message)).toEqual([expect.stringMatching(/kind local-authority: .*, and covers revenue-authority$/)]);
  });

  it('errors on an exemption cited as a basis, even beside a good one', () => {
    const r = assessLegalBasis('Data Protection Act 2018 Part 3 s.35 and Sch. 2 para 2 (crime and taxation)', dwp);
    expect(r.problems).toEqual([{ severity: 'error', message: expect.stringMatching(/^cites Data Protection Act 2018 Sch\. 2 para 2 \(crime and taxation\), an exemption and not a basis/) }]);
  });

  it('errors on a citation the catalogue does not know, and on a basis with no gateway at all', () => {
    expect(unknownInstruments('Local Government Act 1972 s.111 and the Localism Act 2011; Crime and Disorder Act 1998 s.115')).toEqual(['Local Government Act 1972', 'Localism Act 2011']);
    expect(unknownInstruments('agreement (Modern Slavery Act 2015; Road Vehicles (Registration and Licensing) Regulations 2002 reg. 27)')).toEqual([]);
    const r = assessLegalBasis('Local Government Act 1972 s.111; UK GDPR Art. 6(1)(e)', la);
    expect(r.problems).toEqual([
      { severity: 'error', message: expect.stringMatching(/^cites Local Government Act 1972, which the legal-basis catalogue does not know/) },
      { severity: 'error', message: expect.stringMatching(/^names no statutory gateway the legal-basis catalogue knows/) },
    ]);
    expect(assessLegalBasis('the law', la).problems).toHaveLength(1);
  });

  it('errors on DPA 2018 Part 3 (and its Sch. 8 conditions) for a recipient that is not a competent authority', () => {
    const r = assessLegalBasis('Crime and Disorder Act 1998 s.115; Data Protection Act 2018 Part 3 s.35 and Sch. 8 para 4', la);
    expect(r.problems.map((p) => p.message)).toEqual([
      expect.stringMatching(/^cites Data Protection Act 2018 Part 3 s\.35, which is for competent authorities/),
      expect.stringMatching(/^cites Data Protection Act 2018 Sch\. 8 conditions, which is for competent authorities/),
    ]);
    expect(assessLegalBasis('Data Protection Act 2018 Part 3 s.35', { kind: 'police-force', competentAuthority: true }).problems).toEqual([]);
  });

  it('warns about a kind it does not know', () => {
    expect(assessLegalBasis('Data Protection Act 2018 Part 3 s.35', { kind: 'bank', competentAuthority: true }).problems).toEqual([
      { severity: 'warning', message: expect.stringMatching(/^kind bank is not one the legal-basis catalogue knows/) },
    ]);
  });
});

describe('data items against fields', () => {
  it('reads the families a data item names', () => {
    const ids = (item: string) => familiesOfItem(item).map((f) => f.id);
    expect(ids('names and aliases of children')).toEqual(['aliases', 'names']);
    expect(ids("the group's name, crime types and areas")).toEqual(['group']);
    expect(ids("each person's role in the group (member, associate, potential victim, witness)")).toEqual(['role']);
    expect(ids('business and work addresses')).toEqual(['addresses']);
    expect(ids('businesses, company numbers and roles')).toEqual(['businesses']);
    expect(ids('vehicle registration marks, make, model and colour')).toEqual(['vehicles']);
    expect(ids('year of birth')).toEqual(['dateOfBirth']);
  });

  it('warns about an item not granted, a family granted but not listed, and an item it cannot read', () => {
    const fields: Record<string, Operation> = {
      reference: keep,
      'subjects[].name.given': keep,
      'subjects[].addresses[]': { op: 'generalise', to: 'postcode' },
      'subjects[].vehicles[].vrm': keep,
      'subjects[].phones[]': { op: 'strip' },
    };
    const f = compareDataItems(['names', 'phones and businesses', 'addresses', 'the weather'], fields);
    expect(f).toEqual([
      { location: 'agreement.dataItems[1]', message: expect.stringMatching(/^data item "phones and businesses" lists phone numbers, which fields do not grant/) },
      { location: 'agreement.dataItems[1]', message: expect.stringMatching(/lists businesses, which fields do not grant/) },
      { location: 'agreement.dataItems[3]', message: expect.stringMatching(/^data item "the weather" names no field lint knows/) },
      { location: 'fields."subjects[].vehicles[].vrm"', message: expect.stringMatching(/^fields grant vehicles \(subjects\[\]\.vehicles\[\]\.vrm\), which agreement\.dataItems does not list/) },
    ]);
    expect(compareDataItems(['names', 'postcodes of known addresses', 'vehicles'], fields)).toEqual([]);
  });

  it('warns when an item promises a narrower form (year of birth, postcodes) than the fields grant', () => {
    const fields: Record<string, Operation> = { 'subjects[].dateOfBirth': keep, 'subjects[].addresses[].line1': keep, 'subjects[].addresses[].postcode': keep };
    expect(compareDataItems(['year of birth', 'postcodes of known addresses'], fields)).toEqual([
      { location: 'fields."subjects[].dateOfBirth"', message: expect.stringMatching(/^fields grant more of dates of birth \(subjects\[\]\.dateOfBirth: keep\) than data item "year of birth" lists/) },
      { location: 'fields."subjects[].addresses[].line1"', message: expect.stringMatching(/^fields grant more of addresses \(subjects\[\]\.addresses\[\]\.line1: keep\) than data item "postcodes of known addresses" lists \(postcodes or towns\)/) },
    ]);
    // the whole listed beside the narrow form: nothing to say
    expect(compareDataItems(['year of birth', 'full dates of birth', 'postcodes and known addresses'], fields)).toEqual([]);
    expect(compareDataItems(['year of birth', 'postcodes of known addresses'], { 'subjects[].dateOfBirth': { op: 'generalise', to: 'year' }, 'subjects[].addresses[]': { op: 'generalise', to: 'postcode' } })).toEqual([]);
  });
});

describe('lintPolicies: legal bases, data items and review dates in policy files', () => {
  it('errors on the mistakes the samples used to have, at the legal basis line', async () => {
    const r = await lintPolicies(await (async () => {
      const copy = await copyPolicies();
      copies.push(copy);
      await editYaml(path.join(copy.dir, 'partners/dwp-benefits.yaml'), ['agreement', 'legalBasis'], 'Crime and Disorder Act 1998 s.115; Data Protection Act 2018 Part 3 s.35 and Sch. 2 para 2 (crime and taxation)');
      await editYaml(path.join(copy.dir, 'partners/immigration-enforcement.yaml'), ['agreement', 'legalBasis'], 'Immigration and Asylum Act 1999 s.20; Data Protection Act 2018 Sch. 2 Part 1 para 4 (immigration)');
      await editYaml(path.join(copy.dir, 'partners/council-housing.yaml'), ['agreement', 'legalBasis'], 'Local Government Act 1972 s.111');
      return copy.dir;
    })(), { now: NOW, checkKey });
    const dwp = about(r, 'partners/dwp-benefits.yaml', 'agreement.legalBasis');
    expect(dwp.map((f) => f.severity)).toEqual(['error', 'error']);
    expect(dwp[0]).toMatchObject({ line: expect.any(Number), message: expect.stringMatching(/^agreement ISA-WMP-DWP-CFCD-2025-03 cites Crime and Disorder Act 1998 s\.115, which does not cover a recipient of kind benefits-authority/) });
    expect(dwp[1]?.message).toMatch(/Sch\. 2 para 2 \(crime and taxation\), an exemption and not a basis/);
    expect(about(r, 'partners/immigration-enforcement.yaml', 'agreement.legalBasis').map((f) => f.message)).toEqual([expect.stringMatching(/Sch\. 2 para 4 \(immigration\), an exemption and not a basis/)]);
    expect(about(r, 'partners/council-housing.yaml', 'agreement.legalBasis').map((f) => f.message)).toEqual([
      expect.stringMatching(/cites Local Government Act 1972, which the legal-basis catalogue does not know/),
      expect.stringMatching(/names no statutory gateway/),
    ]);
    expect(r.loads).toBe(true);
    expect(r.errors).toBe(5);
  });

  it('errors on DPA 2018 Part 3 s.35 cited for a partner that is not a competent authority', async () => {
    const r = await lintEdited([['partners/immigration-enforcement.yaml', ['partner', 'competentAuthority'], false]]);
    expect(about(r, 'partners/immigration-enforcement.yaml', 'agreement.legalBasis')).toEqual([
      expect.objectContaining({ severity: 'error', message: expect.stringMatching(/cites Data Protection Act 2018 Part 3 s\.35, which is for competent authorities/) }),
    ]);
    expect(r.errors).toBe(1);
  });

  it('warns when data items and fields disagree (Warwickshire listing phones and businesses it is not granted)', async () => {
    const r = await lintEdited([
      ['peers/warwickshire.yaml', ['agreement', 'dataItems', 2], 'addresses, vehicles, phones, businesses'],
      ['partners/hmrc.yaml', ['agreement', 'dataItems'], ['names and aliases', 'year of birth', 'National Insurance numbers', 'business and work addresses']],
      ['partners/hmrc.yaml', ['fields', 'subjects[].dateOfBirth'], 'keep'],
    ]);
    expect(about(r, 'peers/warwickshire.yaml', 'agreement.dataItems[2]')).toEqual([
      expect.objectContaining({ severity: 'warning', message: expect.stringMatching(/^data item "addresses, vehicles, phones, businesses" lists phone numbers, which fields do not grant/) }),
      expect.objectContaining({ severity: 'warning', message: expect.stringMatching(/^data item "addresses, vehicles, phones, businesses" lists businesses, which fields do not grant/) }),
    ]);
    const hmrc = r.findings.filter((f) => f.file === 'partners/hmrc.yaml');
    expect(hmrc.map((f) => f.message.replace(/ \(.*/, ''))).toEqual(["fields grant the group's details", "fields grant each person's role", 'fields grant more of dates of birth', 'fields grant businesses']);
    expect(hmrc.every((f) => f.severity === 'warning' && f.location?.startsWith('fields.') && f.line !== undefined)).toBe(true);
    expect(r.errors).toBe(0);
  });

  it('warns 90 days before a review date, partners and peers alike, and errors after it', async () => {
    const r = await lintEdited([
      ['partners/dvla.yaml', ['agreement', 'reviewBy'], '2027-03-04'],
      ['partners/hmrc.yaml', ['agreement', 'reviewBy'], '2027-03-05'],
      ['peers/warwickshire.yaml', ['agreement', 'reviewBy'], '2027-01-31'],
      ['partners/dwp-benefits.yaml', ['agreement', 'reviewBy'], '2026-12-03'],
    ]);
    expect(about(r, 'partners/dvla.yaml', 'agreement.reviewBy')).toEqual([expect.objectContaining({ severity: 'warning', message: expect.stringMatching(/due for review by 2027-03-04 \(90 days left\)/) })]);
    expect(about(r, 'partners/hmrc.yaml', 'agreement.reviewBy')).toEqual([]);
    expect(about(r, 'peers/warwickshire.yaml', 'agreement.reviewBy')).toEqual([expect.objectContaining({ severity: 'warning', message: expect.stringMatching(/ISA-WMP-WARKS-2025-07 is due for review by 2027-01-31 \(58 days left\)/) })]);
    expect(about(r, 'partners/dwp-benefits.yaml', 'agreement.reviewBy')).toEqual([expect.objectContaining({ severity: 'error', message: expect.stringMatching(/sharing with dwp-benefits has stopped/) })]);
  });
});

describe('the shipped samples', () => {
  it('lint clean today and a year from today, and say which partners are competent authorities', async () => {
    for (const now of [NOW, new Date('2027-12-04T12:00:00Z')]) {
      const r = await lintPolicies(SAMPLE, { now, checkKey });
      expect(r.findings, now.toISOString()).toEqual([]);
    }
    const set = await loadPolicySet(SAMPLE, NOW);
    const competent = [...set.partners.values()].filter((p) => p.partner.competentAuthority).map((p) => p.partner.id);
    expect(competent).toEqual(['dvla', 'dwp-benefits', 'hmrc', 'immigration-enforcement']);
    expect(set.partners.get('council-housing')?.partner.competentAuthority).toBe(false);
    expect([...(set.peerPolicies?.values() ?? [])].every((p) => p.peer.competentAuthority)).toBe(true);
    for (const p of [...set.partners.values(), ...(set.peerPolicies?.values() ?? [])]) {
      expect(p.agreement.legalBasis).not.toMatch(/Sch\.\s*2\b[^;]*para/);
      expect(p.agreement.reviewBy >= '2027-12-04').toBe(true);
    }
  });
});
