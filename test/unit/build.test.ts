/**
 * `npm run build` compiles gateway/ and scripts/ with tsconfig.build.json: that configuration must
 * type-check on its own (the production image is built from it), without the tests.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');

describe('production build', () => {
  it('tsconfig.build.json compiles gateway/ and scripts/ without errors', () => {
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    const files = execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--noEmit', '--listFilesOnly'], { cwd: ROOT, encoding: 'utf8' })
      .split('\n')
      .filter((f) => f.startsWith(ROOT) && !f.includes('/node_modules/'));
    expect(files.some((f) => f.endsWith('gateway/main.ts'))).toBe(true);
    expect(files.some((f) => f.endsWith('scripts/cli/main.ts'))).toBe(true);
    expect(files.filter((f) => f.startsWith(path.join(ROOT, 'test/')))).toEqual([]);
    // Throws with tsc's diagnostics on any error.
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--noEmit'], { cwd: ROOT, encoding: 'utf8' });
  }, 180_000);

  it('production needs no TypeScript tooling: tsx, typescript and esbuild are dev dependencies', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; scripts: Record<string, string> };
    for (const name of ['tsx', 'typescript', 'esbuild']) expect(pkg.dependencies[name], name).toBeUndefined();
    expect(pkg.scripts.build).toBeDefined();
  });
});
