/**
 * Normalisers for the values that can connect two subjects. Pure: a string in, the canonical form out,
 * or `undefined` when the input is not recognisably that kind of value (we never link on garbage).
 *
 * - UK postcode: upper case, one space before the inward code (`cv65hx` → `CV6 5HX`).
 * - VRM (vehicle registration mark): upper case, no spaces or hyphens (`ab12 cde` → `AB12CDE`).
 * - Phone: E.164. UK national numbers (`07700 900123`, `(0121) 496 0000`) become `+44…`; `00` becomes `+`;
 *   `+44 (0)7700…` drops the `(0)`. Digits only after the `+`, 8–15 of them; UK numbers must have a
 *   9- or 10-digit national significant number.
 * - Company number (Companies House): upper case, no spaces, 8 characters, zero-padded after any
 *   letter prefix (`9876543` → `09876543`, `SC 1234` → `SC001234`).
 * - Address line 1: upper case, punctuation to spaces, one space between words, and the street-type
 *   word at the end written out (`RD` → `ROAD`). The same address is the same postcode AND the same
 *   normalised line 1 (see `addressKey`).
 */

const POSTCODE = /^(GIR0AA|[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][ABD-HJLNP-UW-Z]{2})$/;

export function normalisePostcode(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 16) return undefined;
  const compact = value.toUpperCase().replace(/\s+/g, '');
  if (!POSTCODE.test(compact)) return undefined;
  return `${compact.slice(0, -3)} ${compact.slice(-3)}`;
}

const VRM = /^[A-Z0-9]{1,7}$/;

export function normaliseVrm(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 16) return undefined;
  const compact = value.toUpperCase().replace(/[\s-]+/g, '');
  if (!VRM.test(compact) || !/[0-9]/.test(compact)) return undefined;
  return compact;
}

export function normalisePhone(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 32) return undefined;
  let s = value.trim().replace(/\(0\)/g, '');
  if (!/^\+?[0-9\s().-]+$/.test(s)) return undefined;
  const plus = s.startsWith('+');
  s = s.replace(/[^0-9]/g, '');
  let e164: string;
  if (plus) e164 = '+' + s;
  else if (s.startsWith('00')) e164 = '+' + s.slice(2);
  else if (s.startsWith('0')) e164 = '+44' + s.slice(1);
  else return undefined; // no country and no trunk prefix: ambiguous
  if (!/^\+[1-9][0-9]{7,14}$/.test(e164)) return undefined;
  if (e164.startsWith('+44')) {
    const nsn = e164.slice(3);
    if (nsn.startsWith('0') || nsn.length < 9 || nsn.length > 10) return undefined;
  }
  return e164;
}

export function normaliseCompanyNumber(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 16) return undefined;
  const compact = value.toUpperCase().replace(/\s+/g, '');
  const m = /^([A-Z]{0,2})([0-9]{1,8})$/.exec(compact);
  if (!m) return undefined;
  const prefix = m[1]!;
  const digits = m[2]!;
  if (prefix.length + digits.length > 8) return undefined;
  const out = prefix + digits.padStart(8 - prefix.length, '0');
  if (/^0+$/.test(out.slice(prefix.length))) return undefined;
  return out;
}

/** Street types written out when they are the last word of line 1. */
const STREET_TYPES: Readonly<Record<string, string>> = Object.freeze({
  RD: 'ROAD',
  ST: 'STREET',
  AVE: 'AVENUE',
  AV: 'AVENUE',
  LN: 'LANE',
  DR: 'DRIVE',
  CL: 'CLOSE',
  CRES: 'CRESCENT',
  CT: 'COURT',
  GDNS: 'GARDENS',
  GRN: 'GREEN',
  GR: 'GROVE',
  PL: 'PLACE',
  SQ: 'SQUARE',
  TER: 'TERRACE',
  TERR: 'TERRACE',
  PDE: 'PARADE',
  WY: 'WAY',
});

export function normaliseLine1(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 500) return undefined;
  const words = value
    .toUpperCase()
    .replace(/[^A-Z0-9]+/g, ' ')
    .trim()
    .split(' ')
    .filter(Boolean);
  if (words.length === 0) return undefined;
  const last = words[words.length - 1]!;
  if (words.length > 1 && STREET_TYPES[last]) words[words.length - 1] = STREET_TYPES[last]!;
  return words.join(' ');
}

/**
 * The identity of an address: normalised postcode and normalised line 1 (`CV6 5HX|22 CEDAR ROAD`).
 * Town, county and line 2 are left out (they are written in too many ways and the postcode already
 * places the address). Undefined when either part is missing or unrecognisable.
 */
export function addressKey(line1: unknown, postcode: unknown): string | undefined {
  const pc = normalisePostcode(postcode);
  const l1 = normaliseLine1(line1);
  return pc && l1 ? `${pc}|${l1}` : undefined;
}
