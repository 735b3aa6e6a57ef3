import { describe, expect, it } from 'vitest';
import {
  band,
  dateToAgeBand,
  dateToDecade,
  dateToMonth,
  dateToYear,
  mask,
  parsePostcode,
  postcodeToArea,
  postcodeToDistrict,
  postcodeToSector,
  pseudonymise,
} from '../../gateway/redact/values.js';
import { parseDateTimeUtc } from '../../gateway/policy/dates.js';

const key = Buffer.alloc(32, 1);
const otherKey = Buffer.alloc(32, 2);

describe('mask', () => {
  it('shows the first or last characters and keeps the length', () => {
    expect(mask('QQ123456C', 'last', 3)).toBe('******56C');
    expect(mask('QQ123456C', 'first', 2)).toBe('QQ*******');
    expect(mask('QQ123456C', 'first', 0)).toBe('*********');
  });
  it('never shows more than half of a short value', () => {
    expect(mask('AB12', 'last', 4)).toBe('**12');
    expect(mask('A', 'first', 3)).toBe('*');
  });
  it('counts characters, not UTF-16 units', () => {
    expect(mask('😀😀😀😀', 'first', 1)).toBe('😀***');
  });
  it('drops what is not text', () => {
    expect(mask(undefined, 'last', 2)).toBeUndefined();
    expect(mask(12345, 'last', 2)).toBeUndefined();
    expect(mask('', 'last', 2)).toBeUndefined();
    expect(mask({ a: 1 }, 'last', 2)).toBeUndefined();
  });
});

describe('pseudonymise', () => {
  it('gives ps_ and 16 base32 characters, stable for one key', () => {
    const a = pseudonymise('QQ123456C', key);
    expect(a).toMatch(/^ps_[a-z2-7]{16}$/);
    expect(pseudonymise('QQ123456C', key)).toBe(a);
  });
  it('differs between recipients (keys), values and types', () => {
    expect(pseudonymise('QQ123456C', otherKey)).not.toBe(pseudonymise('QQ123456C', key));
    expect(pseudonymise('QQ123456D', key)).not.toBe(pseudonymise('QQ123456C', key));
    expect(pseudonymise('1', key)).not.toBe(pseudonymise(1, key));
  });
  it('drops missing and non-scalar values, refuses short keys', () => {
    expect(pseudonymise(undefined, key)).toBeUndefined();
    expect(pseudonymise(null, key)).toBeUndefined();
    expect(pseudonymise({ a: 1 }, key)).toBeUndefined();
    expect(() => pseudonymise('x', Buffer.alloc(4))).toThrow();
  });
});

describe('dates', () => {
  it('generalises to year, month and decade', () => {
    expect(dateToYear('1987-04-12')).toBe('1987');
    expect(dateToMonth('1987-04-12')).toBe('1987-04');
    expect(dateToDecade('1987-04-12')).toBe('1980s');
    expect(dateToDecade('2000-01-01')).toBe('2000s');
  });
  it('takes date-times in UTC', () => {
    expect(dateToYear('2027-01-01T00:30:00+01:00')).toBe('2026');
    expect(dateToMonth('2026-11-20T09:15:00Z')).toBe('2026-11');
  });
  it.each(['2001-02-30', '1987-13-01', '1987-4-12', '12/04/1987', '', 'x', undefined, 19870412])('drops malformed date %j', (v) => {
    expect(dateToYear(v)).toBeUndefined();
    expect(dateToMonth(v)).toBeUndefined();
    expect(dateToDecade(v)).toBeUndefined();
  });
  it('gives age bands at the dossier date, at the boundaries', () => {
    const at = parseDateTimeUtc('2026-11-20T09:15:00Z');
    expect(dateToAgeBand('2008-11-21', at)).toBe('under-18');
    expect(dateToAgeBand('2008-11-20', at)).toBe('18-24');
    expect(dateToAgeBand('2001-11-21', at)).toBe('18-24');
    expect(dateToAgeBand('2001-11-20', at)).toBe('25-34');
    expect(dateToAgeBand('1987-04-12', at)).toBe('35-44');
    expect(dateToAgeBand('1981-11-20', at)).toBe('45-54');
    expect(dateToAgeBand('1971-11-20', at)).toBe('55-64');
    expect(dateToAgeBand('1961-11-21', at)).toBe('55-64');
    expect(dateToAgeBand('1961-11-20', at)).toBe('65+');
  });
  it('drops an age band when either date is unknown or the birth is in the future', () => {
    const at = parseDateTimeUtc('2026-11-20T09:15:00Z');
    expect(dateToAgeBand('2001-02-30', at)).toBeUndefined();
    expect(dateToAgeBand('1987-04-12', undefined)).toBeUndefined();
    expect(dateToAgeBand('2030-01-01', at)).toBeUndefined();
  });
});

describe('postcodes', () => {
  it('normalises case and spacing', () => {
    expect(postcodeToSector('cv6  5hx')).toBe('CV6 5');
    expect(postcodeToSector('CV65HX')).toBe('CV6 5');
    expect(postcodeToDistrict(' cv6 5hx ')).toBe('CV6');
    expect(postcodeToArea('CV6 5HX')).toBe('CV');
  });
  it('handles every outward-code shape', () => {
    expect(postcodeToSector('EC1A 1BB')).toBe('EC1A 1');
    expect(postcodeToDistrict('EC1A 1BB')).toBe('EC1A');
    expect(postcodeToArea('EC1A 1BB')).toBe('EC');
    expect(postcodeToSector('W1A 0AX')).toBe('W1A 0');
    expect(postcodeToArea('W1A 0AX')).toBe('W');
    expect(postcodeToDistrict('M1 1AE')).toBe('M1');
    expect(postcodeToSector('B33 8TH')).toBe('B33 8');
  });
  it.each(['75008', 'K1A 0B1', '90210-1234', 'CV6 5HXX', 'CV6', '', '6CV 5HX', 'C V 6 5 H X Y Z Q W E R T Y U I O P', 'A'.repeat(1000), null, 12345])(
    'drops non-UK or malformed postcode %j',
    (v) => {
      expect(parsePostcode(v)).toBeUndefined();
      expect(postcodeToSector(v)).toBeUndefined();
      expect(postcodeToDistrict(v)).toBeUndefined();
      expect(postcodeToArea(v)).toBeUndefined();
    },
  );
});

describe('band', () => {
  it('bands numbers', () => {
    expect(band(15, 10)).toBe('10-19');
    expect(band(10, 10)).toBe('10-19');
    expect(band(9, 10)).toBe('0-9');
    expect(band(2, 5)).toBe('0-4');
    expect(band(-3, 10)).toBe('-10--1');
  });
  it('drops non-numbers and bad widths', () => {
    expect(band('15', 10)).toBeUndefined();
    expect(band(Number.NaN, 10)).toBeUndefined();
    expect(band(Infinity, 10)).toBeUndefined();
    expect(band(5, 0)).toBeUndefined();
    expect(band(undefined, 10)).toBeUndefined();
  });
});
