/**
 * Value transformations for single scalar values. Pure. Every function returns undefined when the
 * input is missing or malformed: the caller then leaves the value out (fail closed).
 */
import { createHmac } from 'node:crypto';
import { base32 } from '../crypto/seal.js';
import { ageOn, parseDateOrDateTime, type CalendarDate } from '../policy/dates.js';

export type Scalar = string | number | boolean;

export function isScalar(v: unknown): v is Scalar {
  return typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
}

// ---- mask --------------------------------------------------------------------------------------

/**
 * Show `chars` characters from the start or the end and replace the others with `*`, keeping the
 * length. Never shows more than half of the value (rounded down): a short value is never given away
 * whole by a mask.
 */
export function mask(value: unknown, show: 'first' | 'last', chars: number): string | undefined {
  if (typeof value !== 'string' || value.length === 0) return undefined;
  const cps = Array.from(value);
  const n = Math.max(0, Math.min(Math.floor(chars), Math.floor(cps.length / 2)));
  const hidden = '*'.repeat(cps.length - n);
  if (n === 0) return hidden;
  return show === 'first' ? cps.slice(0, n).join('') + hidden : hidden + cps.slice(cps.length - n).join('');
}

// ---- pseudonymise ------------------------------------------------------------------------------

export const MIN_PSEUDONYM_KEY_BYTES = 16;

/**
 * `ps_` + 16 base32 characters (80 bits) of HMAC-SHA-256(key, value). The same value gives the same
 * pseudonym for one recipient in every dossier; recipients have different keys, so their pseudonyms
 * cannot be linked. The value is typed (`s:`/`n:`/`b:`) so that "1" and 1 differ.
 */
export function pseudonymise(value: unknown, key: Buffer): string | undefined {
  if (!isScalar(value)) return undefined;
  if (!Buffer.isBuffer(key) || key.length < MIN_PSEUDONYM_KEY_BYTES) {
    throw new Error(`pseudonymise: the recipient's pseudonym key must be at least ${MIN_PSEUDONYM_KEY_BYTES} bytes`);
  }
  const typed = typeof value === 'string' ? `s:${value}` : typeof value === 'number' ? `n:${value}` : `b:${value}`;
  const mac = createHmac('sha256', key).update(typed, 'utf8').digest();
  return 'ps_' + base32(mac.subarray(0, 10));
}

// ---- dates -------------------------------------------------------------------------------------

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

export function dateToYear(value: unknown): string | undefined {
  const d = parseDateOrDateTime(value);
  return d === undefined ? undefined : pad(d.year, 4);
}

export function dateToMonth(value: unknown): string | undefined {
  const d = parseDateOrDateTime(value);
  return d === undefined ? undefined : `${pad(d.year, 4)}-${pad(d.month, 2)}`;
}

export function dateToDecade(value: unknown): string | undefined {
  const d = parseDateOrDateTime(value);
  return d === undefined ? undefined : `${pad(Math.floor(d.year / 10) * 10, 4)}s`;
}

type AgeBand = 'under-18' | '18-24' | '25-34' | '35-44' | '45-54' | '55-64' | '65+';

export function ageBand(age: number): AgeBand {
  if (age < 18) return 'under-18';
  if (age < 25) return '18-24';
  if (age < 35) return '25-34';
  if (age < 45) return '35-44';
  if (age < 55) return '45-54';
  if (age < 65) return '55-64';
  return '65+';
}

/** The age band of a date of birth at a date (the dossier's createdAt); undefined when either is unknown. */
export function dateToAgeBand(value: unknown, at: CalendarDate | undefined): string | undefined {
  const age = ageOn(value, at);
  return age === undefined ? undefined : ageBand(age);
}

// ---- postcodes ---------------------------------------------------------------------------------

/** UK postcode: outward code (area letters, district) and inward code (sector digit, unit letters). */
const UK_POSTCODE = /^([A-Z]{1,2})([0-9][A-Z0-9]?) ([0-9])([A-Z]{2})$/;

interface Postcode {
  area: string;
  outward: string;
  sectorDigit: string;
  unit: string;
}

/**
 * Normalise (upper case, single space before the inward code) and validate a UK postcode. Non-UK or
 * malformed values are undefined. Inputs longer than 16 characters are refused before any regex runs.
 */
export function parsePostcode(value: unknown): Postcode | undefined {
  if (typeof value !== 'string' || value.length > 16) return undefined;
  const compact = value.toUpperCase().replace(/\s+/g, '');
  if (compact.length < 5 || compact.length > 7) return undefined;
  const normal = `${compact.slice(0, -3)} ${compact.slice(-3)}`;
  const m = UK_POSTCODE.exec(normal);
  if (!m) return undefined;
  const [, area, district, sectorDigit, unit] = m as unknown as [string, string, string, string, string];
  return { area, outward: area + district, sectorDigit, unit };
}

export function postcodeToSector(value: unknown): string | undefined {
  const p = parsePostcode(value);
  return p === undefined ? undefined : `${p.outward} ${p.sectorDigit}`;
}

export function postcodeToDistrict(value: unknown): string | undefined {
  return parsePostcode(value)?.outward;
}

export function postcodeToArea(value: unknown): string | undefined {
  return parsePostcode(value)?.area;
}

// ---- numbers -----------------------------------------------------------------------------------

/** `15` with width 10 → `"10-19"`. Non-finite numbers and bad widths are undefined. */
export function band(value: unknown, width: number): string | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value)) return undefined;
  if (!Number.isInteger(width) || width < 1) return undefined;
  const lo = Math.floor(value / width) * width;
  return `${lo}-${lo + width - 1}`;
}
