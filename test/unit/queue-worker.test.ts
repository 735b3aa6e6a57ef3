/** The one permanent-failure rule every queue's worker applies (queue/worker.ts). */
import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../gateway/errors/index.js';
import { isPermanent, PermanentJobError } from '../../gateway/queue/worker.js';

describe('isPermanent', () => {
  it('holds for failures no retry can mend', () => {
    expect(isPermanent(new GatewayError('dossier_unreadable', 'x'))).toBe(true);
    expect(isPermanent(new GatewayError('recipient_key_invalid', 'x'))).toBe(true);
    expect(isPermanent(new PermanentJobError('the peer refused the envelope'))).toBe(true);
  });

  it('does not hold for what may pass', () => {
    expect(isPermanent(new GatewayError('store_unavailable', 'x'))).toBe(false);
    expect(isPermanent(new GatewayError('audit_unavailable', 'x'))).toBe(false);
    expect(isPermanent(new Error('ECONNRESET'))).toBe(false);
    expect(isPermanent(undefined)).toBe(false);
  });
});
