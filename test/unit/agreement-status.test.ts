import { describe, expect, it } from 'vitest';
import { agreementStatus } from '../../gateway/http/partners.js';

describe('agreement status in the partnership toolkit', () => {
  const now = new Date('2026-11-21T12:00:00Z');
  it('follows the in-force and review dates, warning 30 whole days ahead', () => {
    expect(agreementStatus('2026-12-01', '2027-12-01', now)).toBe('not_in_force');
    expect(agreementStatus('2025-01-01', '2027-06-30', now)).toBe('in_force');
    expect(agreementStatus('2025-01-01', '2026-12-21', now)).toBe('review_due'); // 30 days left
    expect(agreementStatus('2025-01-01', '2026-12-22', now)).toBe('in_force'); // 31 days left
    expect(agreementStatus('2025-01-01', '2026-11-21', now)).toBe('review_due'); // the review day itself
    expect(agreementStatus('2025-01-01', '2026-11-20', now)).toBe('expired');
  });
});
