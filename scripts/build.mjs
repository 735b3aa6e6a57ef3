#!/usr/bin/env node
// `npm run build`: compiles gateway/ and scripts/ to dist/ (tsconfig.build.json), then copies beside
// the JavaScript what the code reads at run time relative to its own location: every file under
// gateway/ that is not TypeScript (Lua scripts, the dashboard's static files, whatever is added later),
// and schemas/ and examples/ to dist/schemas and dist/examples. dist/ thus mirrors the repository
// (dist/gateway/…, dist/scripts/…, dist/schemas/…), so `new URL('../../schemas/x.json', import.meta.url)`
// finds the same file from the sources (under tsx) and from the build (under node), and the image
// needs dist/ alone. Written in plain JavaScript so it runs before anything is compiled.
import { execFileSync } from 'node:child_process';
import { cp, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.join(ROOT, 'dist');
/** Folders copied whole, when present (examples/ holds the example dossiers policy tests name). */
const DATA_DIRS = ['schemas', 'examples'];
/** Compiled, so not copied. */
const SOURCE = /\.(ts|mts|cts)$/;

async function exists(p) {
  return stat(p).then(() => true, () => false);
}

/** Every file under `dir` (relative paths) that is not TypeScript: what the build copies as it is. */
export async function assets(dir, rel = '') {
  const out = [];
  for (const entry of await readdir(path.join(dir, rel), { withFileTypes: true })) {
    const child = path.join(rel, entry.name);
    if (entry.isDirectory()) out.push(...(await assets(dir, child)));
    else if (entry.isFile() && !SOURCE.test(entry.name)) out.push(child);
  }
  return out.sort();
}

async function build() {
  await rm(DIST, { recursive: true, force: true });
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, stdio: 'inherit' });

  const copied = await assets(path.join(ROOT, 'gateway'));
  for (const file of copied) {
    await mkdir(path.dirname(path.join(DIST, 'gateway', file)), { recursive: true });
    await cp(path.join(ROOT, 'gateway', file), path.join(DIST, 'gateway', file));
  }
  for (const dir of DATA_DIRS) {
    if (await exists(path.join(ROOT, dir))) await cp(path.join(ROOT, dir), path.join(DIST, dir), { recursive: true });
  }
  process.stdout.write(`build: dist/ written (${copied.length} gateway asset(s) copied; ${DATA_DIRS.join(', ')} copied where present)\n`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await build();
