import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { agreementStatus, checkAgreement, REVIEW_WARN_DAYS } from '../../gateway/policy/agreement.js';
import { lintPolicies } from '../../gateway/governance/lint.js';
import { loadPolicySet } from '../../gateway/policy/load.js';
import { agreementState } from '../../gateway/hits/hits.js';
import { toolkitStatus } from '../../gateway/http/partners.js';
import { TEST_AGREEMENT } from '../helpers/policies.js';
import type { Dossier } from '../../gateway/dossier/types.js';

const now = new Date('2026-11-21T12:00:00Z');
const dates = (inForceFrom: string, reviewBy: string) => ({ inForceFrom, reviewBy });

describe('agreementStatus: whether an agreement is in force', () => {
  it('runs from the start of its first day to the end of its review day, in UTC', () => {
    expect(agreementStatus(dates('2026-11-21', '2027-01-01'), new Date('2026-11-21T00:00:00Z')).state).toBe('in_force');
    expect(agreementStatus(dates('2026-11-21', '2027-01-01'), new Date('2026-11-20T23:59:59.999Z'))).toMatchObject({ state: 'not_in_force', reason: 'agreement_not_in_force', unreadable: false });
    expect(agreementStatus(dates('2025-01-01', '2026-11-21'), new Date('2026-11-21T23:59:59.999Z'))).toEqual({ state: 'in_force', daysLeft: 0 });
    expect(agreementStatus(dates('2025-01-01', '2026-11-21'), new Date('2026-11-22T00:00:00Z'))).toEqual({ state: 'expired', reason: 'agreement_expired' });
  });

  it('counts whole days left to the end of the review day', () => {
    expect(agreementStatus(dates('2025-01-01', '2026-12-21'), now)).toEqual({ state: 'in_force', daysLeft: 30 });
    expect(agreementStatus(dates('2025-01-01', '2026-12-22'), now)).toEqual({ state: 'in_force', daysLeft: 31 });
    expect(agreementStatus(dates('2026-12-01', '2026-12-10'), now)).toEqual({ state: 'not_in_force', reason: 'agreement_not_in_force', unreadable: false, daysLeft: 19 });
  });

  it('fails closed on a date it cannot read: not in force', () => {
    const unreadable = { state: 'not_in_force', reason: 'agreement_not_in_force', unreadable: true };
    for (const [from, review] of [
      ['2025-02-30', '2027-01-01'],
      ['2025-01-01', 'soon'],
      ['', ''],
      ['2025-1-1', '2027-01-01'],
      ['2025-01-01', '2027-01-01T00:00:00Z'],
    ] as const) {
      expect(agreementStatus(dates(from, review), now)).toEqual(unreadable);
    }
    expect(agreementStatus(dates('2025-01-01', '2027-01-01'), new Date(Number.NaN))).toEqual(unreadable);
  });

  it('is what every user of an agreement sees, also on an unreadable date', () => {
    const bad = dates('2025-01-01', 'not a date');
    expect(agreementState(bad, now)).toBe('not_in_force');
    expect(toolkitStatus(bad, now)).toBe('not_in_force');
    const d = { classification: 'OFFICIAL-SENSITIVE', handling: { code: 'P' } } as unknown as Dossier;
    expect(checkAgreement({ ...TEST_AGREEMENT, ...bad }, d, now)).toMatchObject({ reason: 'agreement_not_in_force', message: expect.stringMatching(/cannot be read/) });
    expect(checkAgreement({ ...TEST_AGREEMENT, inForceFrom: '2025-13-01' }, d, now)?.reason).toBe('agreement_not_in_force');
  });
});

describe('agreement status in the partnership toolkit', () => {
  it('follows the in-force and review dates, warning 90 whole days ahead', () => {
    expect(REVIEW_WARN_DAYS).toBe(90);
    expect(toolkitStatus(dates('2026-12-01', '2027-12-01'), now)).toBe('not_in_force');
    expect(toolkitStatus(dates('2025-01-01', '2027-06-30'), now)).toBe('in_force');
    expect(toolkitStatus(dates('2025-01-01', '2026-12-21'), now)).toBe('review_due'); // 30 days left
    expect(toolkitStatus(dates('2025-01-01', '2027-02-19'), now)).toBe('review_due'); // 90 days left
    expect(toolkitStatus(dates('2025-01-01', '2027-02-20'), now)).toBe('in_force'); // 91 days left
    expect(toolkitStatus(dates('2025-01-01', '2026-11-21'), now)).toBe('review_due'); // the review day itself
    expect(toolkitStatus(dates('2025-01-01', '2026-11-20'), now)).toBe('expired');
  });

  it('says review_due exactly when `cordon policy lint` warns of the review date', async () => {
    const dir = path.resolve(import.meta.dirname, '../../policies');
    const set = await loadPolicySet(dir, now);
    const housing = set.partners.get('council-housing')!.agreement; // review by 2028-03-31
    for (const [at, due] of [
      ['2027-12-31T12:00:00Z', false], // 91 days left
      ['2028-01-01T12:00:00Z', true], // 90 days left
    ] as const) {
      const when = new Date(at);
      const lint = await lintPolicies(dir, { now: when });
      const warned = lint.findings.some((f) => f.file === 'partners/council-housing.yaml' && /due for review/.test(f.message));
      expect(warned, at).toBe(due);
      expect(toolkitStatus(housing, when), at).toBe(due ? 'review_due' : 'in_force');
    }
  });
});
