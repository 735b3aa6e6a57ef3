/**
 * Blind matching's match keys: what the gateway and a partner each derive from a person so that the
 * same person gives the same bytes on both sides, and nothing else does. Pure, and shipped in the
 * partner client, so one implementation normalises on both sides; its version travels with every
 * request and setup message (`NORMALISER_VERSION`), and a mismatch is refused, never half-matched.
 *
 * Each key combines fields so that no key is low-entropy on its own (a family name or a postcode alone
 * would let whoever can ask enumerate them), and each key type lives in its own domain: the type's
 * label is part of the input, so a VRM never equals a date of birth by accident. Only `unlocks` key types
 * name a person: a hit on an address key alone (a relative at the same address) never counts as a hit
 * on the subject, so it never unlocks a disclosure about them.
 */
import { normaliseLine1, normalisePostcode, normaliseVrm } from '../hits/normalise.js';
import type { KeyType } from '../policy/blind-keys.js';

/** Bump when any normalisation below changes: both sides must derive the same bytes. */
export const NORMALISER_VERSION = 'cordon-blind-keys/1';

export { isKeyType, KEY_TYPES, type KeyType, type KeyTypeInfo } from '../policy/blind-keys.js';

/** What keys are made from, the same for a dossier subject and a partner's record. */
export interface PersonFacts {
  given?: unknown;
  family?: unknown;
  dateOfBirth?: unknown;
  niNumber?: unknown;
  vrms?: unknown[];
  addresses?: Array<{ line1?: unknown; postcode?: unknown }>;
}

export interface MatchKey {
  type: KeyType;
  /** The domain-separated input to the OPRF. */
  input: Uint8Array;
}

/** At most this many keys per person (vehicles and addresses beyond are left out). */
export const MAX_KEYS_PER_PERSON = 8;

/** Upper-case letters only, accents folded (`O'Brien-Smyth` → `OBRIENSMYTH`, `Zoë` → `ZOE`). */
export function normaliseName(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 200) return undefined;
  const out = value.normalize('NFKD').replace(/\p{M}+/gu, '').toUpperCase().replace(/[^A-Z]+/g, '');
  return out.length ? out : undefined;
}

/** A full calendar date `YYYY-MM-DD` (a generalised year or month makes no key). */
export function normaliseDob(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^\s*(\d{4})-(\d{2})-(\d{2})\s*$/.exec(value);
  if (!m) return undefined;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  const iso = `${m[1]}-${m[2]}-${m[3]}`;
  return d.toISOString().slice(0, 10) === iso ? iso : undefined;
}

export function normaliseNi(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 16) return undefined;
  const compact = value.toUpperCase().replace(/\s+/g, '');
  return /^[A-Z]{2}[0-9]{6}[A-D]?$/.test(compact) ? compact.slice(0, 8) : undefined; // the suffix letter is often left off
}

const encoder = new TextEncoder();

/** The OPRF input: a JSON array is unambiguous, and its first element is the key type's domain. */
function encode(type: KeyType, parts: string[]): MatchKey {
  return { type, input: encoder.encode(JSON.stringify([`${NORMALISER_VERSION}/${type}`, ...parts])) };
}

/** Every key of the given types the facts allow, deduplicated, at most MAX_KEYS_PER_PERSON. */
export function matchKeys(facts: PersonFacts, types: readonly KeyType[]): MatchKey[] {
  const family = normaliseName(facts.family);
  const initial = normaliseName(facts.given)?.[0];
  const dob = normaliseDob(facts.dateOfBirth);
  const ni = normaliseNi(facts.niNumber);
  const out: MatchKey[] = [];
  const seen = new Set<string>();
  const add = (type: KeyType, parts: string[]) => {
    const id = JSON.stringify([type, ...parts]);
    if (seen.has(id) || out.length >= MAX_KEYS_PER_PERSON) return;
    seen.add(id);
    out.push(encode(type, parts));
  };
  for (const type of types) {
    if (type === 'name-dob' && family && initial && dob) add(type, [family, initial, dob]);
    if (type === 'ni-dob' && ni && dob) add(type, [ni, dob]);
    if (type === 'vrm-family' && family) {
      for (const v of facts.vrms ?? []) {
        const vrm = normaliseVrm(v);
        if (vrm) add(type, [vrm, family]);
      }
    }
    if (type === 'address-family' && family) {
      for (const a of facts.addresses ?? []) {
        const postcode = normalisePostcode(a.postcode);
        const line1 = normaliseLine1(a.line1);
        if (postcode && line1) add(type, [postcode, line1, family]);
      }
    }
  }
  return out;
}

type Loose = Record<string, unknown> | undefined;

/** A dossier subject (as the match plan gave it) as facts. */
export function subjectFacts(subject: Record<string, unknown>): PersonFacts {
  const name = subject.name as Loose;
  const ids = subject.identifiers as Loose;
  const vehicles = Array.isArray(subject.vehicles) ? (subject.vehicles as Loose[]) : [];
  const addresses = Array.isArray(subject.addresses) ? (subject.addresses as Loose[]) : [];
  return {
    given: name?.given,
    family: name?.family,
    dateOfBirth: subject.dateOfBirth,
    niNumber: ids?.niNumber,
    vrms: vehicles.map((v) => v?.vrm),
    addresses: addresses.map((a) => ({ line1: a?.line1, postcode: a?.postcode })),
  };
}

/**
 * A partner's record (one CSV row or JSON line) as facts: `given`, `family`, `dateOfBirth`,
 * `niNumber`, `vrm`, `postcode`, `line1` (other columns are ignored).
 */
export function recordFacts(record: Record<string, unknown>): PersonFacts {
  return {
    given: record.given,
    family: record.family,
    dateOfBirth: record.dateOfBirth,
    niNumber: record.niNumber,
    vrms: record.vrm === undefined ? [] : [record.vrm],
    addresses: record.postcode === undefined && record.line1 === undefined ? [] : [{ line1: record.line1, postcode: record.postcode }],
  };
}
