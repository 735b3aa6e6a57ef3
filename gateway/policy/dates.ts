/**
 * Strict calendar dates, computed in UTC. Anything that is not a real date in the expected shape is
 * `undefined`: callers treat it as unknown (facts) or drop the value (redaction).
 */

export interface CalendarDate {
  year: number;
  month: number; // 1-12
  day: number; // 1-31
}

const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  if (month === 2 && (year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0))) return 29;
  return DAYS[month - 1] ?? 0;
}

function valid(year: number, month: number, day: number): boolean {
  return year >= 1 && month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month);
}

/** The value of the ASCII digits value[from, to), or -1 if any is not one (as the regex's `\d`). */
function digits(value: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const d = value.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/**
 * `YYYY-MM-DD` (a real calendar date) → its parts: exactly /^(\d{4})-(\d{2})-(\d{2})$/, read without
 * a regex because it runs for every subject's date of birth on every decision.
 */
export function parseDate(value: unknown): CalendarDate | undefined {
  if (typeof value !== 'string' || value.length !== 10 || value.charCodeAt(4) !== 45 || value.charCodeAt(7) !== 45) return undefined; // '-'
  const year = digits(value, 0, 4);
  const month = digits(value, 5, 7);
  const day = digits(value, 8, 10);
  if (year < 0 || month < 0 || day < 0) return undefined;
  return valid(year, month, day) ? { year, month, day } : undefined;
}

/** RFC 3339 date-time → the UTC calendar date it falls on. */
export function parseDateTimeUtc(value: unknown): CalendarDate | undefined {
  if (typeof value !== 'string' || value.length > 40) return undefined;
  const m = DATE_TIME.exec(value);
  if (!m) return undefined;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = Number(m[6]);
  if (!valid(year, month, day) || hour > 23 || minute > 59 || second > 60) return undefined;
  const t = Date.parse(value);
  if (!Number.isFinite(t)) return undefined;
  const d = new Date(t);
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
}

/** A date or a date-time (the latter taken in UTC). */
export function parseDateOrDateTime(value: unknown): CalendarDate | undefined {
  if (typeof value !== 'string') return undefined;
  return value.length === 10 ? parseDate(value) : parseDateTimeUtc(value);
}

/** The oldest age the gateway believes; anything older is a data error and treated as unknown. */
export const MAX_PLAUSIBLE_AGE = 120;

/**
 * Completed years between a date of birth and a date, in UTC. A person born on 29 February comes of
 * age on 1 March in common years. Unknown (undefined) when either date is malformed, when the birth
 * is after the date, or when the age is implausible (over MAX_PLAUSIBLE_AGE).
 */
export function ageOn(dateOfBirth: unknown, at: CalendarDate | undefined): number | undefined {
  const dob = parseDate(dateOfBirth);
  if (dob === undefined || at === undefined) return undefined;
  let age = at.year - dob.year;
  if (at.month < dob.month || (at.month === dob.month && at.day < dob.day)) age -= 1;
  if (age < 0 || age > MAX_PLAUSIBLE_AGE) return undefined;
  return age;
}

/** Midnight UTC at the start of a `YYYY-MM-DD` day, in ms; undefined if malformed. */
export function startOfDayUtc(value: string): number | undefined {
  const d = parseDate(value);
  return d === undefined ? undefined : Date.UTC(d.year, d.month - 1, d.day);
}

/** The last millisecond of a `YYYY-MM-DD` day in UTC; undefined if malformed. */
export function endOfDayUtc(value: string): number | undefined {
  const start = startOfDayUtc(value);
  return start === undefined ? undefined : start + 24 * 3600 * 1000 - 1;
}
