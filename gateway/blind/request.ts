/**
 * The gateway's side of a blind-match request, from the match step's redacted subjects (the same
 * identifiers a plain match request would carry, as the partner's full policy gives them): each
 * subject's keys of the agreement's key types, blinded, padded and shuffled (psi.ts). Pure. Subjects
 * without a full key (a generalised date of birth, no NI number…) are not asked about at all.
 */
import { DEFAULT_BLIND_MAX_ELEMENTS, type KeyType } from '../policy/blind-keys.js';
import type { Agreement, Block } from '../policy/types.js';
import { matchKeys, subjectFacts, type MatchKey } from './keys.js';
import { blindRequest, requestSize, REQUEST_SIZES, type BlindRequest, type BlindState } from './psi.js';

export interface MadeRequest {
  request: BlindRequest;
  state: BlindState;
  /** The packet refs of the subjects asked about (those with at least one key). */
  asked: string[];
  keyTypes: KeyType[];
}

export function makeBlindRequest(redacted: Record<string, unknown>, agreement: Pick<Agreement, 'blindKeys' | 'blindMaxElements' | 'reference'>): MadeRequest | { block: Block } {
  const types = (agreement.blindKeys ?? []) as KeyType[];
  const cap = agreement.blindMaxElements ?? DEFAULT_BLIND_MAX_ELEMENTS;
  const subjects = Array.isArray(redacted.subjects) ? (redacted.subjects as Array<Record<string, unknown>>) : [];
  const items: Array<{ ref: string; key: MatchKey }> = [];
  for (const s of subjects) {
    if (typeof s.id !== 'string') continue;
    for (const key of matchKeys(subjectFacts(s), types)) items.push({ ref: s.id, key });
  }
  const size = requestSize(items.length, cap);
  if (size === undefined) {
    return {
      block: {
        reason: 'blind_request_too_large',
        message: `The dossier needs ${items.length} blind-match keys; agreement ${agreement.reference} takes at most ${Math.min(cap, REQUEST_SIZES[REQUEST_SIZES.length - 1]!)} per request`,
      },
    };
  }
  const { request, state } = blindRequest(items, size);
  return { request, state, asked: [...new Set(items.map((i) => i.ref))], keyTypes: types };
}
