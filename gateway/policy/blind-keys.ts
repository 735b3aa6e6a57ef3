/**
 * The key types blind matching may ask a partner on (gateway/blind/keys.ts builds them) and the check
 * of an agreement's `blindKeys`: each key type is built from named dossier fields, and an agreement may
 * name only key types whose every field its `match` allowlist grants, so blind matching never uses an
 * identifier the partner could not have been sent in a plain match request. Pure.
 */
import { loc, type Problems } from './schema-check.js';
import type { Agreement } from './types.js';

export type KeyType = 'name-dob' | 'ni-dob' | 'vrm-family' | 'address-family';

export interface KeyTypeInfo {
  /** The dossier fields (canonical paths) the key is built from. */
  fields: readonly string[];
  /** Whether a hit on this key alone is a hit on the person (an address key is not: a relative may live there). */
  unlocks: boolean;
}

export const KEY_TYPES: Readonly<Record<KeyType, KeyTypeInfo>> = Object.freeze({
  'name-dob': { fields: ['subjects[].name.family', 'subjects[].name.given', 'subjects[].dateOfBirth'], unlocks: true },
  'ni-dob': { fields: ['subjects[].identifiers.niNumber', 'subjects[].dateOfBirth'], unlocks: true },
  'vrm-family': { fields: ['subjects[].vehicles[].vrm', 'subjects[].name.family'], unlocks: true },
  'address-family': { fields: ['subjects[].addresses[].postcode', 'subjects[].addresses[].line1', 'subjects[].name.family'], unlocks: false },
});

export function isKeyType(value: unknown): value is KeyType {
  return typeof value === 'string' && Object.hasOwn(KEY_TYPES, value);
}

/** Largest blind-match request by default (elements, padding included). */
export const DEFAULT_BLIND_MAX_ELEMENTS = 256;

export function isBlindMatch(agreement: Pick<Agreement, 'disclosure'>): boolean {
  return agreement.disclosure === 'blind-match';
}

/**
 * Checks `blindKeys` against the agreement and its `match` allowlist (canonical paths). Fails closed:
 * a blind-match agreement without key types could ask nothing, a key type with a field the allowlist
 * does not grant is refused, and so are `blindKeys` on an agreement that does not match blind.
 */
export function checkBlindKeys(file: string, agreement: Pick<Agreement, 'disclosure' | 'blindKeys' | 'blindMaxElements'>, match: readonly string[] | undefined, problems: Problems): void {
  const blind = isBlindMatch(agreement);
  if (!blind) {
    if (agreement.blindKeys !== undefined) problems.add(file, 'agreement.blindKeys', 'applies only to an agreement with disclosure: blind-match');
    if (agreement.blindMaxElements !== undefined) problems.add(file, 'agreement.blindMaxElements', 'applies only to an agreement with disclosure: blind-match');
    return;
  }
  if (!agreement.blindKeys?.length) {
    problems.add(file, 'agreement.blindKeys', 'a blind-match agreement needs the key types its partner may be asked on');
    return;
  }
  const granted = new Set(match ?? []);
  agreement.blindKeys.forEach((type, i) => {
    if (!isKeyType(type)) return problems.add(file, loc('agreement', 'blindKeys', i), `unknown key type ${JSON.stringify(type)}`);
    const missing = KEY_TYPES[type].fields.filter((f) => !granted.has(f));
    if (missing.length) problems.add(file, loc('agreement', 'blindKeys', i), `${type} is built from ${missing.join(', ')}, which the match allowlist does not grant`);
  });
}
