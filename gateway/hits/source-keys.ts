/**
 * Sources' pinned public keys (policies/sources/<id>.yaml), parsed once per key file content. A
 * missing, unreadable, mismatched, expired or revoked key is refused with `source_key_invalid`: what
 * goes back to a force is never encrypted to any other key.
 */
import { checkRecipientKey, parseRecipientKey, type RecipientKey } from '../crypto/openpgp.js';
import { GatewayError } from '../errors/index.js';
import type { PolicySet } from '../policy/types.js';

export class SourceKeys {
  private readonly parsed = new Map<string, Promise<RecipientKey>>();

  async get(set: PolicySet, source: string, now: Date = new Date()): Promise<RecipientKey> {
    const config = set.sources.get(source);
    if (!config) throw sourceKeyError(source, 'there is no source configuration for it');
    const { armored, fingerprint, file } = config.source.key;
    if (armored === undefined) throw sourceKeyError(source, `its key file ${file} is missing`);
    const cacheKey = `${fingerprint}\u0000${armored}`;
    let pending = this.parsed.get(cacheKey);
    if (!pending) {
      pending = parseRecipientKey(armored, fingerprint, now);
      this.parsed.set(cacheKey, pending);
      pending.catch(() => this.parsed.delete(cacheKey));
    }
    try {
      const key = await pending;
      await checkRecipientKey(key, now);
      return key;
    } catch (err) {
      throw sourceKeyError(source, (err as Error).message, err);
    }
  }
}

export function sourceKeyError(source: string, why: string, cause?: unknown): GatewayError {
  return new GatewayError(
    'source_key_invalid',
    `Nothing can be encrypted to ${source}'s pinned key (${why}); it is never sent under another key`,
    undefined,
    { cause },
  );
}
