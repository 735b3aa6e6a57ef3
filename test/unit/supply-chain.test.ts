/** Dependency versions the security design relies on, checked on every CI run. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const installed = (name: string) => (JSON.parse(readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
const atLeast = (version: string, min: [number, number, number]) => {
  const v = version.split('.').map((x) => parseInt(x, 10));
  for (let i = 0; i < 3; i++) if ((v[i] ?? 0) !== min[i]) return (v[i] ?? 0) > min[i]!;
  return true;
};

describe('security-relevant dependency versions', () => {
  it('openpgp has the 2025 signature-spoofing fix (≥ 6.1.1)', () => {
    expect(atLeast(installed('openpgp'), [6, 1, 1])).toBe(true);
  });
  it('ajv is ≥ 8.18', () => {
    expect(atLeast(installed('ajv'), [8, 18, 0])).toBe(true);
  });
});
