import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  addressKey,
  normaliseCompanyNumber,
  normaliseLine1,
  normalisePhone,
  normalisePostcode,
  normaliseVrm,
} from '../../gateway/hits/normalise.js';

describe('normalisePostcode', () => {
  it.each([
    ['CV6 5HX', 'CV6 5HX'],
    ['cv65hx', 'CV6 5HX'],
    ['  cv6   5hx ', 'CV6 5HX'],
    ['B1 1AA', 'B1 1AA'],
    ['sw1a1aa', 'SW1A 1AA'],
    ['EC1A 1BB', 'EC1A 1BB'],
    ['W1A 0AX', 'W1A 0AX'],
    ['M1 1AE', 'M1 1AE'],
    ['GIR 0AA', 'GIR 0AA'],
  ])('%s → %s', (input, out) => expect(normalisePostcode(input)).toBe(out));

  it.each(['', 'CV6', 'CV6 5H', 'CV6 5HXX', '12345', 'CV6 5CX' /* C is not an inward letter */, 'CV6-5HX', 'not a postcode'])(
    'refuses %j',
    (input) => expect(normalisePostcode(input)).toBeUndefined(),
  );

  it('refuses non-strings', () => {
    for (const v of [undefined, null, 42, {}, ['CV6 5HX']]) expect(normalisePostcode(v)).toBeUndefined();
  });

  it('is idempotent and ignores case and spacing', () => {
    fc.assert(
      fc.property(fc.constantFrom('CV6 5HX', 'B1 1AA', 'SW1A 1AA', 'M1 1AE'), fc.boolean(), fc.nat(3), (pc, lower, spaces) => {
        const messy = (lower ? pc.toLowerCase() : pc).replace(' ', ' '.repeat(spaces));
        const once = normalisePostcode(messy);
        expect(once).toBe(pc);
        expect(normalisePostcode(once)).toBe(once);
      }),
    );
  });
});

describe('normaliseVrm', () => {
  it.each([
    ['AB12 CDE', 'AB12CDE'],
    ['ab12cde', 'AB12CDE'],
    ['kx19 lmn', 'KX19LMN'],
    [' FG65-HJK ', 'FG65HJK'],
    ['A1', 'A1'],
    ['L 123 ABC', 'L123ABC'],
  ])('%s → %s', (input, out) => expect(normaliseVrm(input)).toBe(out));

  it.each(['', 'ABCDEFG', 'AB12 CDEF9', 'AB12_CDE', '—'])('refuses %j', (input) => expect(normaliseVrm(input)).toBeUndefined());
});

describe('normalisePhone (E.164)', () => {
  it.each([
    ['07700 900123', '+447700900123'],
    ['07700900123', '+447700900123'],
    ['+44 7700 900123', '+447700900123'],
    ['+44 (0)7700 900123', '+447700900123'],
    ['0044 7700 900123', '+447700900123'],
    ['(0121) 496 0000', '+441214960000'],
    ['0121-496-0000', '+441214960000'],
    ['+40 721 234 567', '+40721234567'],
  ])('%s → %s', (input, out) => expect(normalisePhone(input)).toBe(out));

  it.each(['', '7700 900123' /* no trunk or country prefix */, '+44 07700 900123', '0770', '+0 123 456 789', '07700 900123 ext 4', '+44 7700 900123 4567', 'call me'])(
    'refuses %j',
    (input) => expect(normalisePhone(input)).toBeUndefined(),
  );

  it('always yields + and 8–15 digits', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 24 }), (s) => {
        const out = normalisePhone(s);
        if (out !== undefined) expect(out).toMatch(/^\+[1-9][0-9]{7,14}$/);
      }),
    );
  });
});

describe('normaliseCompanyNumber', () => {
  it.each([
    ['09876543', '09876543'],
    ['9876543', '09876543'],
    ['123', '00000123'],
    ['SC123456', 'SC123456'],
    ['sc 1234', 'SC001234'],
    ['NI012345', 'NI012345'],
    ['OC 302 000', 'OC302000'],
  ])('%s → %s', (input, out) => expect(normaliseCompanyNumber(input)).toBe(out));

  it.each(['', '0', '00000000', '123456789', 'SC1234567', 'ABC12345', 'Cedar Hand Car Wash Ltd'])('refuses %j', (input) =>
    expect(normaliseCompanyNumber(input)).toBeUndefined(),
  );

  it('always yields 8 characters', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z]{0,2} ?[0-9]{1,6}$/), (s) => {
        const out = normaliseCompanyNumber(s);
        if (out !== undefined) expect(out).toHaveLength(8);
      }),
    );
  });
});

describe('normaliseLine1 and addressKey', () => {
  it.each([
    ['22 Cedar Road', '22 CEDAR ROAD'],
    ['22, Cedar Rd.', '22 CEDAR ROAD'],
    ['  22   cedar  road ', '22 CEDAR ROAD'],
    ['Flat 3, 88 Stoney Stanton Road', 'FLAT 3 88 STONEY STANTON ROAD'],
    ['5 Lythalls Ln', '5 LYTHALLS LANE'],
    ['St', 'ST'],
  ])('%s → %s', (input, out) => expect(normaliseLine1(input)).toBe(out));

  it('an address is its postcode and line 1', () => {
    expect(addressKey('22 Cedar Rd', 'cv65hx')).toBe('CV6 5HX|22 CEDAR ROAD');
    expect(addressKey('22 CEDAR ROAD', 'CV6 5HX')).toBe(addressKey('22, Cedar Road', 'CV6  5HX'));
    expect(addressKey('14 Cedar Road', 'CV6 5HX')).not.toBe(addressKey('22 Cedar Road', 'CV6 5HX'));
    expect(addressKey('22 Cedar Road', 'not a postcode')).toBeUndefined();
    expect(addressKey('   ', 'CV6 5HX')).toBeUndefined();
  });
});
