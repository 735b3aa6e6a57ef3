import { describe, expect, it } from 'vitest';
import { base32 } from '../../gateway/crypto/seal.js';

describe('base32', () => {
  it('matches the RFC 4648 test vectors (lower case, no padding)', () => {
    const vectors: Array<[string, string]> = [['', ''], ['f', 'my'], ['fo', 'mzxq'], ['foo', 'mzxw6'], ['foob', 'mzxw6yq'], ['fooba', 'mzxw6ytb'], ['foobar', 'mzxw6ytboi']];
    for (const [input, output] of vectors) expect(base32(Buffer.from(input))).toBe(output);
  });
});
