/** The agreement document (governance/isa.ts, isa-text.ts) built from the sample policy set and from edited copies. */
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { GatewayError } from '../../gateway/errors/index.js';
import { buildIsa } from '../../gateway/governance/isa.js';
import { renderIsa } from '../../gateway/governance/isa-text.js';
import { loadPolicySet } from '../../gateway/policy/load.js';
import type { PartnerPolicy, PolicySet } from '../../gateway/policy/types.js';
import { ROOT } from '../helpers/gateway.js';

const NOW = new Date('2026-11-21T12:00:00Z');
let set: PolicySet;
beforeAll(async () => {
  set = await loadPolicySet(path.join(ROOT, 'policies'));
});

/** The set with one partner's policy changed (a copy: the loaded set is shared between tests). */
function withPartner(id: string, change: (p: PartnerPolicy) => void): PolicySet {
  const p = structuredClone(set.partners.get(id)!);
  change(p);
  return { ...set, partners: new Map([...set.partners, [id, p]]) };
}

describe('the agreement document', () => {
  it('follows the template: parties, purpose, legal basis, data items, handling, retention, security, review, owner, signatories, revision', () => {
    const md = renderIsa(set, 'dvla', { format: 'md', now: NOW });
    const headings = [...md.matchAll(/^## (.+)$/gm)].map((m) => m[1]);
    expect(headings).toEqual([
      '1. Parties',
      '2. Purpose',
      '3. Legal basis',
      '4. Data items',
      '5. Disclosure and responses',
      '6. Handling',
      '7. Retention',
      '8. Security',
      '9. Review',
      '10. Owner',
      '11. Signatories',
      '12. Policy revision',
    ]);
    expect(md).toMatch(/^# Information Sharing Agreement ISA-WMP-DVLA-2025-02: West Midlands Police and Driver and Vehicle Licensing Agency$/m);
    expect(md).toContain('**Road Vehicles (Registration and Licensing) Regulations 2002 reg.27** (statutory gateway): release of vehicle keeper data');
    expect(md).toContain('**addresses**: addresses each reduced to its postcode (`subjects[].addresses[]`)');
    expect(md).toContain('vehicle registration mark as recorded (`subjects[].vehicles[].vrm`)');
    expect(md).toMatch(/not known to be an adult \(under 18, or age unknown\): the subject is left out of the packet entirely\. Nobody whose adulthood/);
    expect(md).toContain('Never disclosed to any recipient: originator officer name; originator officer email; PNC id.');
    expect(md).toContain('| Partner (dvla) | keys/dvla.asc | 05BB 0270 C582 DF20 0507 F79C 6C9E 6F22 6FF0 2BAA |');
    expect(md).toContain('no longer than 90 days');
    expect(md).toContain('In force from 2025-05-01; review by 2028-04-30.');
    expect(md).toContain('| West Midlands Police |  |  |  |  |');
    expect(md).toContain(`policy revision ${set.revision} (partner file \`partners/dvla.yaml\`, SHA-256 `);
    expect(md).toContain('`no-onward-disclosure`: Do not pass on');
  });

  it('says a rule in plain English: dates of birth reduced to the year for subjects over 18', () => {
    const changed = withPartner('dvla', (p) => {
      p.rules.push({ name: 'adults-year-only', when: 'subject', conditions: { all: [{ fact: 'isAdult', operator: 'equal', value: true }] }, then: { set: { 'subjects[].dateOfBirth': { op: 'generalise', to: 'year' } } } });
    });
    const rule = buildIsa(changed, 'dvla', { now: NOW }).dataItems.rules.find((r) => r.name === 'adults-year-only')!;
    expect(`${rule.when}: ${rule.effects.join('; ')}`).toBe('For each subject where the subject is known to be 18 or over (or where the dossier does not establish it): date of birth reduced to the year');
  });

  it('describes match-first disclosure with its identifiers, and a statutory condition', () => {
    const dwp = buildIsa(set, 'dwp-benefits', { now: NOW });
    expect(dwp.disclosure.mode).toBe('after-match');
    expect(dwp.disclosure.followUp).toBe('automatic');
    expect(dwp.disclosure.matchIdentifiers.map((m) => m.text)).toEqual(['given name', 'family name', 'name aliases', 'date of birth', 'National Insurance number', 'address postcode']);
    expect(dwp.disclosure.text).toMatch(/^Match first, then disclose\./);
    const csc = buildIsa(set, 'childrens-services', { now: NOW });
    expect(csc.legalBasis.statutory?.name).toBe('child-at-risk');
    expect(csc.legalBasis.statutory?.when).toContain('the subject is a child');
    // Not a competent authority: the non-competent intelligence filter is part of what it is promised.
    expect(csc.dataItems.constraints.some((c) => c.includes('the source grading is 1 or 2'))).toBe(true);
  });

  it('follows the policy: a field taken out of fields leaves the data items', () => {
    const before = buildIsa(set, 'dvla', { now: NOW });
    const changed = withPartner('dvla', (p) => {
      delete p.fields['subjects[].vehicles[].colour'];
    });
    const after = buildIsa(changed, 'dvla', { now: NOW });
    const vehicles = (d: typeof before) => d.dataItems.subjects.find((s) => s.item === 'vehicles')!.fields.map((f) => f.path);
    expect(vehicles(before)).toContain('subjects[].vehicles[].colour');
    expect(vehicles(after)).not.toContain('subjects[].vehicles[].colour');
  });

  it('states the status at now: due for review, past review', () => {
    expect(buildIsa(set, 'dvla', { now: new Date('2028-03-01T00:00:00Z') }).status.state).toBe('review_due');
    expect(buildIsa(set, 'dvla', { now: new Date('2028-05-01T00:00:00Z') }).status.state).toBe('expired');
    expect(buildIsa(set, 'dvla', { now: new Date('2025-01-01T00:00:00Z') }).status.state).toBe('not_in_force');
  });

  it('escapes everything in HTML and carries no script', () => {
    const hostile = withPartner('dvla', (p) => {
      p.agreement.purpose = '<script>alert(1)</script> & "quotes"';
      p.agreement.parties = ['West Midlands Police', '<img src=x onerror=alert(1)>'];
    });
    for (const fragment of [false, true]) {
      const html = renderIsa(hostile, 'dvla', { format: 'html', now: NOW, fragment });
      expect(html).not.toMatch(/<script/i);
      expect(html).not.toMatch(/<img/i);
      expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;');
      expect(html).toContain('<h2>4. Data items</h2>');
      expect(html).toContain('<code>subjects[].vehicles[].vrm</code>');
    }
    expect(renderIsa(set, 'dvla', { format: 'html', now: NOW, fragment: true })).toMatch(/^<article class="isa" data-partner="dvla"/);
  });

  it('refuses an unknown partner with not_found', () => {
    expect(() => renderIsa(set, 'nobody', { format: 'md', now: NOW })).toThrow(GatewayError);
    try {
      buildIsa(set, 'nobody', { now: NOW });
    } catch (err) {
      expect((err as GatewayError).code).toBe('not_found');
      expect((err as GatewayError).message).toContain('dvla');
    }
  });
});
