/**
 * The recipient choice (policy/recipients.ts) on the sample policy set: which partners a dossier goes
 * to and why, what is refused, and the lint of the request-check table both ways.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Dossier } from '../../gateway/dossier/types.js';
import { GatewayError } from '../../gateway/errors/index.js';
import { checkRequestTable } from '../../gateway/governance/request-checks.js';
import { loadPolicySet } from '../../gateway/policy/load.js';
import { chooseRecipients } from '../../gateway/policy/recipients.js';
import type { PolicySet } from '../../gateway/policy/types.js';
import { fixture, ROOT } from '../helpers/gateway.js';

let set: PolicySet;
const full = fixture('dossier-full.json') as unknown as Dossier;

function withRequests(requests: Dossier['requests'], base: Dossier = full): Dossier {
  const d = structuredClone(base);
  if (requests === undefined) delete d.requests;
  else d.requests = requests;
  return d;
}

/** The example dossier without its child (Tyler, flagged child-criminal-exploitation) and with every age known adult. */
function adultsOnly(requests: Dossier['requests']): Dossier {
  const d = withRequests(requests);
  d.subjects = d.subjects.filter((s) => s.dateOfBirth !== undefined && !(s.vulnerabilities ?? []).includes('child-criminal-exploitation') && s.dateOfBirth < '2000-01-01');
  for (const s of d.subjects) s.associates = [];
  return d;
}

function refusal(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (err) {
    if (err instanceof GatewayError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

beforeAll(async () => {
  set = await loadPolicySet(`${ROOT}/policies`, new Date('2026-11-21T12:00:00Z'));
});

describe('chooseRecipients', () => {
  it('sends a vehicles-only request to DVLA, and to children\'s services only under its statutory condition', () => {
    const choice = chooseRecipients(withRequests({ checks: ['vehicles'] }), set);
    expect(choice.recipients.map((r) => r.partner)).toEqual(['childrens-services', 'dvla']);
    const dvla = choice.recipients.find((r) => r.partner === 'dvla')!;
    expect(dvla.why).toEqual({ requested: { checks: ['vehicles'], kinds: ['vehicle'] } });
    expect(dvla.kinds).toEqual(['vehicle']);
    const csc = choice.recipients.find((r) => r.partner === 'childrens-services')!;
    expect(csc.why.requested).toBeUndefined();
    expect(csc.why.statutory?.name).toBe('child-at-risk');
    expect(csc.why.statutory?.reason).toContain('Children Act 2004 s.11');
    expect(csc.why.statutory?.subjects).toBeGreaterThanOrEqual(1);
    expect(csc.kinds).toEqual([...set.partners.get('childrens-services')!.partner.checks].sort());
    expect(choice.notSent.map((n) => [n.partner, n.state])).toEqual([
      ['council-housing', 'not_requested'],
      ['dwp-benefits', 'not_requested'],
      ['hmrc', 'not_requested'],
      ['immigration-enforcement', 'not_requested'],
      ['riverside-homes', 'not_requested'],
    ]);
    expect(choice.notSent.find((n) => n.partner === 'hmrc')!.reason).toContain('vehicles');
  });

  it('sends nothing to anyone but a statutory recipient when no checks are requested', () => {
    const choice = chooseRecipients(withRequests(undefined), set);
    expect(choice.recipients.map((r) => r.partner)).toEqual(['childrens-services']);
    expect(choice.notSent).toHaveLength(6);
    for (const n of choice.notSent) expect(n.reason).toContain('requests no checks');
  });

  it('leaves children\'s services out when no subject is or may be a child', () => {
    const choice = chooseRecipients(adultsOnly({ checks: ['vehicles'] }), set);
    expect(choice.recipients.map((r) => r.partner)).toEqual(['dvla']);
  });

  it('counts an unknown age as a possible child (true or unknown)', () => {
    const d = adultsOnly({ checks: ['vehicles'] });
    delete d.subjects[0]!.dateOfBirth;
    expect(chooseRecipients(d, set).recipients.map((r) => r.partner)).toEqual(['childrens-services', 'dvla']);
  });

  it('narrows to requests.partners, and says why the others are not sent', () => {
    const choice = chooseRecipients(adultsOnly({ checks: ['addresses'], partners: ['hmrc'] }), set);
    expect(choice.recipients.map((r) => r.partner)).toEqual(['hmrc']);
    expect(choice.notSent.find((n) => n.partner === 'dvla')!.reason).toContain('requests.partners');
  });

  it('refuses an unknown partner id with its path', () => {
    const err = refusal(() => chooseRecipients(withRequests({ checks: ['vehicles'], partners: ['dvla', 'nobody'] }), set));
    expect(err.code).toBe('partner_unknown');
    expect(err.details).toEqual([expect.objectContaining({ path: '/requests/partners/1' })]);
  });

  it('defers a statutory delivery with the force\'s reason and review date', () => {
    const defer = [{ partner: 'childrens-services', reason: 'would alert the group', reviewBy: '2026-12-15' }];
    const choice = chooseRecipients(withRequests({ checks: ['vehicles'], defer }), set);
    expect(choice.recipients.map((r) => r.partner)).toEqual(['dvla']);
    expect(choice.notSent.find((n) => n.partner === 'childrens-services')).toEqual({
      partner: 'childrens-services',
      state: 'deferred',
      reason: 'would alert the group',
      reviewBy: '2026-12-15',
      statutory: { name: 'child-at-risk', reason: expect.stringContaining('Children Act 2004 s.11') },
    });
  });

  it('refuses to defer a delivery no statutory condition makes, and an unknown partner', () => {
    const notStatutory = refusal(() => chooseRecipients(withRequests({ checks: ['vehicles'], defer: [{ partner: 'dvla', reason: 'r', reviewBy: '2026-12-15' }] }), set));
    expect(notStatutory.code).toBe('defer_not_statutory');
    expect(notStatutory.details?.[0]?.path).toBe('/requests/defer/0/partner');
    const adults = refusal(() => chooseRecipients(adultsOnly({ checks: ['vehicles'], defer: [{ partner: 'childrens-services', reason: 'r', reviewBy: '2026-12-15' }] }), set));
    expect(adults.code).toBe('defer_not_statutory');
    const unknown = refusal(() => chooseRecipients(withRequests({ checks: ['vehicles'], defer: [{ partner: 'nobody', reason: 'r', reviewBy: '2026-12-15' }] }), set));
    expect(unknown.code).toBe('partner_unknown');
    expect(unknown.details?.[0]?.path).toBe('/requests/defer/0/partner');
  });

  it('sends nothing to anyone when the table is missing, except under a statutory condition', () => {
    const bare = { ...set, gateway: { ...set.gateway, requestChecks: undefined } };
    expect(chooseRecipients(withRequests({ checks: ['vehicles'] }), bare).recipients.map((r) => r.partner)).toEqual(['childrens-services']);
  });
});

describe('the request-check table lint', () => {
  it('finds nothing on the samples (phones is mapped to [] on purpose)', () => {
    expect(set.gateway.requestChecks?.phones).toEqual([]);
    expect(checkRequestTable(set)).toEqual([]);
  });

  it('a request word mapped to kinds no partner serves is a warning', () => {
    const findings = checkRequestTable({ ...set, gateway: { ...set.gateway, requestChecks: { ...set.gateway.requestChecks!, phones: ['phone'] } } });
    expect(findings).toEqual([expect.objectContaining({ severity: 'warning', file: 'gateway.yaml', location: 'requestChecks.phones', message: expect.stringContaining('no partner serves phone') })]);
  });

  it('a partner check no word reaches is a warning; a partner nothing reaches, without a statutory condition, an error', () => {
    const table = { ...set.gateway.requestChecks! };
    delete table.vehicles;
    delete table.addresses;
    const findings = checkRequestTable({ ...set, gateway: { ...set.gateway, requestChecks: table } });
    const dvla = findings.filter((f) => f.file === 'partners/dvla.yaml');
    expect(dvla).toEqual([expect.objectContaining({ severity: 'error', location: 'partner.checks' })]);
    const housing = findings.filter((f) => f.file === 'partners/council-housing.yaml');
    expect(housing).toEqual([expect.objectContaining({ severity: 'warning', message: expect.stringContaining('address') })]);
    expect(findings).toContainEqual(expect.objectContaining({ file: 'gateway.yaml', location: 'requestChecks', message: expect.stringContaining('"vehicles" is not mapped') }));
  });

  it('a missing table is an error', () => {
    expect(checkRequestTable({ ...set, gateway: { ...set.gateway, requestChecks: undefined } })).toEqual([expect.objectContaining({ severity: 'error', file: 'gateway.yaml' })]);
  });
});

describe('the dossier schema for requests', () => {
  it('refuses malformed partners and deferrals with their paths, and takes a request without checks', async () => {
    const { validateDossier } = await import('../../gateway/dossier/validate.js');
    const bad = (requests: unknown) => refusal(() => validateDossier({ ...structuredClone(full), requests }));
    expect(bad({ checks: ['vehicles'], partners: ['DVLA!'] }).details).toContainEqual(expect.objectContaining({ path: '/requests/partners/0' }));
    expect(bad({ checks: ['vehicles'], defer: [{ partner: 'childrens-services', reason: 'r', reviewBy: 'soon' }] }).details).toContainEqual(
      expect.objectContaining({ path: '/requests/defer/0/reviewBy' }),
    );
    expect(bad({ checks: ['vehicles'], defer: [{ partner: 'childrens-services', reviewBy: '2026-12-15' }] }).code).toBe('schema_violation');
    expect(validateDossier({ ...structuredClone(full), requests: { partners: ['dvla'] } }).requests).toEqual({ partners: ['dvla'] });
  });
});
