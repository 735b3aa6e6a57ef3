/** What of partners' hits crosses to a peer under its file's hits policy (gateway/exchange/hits-policy.ts). */
import { describe, expect, it } from 'vitest';
import { applyHitsPolicy } from '../../gateway/exchange/hits-policy.js';
import type { StoredHit } from '../../gateway/hits/store.js';

const base = { packet: 'pkt_a', matchedOn: ['name', 'dateOfBirth'], confidence: 'confirmed' as const, receivedAt: '2026-11-20T10:00:00.000Z', agreement: { reference: 'ISA-HSG-1' } };
const HITS: StoredHit[] = [
  { ...base, id: 'h1', subject: 'S1', partner: 'council-housing', kind: 'tenancy', detail: { line1: '4 Mill Lane', town: 'Nuneaton', postcode: 'CV11 4AB', tenure: 'council', tenant: 'Daniel Okafor' }, partnerRecordRef: 'NBBC-7731', signed: true },
  { ...base, id: 'h2', subject: 'S1', partner: 'dwp-benefits', kind: 'benefit-claim', detail: { claim: 'UC', nino: 'QQ123456C' }, partnerRecordRef: 'DWP-1' },
  { ...base, id: 'h3', subject: 'S2', partner: 'dvla', kind: 'vehicle', detail: { vrm: 'AB12CDE', make: 'Ford', model: 'Transit', colour: 'white', keeperSince: '2024-01-02' } },
];

describe('applyHitsPolicy', () => {
  it('the minimum (no hits block): every kind, each with its subject and kind but no detail and no record ref', () => {
    const { relayed, notRelayed } = applyHitsPolicy(HITS, { declared: false, detail: 'drop', partnerRecordRef: 'drop' });
    expect(notRelayed).toBe(0);
    expect(relayed.map((h) => [h.subject, h.kind, h.detail, h.partnerRecordRef])).toEqual([
      ['S1', 'tenancy', {}, undefined],
      ['S1', 'benefit-claim', {}, undefined],
      ['S2', 'vehicle', {}, undefined],
    ]);
    const text = JSON.stringify(relayed);
    for (const value of ['Mill Lane', 'NBBC-7731', 'QQ123456C', 'AB12CDE', 'Okafor']) expect(text).not.toContain(value);
  });

  it('only the listed kinds cross; detail and refs kept when the file says so; signed carried per hit', () => {
    const { relayed, notRelayed } = applyHitsPolicy(HITS, { declared: true, kinds: ['tenancy', 'vehicle'], detail: 'keep', partnerRecordRef: 'keep' });
    expect(notRelayed).toBe(1);
    expect(relayed.map((h) => h.id)).toEqual(['h1', 'h3']);
    expect(relayed[0]).toMatchObject({ detail: HITS[0]!.detail, partnerRecordRef: 'NBBC-7731', signed: true });
    expect(relayed[1]).toMatchObject({ detail: HITS[2]!.detail, signed: false });
    expect(relayed[1]!.partnerRecordRef).toBeUndefined();
  });

  it('generalised detail keeps the town, the postcode district and descriptions; street, names, numbers and dates go', () => {
    const { relayed } = applyHitsPolicy(HITS, { declared: true, detail: 'generalise', partnerRecordRef: 'drop' });
    expect(relayed[0]!.detail).toEqual({ town: 'Nuneaton', postcodeDistrict: 'CV11', tenure: 'council' });
    expect(relayed[1]!.detail).toEqual({});
    expect(relayed[2]!.detail).toEqual({ make: 'Ford', model: 'Transit', colour: 'white' });
  });
});
