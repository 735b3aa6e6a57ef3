/**
 * The policy set in force, with its decider and the partners' parsed keys. Swapped whole on reload, so
 * a job always decides, redacts and encrypts against one consistent set.
 */
import { Decider } from './decide.js';
import type { PolicySet } from './types.js';

export interface LiveSet<K> {
  set: PolicySet;
  decider: Decider;
  /** Parsed recipient key per partner, or the reason it cannot be used. */
  keys: Map<string, K | { invalid: string }>;
}

export async function buildLiveSet<K>(
  set: PolicySet,
  parseKey: (armored: string, fingerprint: string) => Promise<K>,
): Promise<LiveSet<K>> {
  const keys = new Map<string, K | { invalid: string }>();
  for (const [id, policy] of set.partners) {
    const { armored, fingerprint, file } = policy.partner.key;
    if (armored === undefined) {
      keys.set(id, { invalid: `key file ${file} is missing` });
      continue;
    }
    try {
      keys.set(id, await parseKey(armored, fingerprint));
    } catch (err) {
      keys.set(id, { invalid: (err as Error).message });
    }
  }
  return { set, decider: new Decider(set), keys };
}

export function isInvalid<K>(k: K | { invalid: string } | undefined): k is { invalid: string } | undefined {
  return k === undefined || (typeof k === 'object' && k !== null && 'invalid' in k);
}
