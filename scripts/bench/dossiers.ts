/**
 * Benchmark dossiers of three sizes, built from the example dossier (examples/dossier-full.json):
 * its subjects are replicated with fresh ids and varied values (names, dates of birth, VRMs, phones,
 * identifiers, addresses) while keeping each template subject's role, vulnerabilities and shape, so the
 * policies see the same mix of principals, members, victims and children as in the example. Every
 * dossier is checked with the gateway's own schema validation before it is used.
 *
 *   S ≈ 2 KB, one subject;  M ≈ 20 KB (about 20 subjects);  L ≈ 100 KB (about 100 subjects).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { validateDossier } from '../../gateway/dossier/validate.js';
import type { Dossier } from '../../gateway/dossier/types.js';

export type Size = 'S' | 'M' | 'L';
export const SIZES: readonly Size[] = ['S', 'M', 'L'];
export const TARGET_BYTES: Record<Size, number> = { S: 2 * 1024, M: 20 * 1024, L: 100 * 1024 };

const ROOT = path.resolve(import.meta.dirname, '../..');

type Json = Record<string, unknown>;
/** The generator edits nested template copies freely; the result is checked by validateDossier. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = any;
type SubjectJson = Json & { id: string; associates?: Array<{ subject: string; relationship: string }> };

const TEMPLATE = JSON.parse(readFileSync(path.join(ROOT, 'examples/dossier-full.json'), 'utf8')) as Json & { subjects: SubjectJson[] };

const GIVEN = ['Daniel', 'Samuel', 'Andrei', 'Tyler', 'Aisha', 'Marek', 'Chloe', 'Imran', 'Grace', 'Tomasz', 'Kyle', 'Nadia', 'Jordan', 'Elena', 'Reece', 'Fatima'];
const FAMILY = ['Okafor', 'Popescu', 'Brooks', 'Khan', 'Nowak', 'Walsh', 'Hussain', 'Evans', 'Kowalski', 'Patel', 'Doyle', 'Ionescu', 'Bennett', 'Ahmed'];
const STREETS = ['Cedar Road', 'Stoney Stanton Road', 'Lythalls Lane', 'Foleshill Road', 'Station Street', 'Holbrook Lane', 'Lockhurst Lane', 'Burnaby Road'];
const POSTCODES = ['CV6 5HX', 'CV6 4FL', 'CV1 4FS', 'CV6 6FP', 'CV6 5PD', 'WV1 1AA', 'WV10 9QR', 'B19 3SD', 'CV2 4GA'];
const TOWNS = ['Coventry', 'Wolverhampton', 'Birmingham'];
const MAKES = [['BMW', 'X5'], ['Audi', 'A3'], ['Ford', 'Transit'], ['Mercedes-Benz', 'Sprinter'], ['Vauxhall', 'Corsa'], ['Toyota', 'Prius']];

/** A small seeded PRNG (mulberry32): the same seed gives the same dossiers, run after run. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  digits(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += String(this.int(10));
    return s;
  }
  letters(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(65 + this.int(26));
    return s;
  }
}

function shiftDate(date: string, days: number): string {
  const t = Date.parse(`${date}T00:00:00Z`) + days * 86_400_000;
  return new Date(t).toISOString().slice(0, 10);
}

/** A copy of a template subject with a fresh id and varied values; role, vulnerabilities and shape kept. */
function varySubject(template: SubjectJson, id: string, idOf: (templateId: string) => string, rng: Rng): SubjectJson {
  const s = structuredClone(template) as SubjectJson & Loose;
  s.id = id;
  s.name = { ...s.name, given: rng.pick(GIVEN), family: rng.pick(FAMILY) };
  // Within ±150 days of the template's date of birth: a child stays a child, an adult an adult.
  if (typeof s.dateOfBirth === 'string') s.dateOfBirth = shiftDate(s.dateOfBirth, rng.int(301) - 150);
  if (s.identifiers) {
    if (s.identifiers.pnc) s.identifiers.pnc = `${rng.digits(2)}/${rng.digits(6)}${rng.letters(1)}`;
    if (s.identifiers.niNumber) s.identifiers.niNumber = `QQ${rng.digits(6)}${rng.pick(['A', 'B', 'C', 'D'])}`;
    if (s.identifiers.drivingLicence) s.identifiers.drivingLicence = `${rng.letters(5)}${rng.digits(6)}${rng.letters(2)}${rng.digits(2)}XY`;
    if (s.identifiers.passport) s.identifiers.passport = `${rng.letters(2)}${rng.digits(7)}`;
  }
  for (const a of s.addresses ?? []) {
    a.line1 = `${1 + rng.int(200)} ${rng.pick(STREETS)}`;
    a.postcode = rng.pick(POSTCODES);
    a.town = rng.pick(TOWNS);
  }
  for (const v of s.vehicles ?? []) {
    const [make, model] = rng.pick(MAKES);
    v.vrm = `${rng.letters(2)}${rng.digits(2)} ${rng.letters(3)}`;
    v.make = make;
    v.model = model;
  }
  if (s.phones) s.phones = s.phones.map(() => `07700 ${rng.digits(6)}`);
  if (s.emails) s.emails = s.emails.map(() => `${rng.letters(6).toLowerCase()}@example.com`);
  for (const b of s.bankAccounts ?? []) b.accountNumber = rng.digits(8);
  for (const b of s.businesses ?? []) b.companyNumber = rng.digits(8);
  for (const i of s.intelligence ?? []) {
    i.id = `INT-${rng.digits(6)}`;
    i.recordedAt = shiftDate(i.recordedAt, -rng.int(200));
  }
  for (const e of s.enforcementHistory ?? []) e.date = shiftDate(e.date, -rng.int(300));
  if (s.associates) s.associates = s.associates.map((a: { subject: string; relationship: string }) => ({ ...a, subject: idOf(a.subject) }));
  return s;
}

/** The single subject of an S dossier: the template principal, trimmed to about 2 KB in all. */
function smallSubject(s: SubjectJson & Loose): SubjectJson {
  delete s.associates;
  s.enforcementHistory = s.enforcementHistory?.slice(0, 1);
  s.addresses = s.addresses?.slice(0, 1);
  s.vehicles = s.vehicles?.slice(0, 1);
  s.phones = s.phones?.slice(0, 1);
  s.intelligence = s.intelligence?.slice(0, 1);
  if (s.name?.aliases) delete s.name.aliases;
  return s;
}

let serial = 0;

/** One fresh, schema-valid dossier of about the given size. */
export function makeDossier(size: Size, rng: Rng): Dossier {
  const d = structuredClone(TEMPLATE) as Json & { subjects: SubjectJson[]; reference: string };
  d.reference = `BENCH-${size}-${(++serial).toString(36)}-${rng.digits(6)}`;
  (d as Loose).group.ocgmId = `OCG-BENCH-${rng.digits(5)}`;
  const tag = `${rng.letters(3)}${rng.digits(3)}`;
  if (size === 'S') {
    delete d.locations;
    d.subjects = [smallSubject(varySubject(TEMPLATE.subjects[0]!, `${tag}-1`, (x) => x, rng))];
  } else {
    const target = TARGET_BYTES[size];
    const subjects: SubjectJson[] = [];
    const n = TEMPLATE.subjects.length;
    // Subject k copies template subject k mod n; associates point within its own group of n.
    for (let k = 0; ; k++) {
      const group = Math.floor(k / n);
      const idOf = (templateId: string) => `${tag}-G${group}-${templateId}`;
      const t = TEMPLATE.subjects[k % n]!;
      subjects.push(varySubject(t, idOf(t.id), idOf, rng));
      d.subjects = subjects;
      if (JSON.stringify(d).length >= target || subjects.length >= 200) break;
    }
    // The last group may be incomplete: drop associations to subjects that are not in the dossier.
    const ids = new Set(subjects.map((s) => s.id));
    for (const s of subjects) {
      if (s.associates) {
        s.associates = s.associates.filter((a) => ids.has(a.subject));
        if (s.associates.length === 0) delete s.associates;
      }
    }
  }
  return validateDossier(d);
}

/** `count` fresh dossiers of one size. */
export function makeDossiers(size: Size, count: number, seed = 42): Dossier[] {
  const rng = new Rng(seed ^ (size.charCodeAt(0) << 16));
  return Array.from({ length: count }, () => makeDossier(size, rng));
}

export function bytesOf(d: Dossier): number {
  return Buffer.byteLength(JSON.stringify(d));
}
