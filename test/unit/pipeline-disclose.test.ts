import { describe, expect, it } from 'vitest';
import type { RecipientKey } from '../../gateway/crypto/openpgp.js';
import type { Dossier } from '../../gateway/dossier/types.js';
import { disclose, drawRefs, packetPlaintext } from '../../gateway/pipeline/disclose.js';
import type { Agreement, Decision } from '../../gateway/policy/types.js';
import { fixture } from '../helpers/gateway.js';

const dossier = fixture('dossier-minimal.json') as unknown as Dossier;
const agreement = { reference: 'ISA-WM-2025-01', legalBasis: 'Crime and Disorder Act 1998 s.115', purpose: 'Tackling OCG tenancy fraud', retentionDays: 90 } as unknown as Agreement;
const key = { fingerprint: 'AB'.repeat(20), key: {}, expiresAt: null } as unknown as RecipientKey;

describe('disclose', () => {
  it('draws one ref per subject, opaque and distinct', () => {
    const refs = drawRefs(dossier);
    expect([...refs.keys()]).toEqual(dossier.subjects.map((s) => s.id));
    for (const ref of refs.values()) expect(ref).toMatch(/^ref_[0-9a-f]{16}$/);
    expect(new Set(refs.values()).size).toBe(refs.size);
  });

  it('writes the packet plaintext header of the contract, in its order', () => {
    const text = packetPlaintext(
      { id: 'pkt_x', recipient: 'dvla', issuedAt: new Date('2026-03-01T12:00:00Z'), expiresAt: new Date('2026-05-30T12:00:00Z'), dossier, revision: 'rev1', policy: { agreement } },
      { schema: 'cordon.dossier/v1' },
    );
    expect(text).toBe(
      JSON.stringify({
        packet: {
          id: 'pkt_x',
          recipient: 'dvla',
          issuedAt: '2026-03-01T12:00:00.000Z',
          expiresAt: '2026-05-30T12:00:00.000Z',
          classification: dossier.classification,
          handling: dossier.handling,
          policy: { id: 'dvla', revision: 'rev1' },
          agreement: { reference: agreement.reference, legalBasis: agreement.legalBasis, purpose: agreement.purpose },
        },
        dossier: { schema: 'cordon.dossier/v1' },
      }),
    );
  });

  it('returns the block of a decision or of a key, and decides nothing more', async () => {
    let keyAsked = false;
    const base = { dossierId: 'dos_1', source: 'west-midlands', dossier, recipient: 'dvla', policy: { agreement }, pseudonymKey: Buffer.alloc(32, 1) };
    const blocked = await disclose({
      ...base,
      decide: async () => ({ partner: 'dvla', revision: 'r', block: { reason: 'agreement_expired', message: 'past review' }, plan: {}, trace: [] }) as unknown as Decision,
      key: async () => ((keyAsked = true), key),
    });
    expect(blocked).toEqual({ revision: 'r', block: { reason: 'agreement_expired', message: 'past review' } });
    expect(keyAsked).toBe(false);
    const noKey = await disclose({
      ...base,
      decide: async () => ({ partner: 'dvla', revision: 'r2', plan: {}, trace: [] }) as unknown as Decision,
      key: async () => ({ reason: 'recipient_key_invalid', message: 'no key' }),
    });
    expect(noKey).toEqual({ revision: 'r2', block: { reason: 'recipient_key_invalid', message: 'no key' } });
  });
});
