/** Preview (pure building, request validation, the audited use case) and diff between policy sets. */
import { beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { GatewayError } from '../../gateway/errors/index.js';
import type { Dossier } from '../../gateway/dossier/types.js';
import { Decider } from '../../gateway/policy/decide.js';
import { comparePartner, diffSets, isUnchanged, partnerView } from '../../gateway/governance/diff.js';
import { buildLiveSet } from '../../gateway/policy/live.js';
import { loadPolicySet } from '../../gateway/policy/load.js';
import { buildPreview, parsePreviewRequest, PolicyPreview, previewPseudonymKey, type PreviewAuditEvent } from '../../gateway/governance/preview.js';
import type { PartnerPolicy, PolicySet } from '../../gateway/policy/types.js';
import full from '../../examples/dossier-full.json' with { type: 'json' };
import minimal from '../../examples/dossier-minimal.json' with { type: 'json' };

const NOW = new Date('2026-11-21T12:00:00Z');
const SAMPLE = path.resolve(import.meta.dirname, '../../policies');
const d = full as unknown as Dossier;

let set: PolicySet;
beforeAll(async () => {
  set = await loadPolicySet(SAMPLE, NOW);
});

/** A copy of the set with one partner's policy changed (and a new revision). */
function withPartner(id: string, change: (p: PartnerPolicy) => PartnerPolicy, revision = 'edited0000000000'): PolicySet {
  const partners = new Map(set.partners);
  partners.set(id, change(structuredClone(set.partners.get(id)!)));
  return { ...set, revision, partners };
}

describe('buildPreview', () => {
  it('builds the packet-shaped plaintext with placeholders, the trace and the disclosed paths', async () => {
    const p = await buildPreview({ set, decider: new Decider(set), dossier: d, partner: 'hmrc', now: NOW });
    expect(p.blocked).toBeNull();
    expect(p.plaintext!.packet).toEqual({
      id: 'pkt_preview',
      recipient: 'hmrc',
      issuedAt: NOW.toISOString(),
      expiresAt: new Date(NOW.getTime() + set.partners.get('hmrc')!.agreement.retentionDays * 86_400_000).toISOString(),
      classification: 'OFFICIAL-SENSITIVE',
      handling: d.handling,
      policy: { id: 'hmrc', revision: set.revision },
      agreement: expect.objectContaining({ reference: set.partners.get('hmrc')!.agreement.reference }),
    });
    expect(p.plaintext!.dossier.subjects).toHaveLength(2);
    expect((p.plaintext!.dossier.subjects as Array<{ id: string; dateOfBirth: string }>)[0]).toMatchObject({ id: 'ref_preview_1', dateOfBirth: '1987' });
    expect(p.refs).toEqual([
      { subjectIndex: 0, subject: 'S1', ref: 'ref_preview_1' },
      { subjectIndex: 1, subject: 'S2', ref: 'ref_preview_2' },
    ]);
    expect(p.trace).toContainEqual(expect.objectContaining({ rule: 'base', op: 'generalise:year', path: 'subjects[].dateOfBirth', subject: 'S1' }));
    expect(p.trace).toContainEqual(expect.objectContaining({ rule: 'known-adults-only', op: 'exclude', subject: 'S4' }));
    expect(p.disclosed).toContainEqual({ path: 'subjects[].dateOfBirth', op: 'generalise:year' });
    expect(JSON.stringify(p.plaintext)).not.toContain('09/123456X');
  });

  it('uses a preview pseudonym key per partner, never the partner\'s', () => {
    expect(previewPseudonymKey('dvla').equals(previewPseudonymKey('dvla'))).toBe(true);
    expect(previewPseudonymKey('dvla').equals(previewPseudonymKey('hmrc'))).toBe(false);
  });

  it('reports agreement and key blocks with no plaintext, and refuses an unknown partner', async () => {
    const later = await buildPreview({ set, decider: new Decider(set), dossier: d, partner: 'dvla', now: new Date('2028-06-01T00:00:00Z') });
    expect(later.blocked?.reason).toBe('agreement_expired');
    expect(later.plaintext).toBeNull();
    const keyless = await buildPreview({ set, decider: new Decider(set), dossier: d, partner: 'dvla', now: NOW, keyProblem: 'key expired' });
    expect(keyless.blocked).toEqual({ reason: 'recipient_key_invalid', message: 'key expired' });
    expect(keyless.trace.length).toBeGreaterThan(0);
    await expect(buildPreview({ set, decider: new Decider(set), dossier: d, partner: 'nobody', now: NOW })).rejects.toMatchObject({ code: 'not_found' });
  });
});

describe('parsePreviewRequest', () => {
  it('accepts {dossier, partner} and nothing else', () => {
    expect(parsePreviewRequest({ dossier: full, partner: 'dvla' }).partner).toBe('dvla');
    const err = (() => {
      try {
        parsePreviewRequest({ dossier: { ...full, purpose: 7 }, partner: 'DVLA', more: true });
      } catch (e) {
        return e as GatewayError;
      }
    })();
    expect(err?.code).toBe('schema_violation');
    expect(err?.details?.map((x) => x.path).sort()).toEqual(['/dossier/purpose', '/more', '/partner']);
    expect(() => parsePreviewRequest(null)).toThrow(GatewayError);
    expect(() => parsePreviewRequest({ dossier: { ...full, classification: 'TOP SECRET' }, partner: 'dvla' })).toThrow(expect.objectContaining({ code: 'classification_refused' }));
  });
});

describe('PolicyPreview (the audited use case)', () => {
  it('appends one consultation record without values before answering', async () => {
    const live = await buildLiveSet(set, async () => ({ ok: true }));
    const events: PreviewAuditEvent[] = [];
    const uc = new PolicyPreview({ live: () => live, audit: { append: async (e) => void events.push(e) } });
    const p = await uc.preview('gov-1', { dossier: full, partner: 'council-housing' }, NOW);
    expect(p.blocked).toBeNull();
    expect(events).toEqual([{ kind: 'consultation', action: 'preview.used', actor: 'gov-1', recipient: 'council-housing', policyRevision: set.revision }]);
    await uc.preview('gov-1', { dossier: minimal, partner: 'childrens-services' }, NOW);
    expect(events[1]).toMatchObject({ recipient: 'childrens-services', reason: 'no_shareable_subjects' });
  });

  it('shows nothing when the audit cannot be written', async () => {
    const live = await buildLiveSet(set, async () => ({ ok: true }));
    const uc = new PolicyPreview({ live: () => live, audit: { append: async () => Promise.reject(new Error('down')) } });
    await expect(uc.preview('gov-1', { dossier: full, partner: 'dvla' }, NOW)).rejects.toMatchObject({ code: 'audit_unavailable' });
  });

  it('blocks on an unusable key, as the fan-out would', async () => {
    const live = await buildLiveSet(set, async (_a, fp) => {
      if (fp.startsWith('05BB')) throw new Error('revoked');
      return { ok: true };
    });
    const uc = new PolicyPreview({ live: () => live, audit: { append: async () => undefined } });
    expect((await uc.preview('g', { dossier: full, partner: 'dvla' }, NOW)).blocked).toEqual({ reason: 'recipient_key_invalid', message: 'revoked' });
    const expiring = new PolicyPreview({ live: () => live, audit: { append: async () => undefined }, checkKey: async () => Promise.reject(new Error('expired yesterday')) });
    expect((await expiring.preview('g', { dossier: full, partner: 'hmrc' }, NOW)).blocked?.message).toBe('expired yesterday');
  });
});

describe('diff between policy sets', () => {
  it('finds no change between a set and itself', async () => {
    for (const x of await diffSets(set, set, d, NOW)) expect(isUnchanged(x), x.partner).toBe(true);
  });

  it('lists gained, lost and changed paths, subjects and deliveries per partner', async () => {
    const edited = withPartner('dvla', (p) => {
      delete p.fields['subjects[].vehicles[].colour'];
      p.fields['subjects[].dateOfBirth'] = { op: 'generalise', to: 'year' };
      p.fields['subjects[].identifiers.passport'] = { op: 'keep' };
      p.rules = p.rules.filter((r) => r.name !== 'no-victims-or-witnesses');
      return p;
    });
    const byPartner = new Map((await diffSets(set, edited, d, NOW)).map((x) => [x.partner, x]));
    const dvla = byPartner.get('dvla')!;
    expect(dvla.paths).toEqual(
      expect.arrayContaining([
        { path: 'subjects[].vehicles[].colour', from: 'keep', change: 'lost' },
        { path: 'subjects[].dateOfBirth', from: 'keep', to: 'generalise:year', change: 'changed' },
        { path: 'subjects[].identifiers.passport', to: 'keep', change: 'gained' },
      ]),
    );
    expect(dvla.subjects).toEqual({ from: ['S1', 'S2'], to: ['S1', 'S2', 'S3'] });
    expect(isUnchanged(byPartner.get('hmrc')!)).toBe(true);

    const expired = withPartner('hmrc', (p) => ({ ...p, agreement: { ...p.agreement, reviewBy: '2026-01-01' } }));
    const hmrc = (await diffSets(set, expired, d, NOW)).find((x) => x.partner === 'hmrc')!;
    expect(hmrc.delivery).toEqual({ from: 'shared', to: 'blocked (agreement_expired)' });
    expect(hmrc.paths.every((c) => c.change === 'lost')).toBe(true);
  });

  it('says when a partner has no policy in one of the sets', async () => {
    const partners = new Map(set.partners);
    partners.delete('dvla');
    const without: PolicySet = { ...set, revision: 'nodvla0000000000', partners };
    const x = comparePartner('dvla', await partnerView(set, new Decider(set), d, 'dvla', NOW), await partnerView(without, new Decider(without), d, 'dvla', NOW));
    expect(x.delivery).toEqual({ from: 'shared', to: 'no policy' });
  });
});
