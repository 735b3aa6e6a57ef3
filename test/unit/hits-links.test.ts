import { describe, expect, it } from 'vitest';
import { dossierItems, findLinks, hitItems, matchTokens, packDossierItems, unpackItems, type LinkItem } from '../../gateway/hits/links.js';
import { fixture } from '../helpers/gateway.js';

const full = fixture('dossier-full.json') as any;
const D = 'dos_this';
const OTHER = 'dos_other';

describe('link items from the dossier', () => {
  const items = dossierItems(D, full);

  it('normalises addresses, VRMs, phones and company numbers per subject, with the path they came from', () => {
    expect(items).toContainEqual({
      kind: 'address',
      value: 'CV6 5HX|14 CEDAR ROAD',
      postcode: 'CV6 5HX',
      subject: { dossier: D, subject: 'S1' },
      evidence: { from: 'dossier', dossier: D, subject: 'S1', path: '/subjects/0/addresses/0' },
    });
    expect(items).toContainEqual(expect.objectContaining({ kind: 'vehicle', value: 'KX19LMN', subject: { dossier: D, subject: 'S1' } }));
    expect(items).toContainEqual(expect.objectContaining({ kind: 'phone', value: '+447700900321', subject: { dossier: D, subject: 'S3' } }));
    expect(items).toContainEqual(
      expect.objectContaining({ kind: 'business', value: '09876543', evidence: expect.objectContaining({ path: '/subjects/0/businesses/0/companyNumber' }) }),
    );
  });

  it('an address matches by itself and by its postcode', () => {
    const address = items.find((i) => i.kind === 'address')!;
    expect(matchTokens(address)).toEqual([
      { kind: 'address', value: 'CV6 5HX|14 CEDAR ROAD' },
      { kind: 'postcode', value: 'CV6 5HX' },
    ]);
  });

  it('the example dossier alone links S1 and S3 by postcode CV6 5HX (different houses on Cedar Road), and nothing else', () => {
    const links = findLinks(items, D);
    expect(links).toEqual([
      {
        kind: 'postcode',
        value: 'CV6 5HX',
        subjects: ['S1', 'S3'],
        evidence: [
          { subject: 'S1', source: 'dossier', path: '/subjects/0/addresses/0' },
          { subject: 'S3', source: 'dossier', path: '/subjects/2/addresses/0' },
        ],
      },
    ]);
  });
});

describe('link items from hits', () => {
  it('reads line1+postcode, postcode alone, vrm, phone and company number from the flat detail', () => {
    const items = hitItems(D, {
      subject: 'S2',
      partner: 'dvla',
      kind: 'vehicle',
      detail: { VRM: 'kx19 lmn', postcode: 'cv65hx', mobile: '+44 (0)7700 900123', companyNumber: '9876543', note: 'x' },
      partnerRecordRef: 'DVLA-1',
    });
    expect(items.map((i) => [i.kind, i.value])).toEqual([
      ['postcode', 'CV6 5HX'],
      ['vehicle', 'KX19LMN'],
      ['phone', '+447700900123'],
      ['business', '09876543'],
    ]);
    expect(items[1]!.evidence).toEqual({ from: 'hit', dossier: D, subject: 'S2', partner: 'dvla', hitKind: 'vehicle', field: 'detail.VRM', partnerRecordRef: 'DVLA-1' });
  });

  it('ignores values it cannot normalise and non-string values', () => {
    expect(hitItems(D, { subject: 'S1', partner: 'p', kind: 'other', detail: { postcode: 'nowhere', vrm: 12, phone: 'ask reception' } })).toEqual([]);
  });
});

describe('findLinks', () => {
  const hit = (subject: string, detail: Record<string, string>, partner = 'council-housing', dossier = D): LinkItem[] =>
    hitItems(dossier, { subject, partner, kind: 'address', detail, partnerRecordRef: `${partner}-${subject}` });

  it('the same address written two ways links two subjects; their postcode adds no second link', () => {
    const links = findLinks([...hit('S1', { line1: '22 Cedar Rd', postcode: 'cv65hx' }), ...hit('S3', { line1: '22, CEDAR ROAD', postcode: 'CV6 5HX' })], D);
    expect(links).toHaveLength(1);
    expect(links[0]).toMatchObject({ kind: 'address', value: '22 CEDAR ROAD, CV6 5HX', subjects: ['S1', 'S3'] });
    expect(links[0]!.evidence).toEqual([
      { subject: 'S1', source: 'council-housing', hit: 'address', path: 'detail.line1, detail.postcode', partnerRecordRef: 'council-housing-S1' },
      { subject: 'S3', source: 'council-housing', hit: 'address', path: 'detail.line1, detail.postcode', partnerRecordRef: 'council-housing-S3' },
    ]);
  });

  it('one subject seen twice at a value is not a link', () => {
    const items = [...hit('S1', { line1: '14 Cedar Road', postcode: 'CV6 5HX' }), ...dossierItems(D, { subjects: [full.subjects[0]] })];
    expect(findLinks(items, D)).toEqual([]);
  });

  it('links to subjects of other dossiers only when this dossier has a subject in the group', () => {
    const items = [
      ...hit('S2', { vrm: 'FG65 HJK' }, 'dvla'),
      ...hit('S9', { vrm: 'fg65hjk' }, 'dvla', OTHER),
      ...hit('S7', { vrm: 'ZZ99 ZZZ' }, 'dvla', OTHER),
      ...hit('S8', { vrm: 'ZZ99ZZZ' }, 'dvla', OTHER),
    ];
    const links = findLinks(items, D, new Map([[OTHER, 'WMP-OCG-2026-00001']]));
    expect(links).toEqual([
      {
        kind: 'vehicle',
        value: 'FG65HJK',
        subjects: ['S2'],
        otherDossiers: [{ dossier: OTHER, reference: 'WMP-OCG-2026-00001', subject: 'S9' }],
        evidence: [
          { subject: 'S2', source: 'dvla', hit: 'address', path: 'detail.vrm', partnerRecordRef: 'dvla-S2' },
          { dossier: OTHER, subject: 'S9', source: 'dvla', hit: 'address', path: 'detail.vrm', partnerRecordRef: 'dvla-S9' },
        ],
      },
    ]);
  });

  it('the same subject id in another dossier is another subject', () => {
    const links = findLinks([...hit('S1', { phone: '07700 900123' }), ...hit('S1', { phone: '+447700900123' }, 'council-housing', OTHER)], D);
    expect(links).toHaveLength(1);
    expect(links[0]).toMatchObject({ kind: 'phone', value: '+447700900123', subjects: ['S1'], otherDossiers: [{ dossier: OTHER, subject: 'S1' }] });
  });

  it('postcode links need subjects at more than one address (a postcode-only hit counts as its own)', () => {
    const sameHouse = [...hit('S1', { line1: '22 Cedar Road', postcode: 'CV6 5HX' }), ...hit('S3', { line1: '22 Cedar Road', postcode: 'CV6 5HX' })];
    expect(findLinks(sameHouse, D).map((l) => l.kind)).toEqual(['address']);
    const postcodeOnly = [...hit('S1', { postcode: 'CV6 5HX' }, 'dvla'), ...hit('S2', { postcode: 'cv6 5hx' }, 'dvla')];
    expect(findLinks(postcodeOnly, D)).toMatchObject([{ kind: 'postcode', value: 'CV6 5HX', subjects: ['S1', 'S2'] }]);
  });

  it('orders links by kind then value, subjects naturally (S2 before S10)', () => {
    const items = [
      ...hit('S10', { postcode: 'B1 1AA', line1: '1 High Street' }),
      ...hit('S2', { postcode: 'B1 1AA', line1: '1 High St' }),
      ...hit('S10', { phone: '07700 900999' }),
      ...hit('S2', { phone: '07700900999' }),
      ...hit('S3', { vrm: 'AA11AAA' }),
      ...hit('S4', { vrm: 'AA11 AAA' }),
    ];
    const links = findLinks(items, D);
    expect(links.map((l) => [l.kind, l.subjects])).toEqual([
      ['address', ['S2', 'S10']],
      ['vehicle', ['S3', 'S4']],
      ['phone', ['S2', 'S10']],
    ]);
  });
});

describe('link items as stored', () => {
  const items = dossierItems(D, full);

  it('pack without the dossier id or an address\'s postcode, and unpack to the very same items', () => {
    const packed = packDossierItems(D, items);
    expect(packed.length).toBe(items.length);
    expect(JSON.stringify(packed)).not.toContain(D);
    expect(JSON.stringify(packed).length).toBeLessThan(JSON.stringify(items).length / 2.5);
    expect(unpackItems(D, packed)).toEqual(items);
    // Items stored written out in full (before packing) read as they are.
    expect(unpackItems(D, items)).toEqual(items);
  });

  it('refuse to pack what is not the dossier\'s own data', () => {
    const fromHit = hitItems(D, { subject: 'S1', partner: 'dvla', kind: 'vehicle', detail: { vrm: 'KX19 LMN' } });
    expect(() => packDossierItems(D, fromHit)).toThrow(/only a dossier's own/);
    expect(() => packDossierItems(OTHER, items)).toThrow(/only a dossier's own/);
  });
});
