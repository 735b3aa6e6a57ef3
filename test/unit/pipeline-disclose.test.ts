import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RecipientKey } from '../../gateway/crypto/openpgp.js';
import type { Dossier } from '../../gateway/dossier/types.js';
import { disclose, drawRefs, packetPlaintext } from '../../gateway/pipeline/disclose.js';
import { Decider } from '../../gateway/policy/decide.js';
import { loadPolicySet } from '../../gateway/policy/load.js';
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

describe('disclose with the sample policies', () => {
  it('replaces subject ids by refs it can map back, and describes the disclosure for the audit trail', async () => {
    const now = new Date('2026-11-21T12:00:00Z');
    const set = await loadPolicySet(path.resolve(import.meta.dirname, '../../policies'), now);
    const policy = set.partners.get('council-housing')!;
    const d = fixture('dossier-full.json') as unknown as Dossier;
    const out = await disclose({
      dossierId: 'dos_1',
      source: 'west-midlands',
      dossier: d,
      recipient: 'council-housing',
      policy,
      decide: () => new Decider(set).decide('council-housing', d, now),
      key: async () => key,
      pseudonymKey: Buffer.alloc(32, 2),
    });
    if ('block' in out) throw new Error(`blocked: ${out.block.reason}`);
    const subjects = out.redacted.subjects as Array<{ id: string }>;
    expect(subjects.length).toBeGreaterThan(0);
    for (const s of subjects) {
      expect(s.id).toMatch(/^ref_/);
      expect(d.subjects.map((x) => x.id)).toContain(out.byRef[s.id]);
    }
    expect(JSON.stringify(out.redacted)).not.toContain(d.subjects[0]!.id);
    const seen: string[][] = [];
    const event = out.event('packet.created', 'pkt_1', (ids) => (seen.push(ids), undefined));
    expect(event).toMatchObject({
      kind: 'disclosure',
      action: 'packet.created',
      dossier: 'dos_1',
      packet: 'pkt_1',
      recipient: 'council-housing',
      source: 'west-midlands',
      policyRevision: set.revision,
      agreement: { reference: policy.agreement.reference, legalBasis: policy.agreement.legalBasis, purpose: policy.agreement.purpose },
      keyFingerprint: key.fingerprint,
      justification: { agreement: policy.agreement.reference, agreementPurpose: policy.agreement.purpose, dossierPurpose: 'sealed with dossier dos_1' },
    });
    expect(Array.isArray(event.fields)).toBe(true);
    expect(seen).toEqual([subjects.map((s) => out.byRef[s.id])]);
    expect('index' in out.event('exchange.envelope_prepared', 'env_1')).toBe(false);
  });
});
