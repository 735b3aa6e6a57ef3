#!/usr/bin/env node
/**
 * The structure check: the boundaries a maintainer relies on, checked on every build.
 *
 *  - no import cycle between the top-level folders of gateway/ (policy → dossier is fine, dossier →
 *    policy as well would make the two one tangle; files directly in gateway/ count as one folder);
 *  - no .ts file in gateway/ over 400 lines;
 *  - each of these packages imported in one folder only, anywhere in gateway/ and scripts/ (type
 *    imports included: a type import still couples the code to the package): `ioredis` in
 *    gateway/store/, `bullmq` in gateway/queue/, `express` in gateway/http/.
 *
 * Plain Node, no dependencies: it reads the sources as text, with comments blanked out (strings kept).
 * Prints every offence and exits 1, or prints one line and exits 0.
 *
 *   node scripts/check-structure.mjs [ROOT]     ROOT: the repository (default: the one holding this file)
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const MAX_LINES = 400;
// `scope`: where the rule holds. The benchmarks' express echo server is a baseline, not the gateway.
const OWNERS = [
  { pkg: 'ioredis', folder: 'gateway/store/', scope: ['gateway/', 'scripts/'] },
  { pkg: 'bullmq', folder: 'gateway/queue/', scope: ['gateway/', 'scripts/'] },
  { pkg: 'express', folder: 'gateway/http/', scope: ['gateway/'] },
];
const SOURCE = /\.(?:ts|mts|cts|js|mjs|cjs)$/;
const SKIP_DIRS = new Set(['node_modules', 'dist', 'var', 'coverage']);

/** Every source file under `dir`, as paths relative to `root` with forward slashes, sorted. */
function sources(root, dir) {
  const out = [];
  const walk = (abs) => {
    let entries;
    try {
      entries = readdirSync(abs, { withFileTypes: true });
    } catch (err) {
      if (err.code === 'ENOENT') return;
      throw err;
    }
    for (const e of entries) {
      const p = path.join(abs, e.name);
      if (e.isDirectory()) {
        if (!SKIP_DIRS.has(e.name) && !e.name.startsWith('.')) walk(p);
      } else if (e.isFile() && SOURCE.test(e.name) && !e.name.endsWith('.d.ts')) {
        out.push(path.relative(root, p).split(path.sep).join('/'));
      }
    }
  };
  walk(path.join(root, dir));
  return out.sort();
}

/** The text with comments replaced by spaces (newlines kept), strings and template literals left alone. */
export function blankComments(src) {
  let out = '';
  let i = 0;
  const n = src.length;
  while (i < n) {
    const c = src[i];
    const next = src[i + 1];
    if (c === '/' && next === '/') {
      while (i < n && src[i] !== '\n') {
        out += ' ';
        i++;
      }
    } else if (c === '/' && next === '*') {
      const end = src.indexOf('*/', i + 2);
      const stop = end === -1 ? n : end + 2;
      out += src.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop;
    } else if (c === "'" || c === '"' || c === '`') {
      let j = i + 1;
      while (j < n && src[j] !== c) {
        if (src[j] === '\\') j++;
        else if (c !== '`' && src[j] === '\n') break; // an unterminated quote: stop at the line end
        j++;
      }
      out += src.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

const IMPORT_PATTERNS = [
  /\bimport\s+(?:type\s+)?[\w$*{}\s,]*?\bfrom\s*(['"])([^'"\n]+)\1/g, // import x, { y } from 'm'
  /\bexport\s+(?:type\s+)?(?:\*(?:\s+as\s+[\w$]+)?|\{[^}]*\})\s*from\s*(['"])([^'"\n]+)\1/g, // export { x } from 'm'
  /\bimport\s*(['"])([^'"\n]+)\1/g, // import 'm'
  /\bimport\s*\(\s*(['"])([^'"\n]+)\1\s*\)/g, // import('m')
  /\brequire\s*\(\s*(['"])([^'"\n]+)\1\s*\)/g, // require('m')
];

/** Every module specifier a source imports, re-exports or requires. */
export function importsOf(src) {
  const code = blankComments(src);
  const found = new Set();
  for (const re of IMPORT_PATTERNS) for (const m of code.matchAll(re)) found.add(m[2]);
  return [...found];
}

function lineCount(text) {
  if (text === '') return 0;
  const lines = text.split('\n').length;
  return text.endsWith('\n') ? lines - 1 : lines;
}

/** `gateway/policy/load.ts` → `policy`; a file directly in gateway/ → `(gateway/)`. */
function topFolder(rel) {
  const parts = rel.split('/');
  return parts.length > 2 ? parts[1] : '(gateway/)';
}

/** Strongly connected components of more than one node (Tarjan), each sorted, in a stable order. */
function cycles(adjacency) {
  let index = 0;
  const stack = [];
  const onStack = new Set();
  const idx = new Map();
  const low = new Map();
  const out = [];
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of adjacency.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v), idx.get(w)));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const group = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        group.push(w);
      } while (w !== v);
      if (group.length > 1) out.push(group.sort());
    }
  };
  for (const v of [...adjacency.keys()].sort()) if (!idx.has(v)) visit(v);
  return out.sort((a, b) => a[0].localeCompare(b[0]));
}

/** Every offence in the repository at `root`, as printable lines (empty when the structure holds). */
export function checkStructure(root) {
  const offences = [];
  const gateway = sources(root, 'gateway');
  const all = [...gateway, ...sources(root, 'scripts')];
  const edges = new Map(); // "a -> b" → ["file : specifier", ...]
  const adjacency = new Map();

  for (const rel of all) {
    const text = readFileSync(path.join(root, rel), 'utf8');
    const specifiers = importsOf(text);
    for (const { pkg, folder, scope } of OWNERS) {
      if (rel.startsWith(folder) || !scope.some((s) => rel.startsWith(s))) continue;
      for (const s of specifiers) {
        if (s === pkg || s.startsWith(`${pkg}/`)) offences.push(`${rel}: imports ${s} (only ${folder} may)`);
      }
    }
    if (!rel.startsWith('gateway/')) continue;
    if (rel.endsWith('.ts')) {
      const lines = lineCount(text);
      if (lines > MAX_LINES) offences.push(`${rel}: ${lines} lines (at most ${MAX_LINES} in gateway/)`);
    }
    const from = topFolder(rel);
    for (const s of specifiers) {
      if (!s.startsWith('.')) continue;
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(rel), s));
      if (!target.startsWith('gateway/')) continue;
      const to = topFolder(target);
      if (to === from) continue;
      const key = `${from} -> ${to}`;
      if (!edges.has(key)) edges.set(key, []);
      edges.get(key).push(`${rel} : ${s}`);
      if (!adjacency.has(from)) adjacency.set(from, new Set());
      adjacency.get(from).add(to);
    }
  }

  for (const group of cycles(adjacency)) {
    const inside = [...edges.entries()]
      .filter(([key]) => {
        const [a, b] = key.split(' -> ');
        return group.includes(a) && group.includes(b);
      })
      .sort(([a], [b]) => a.localeCompare(b));
    const detail = inside.map(([key, why]) => `    ${key}: ${why.join(', ')}`).join('\n');
    offences.push(`folder import cycle: ${group.join(', ')}\n${detail}`);
  }
  return offences;
}

const self = fileURLToPath(import.meta.url);
if (process.argv[1] && path.resolve(process.argv[1]) === self) {
  const root = path.resolve(process.argv[2] ?? path.join(path.dirname(self), '..'));
  const offences = checkStructure(root);
  if (offences.length > 0) {
    console.error(`check-structure: ${offences.length} offence${offences.length === 1 ? '' : 's'}`);
    for (const o of offences) console.error(`  ${o}`);
    process.exit(1);
  }
  console.log('check-structure: ok (no folder cycles in gateway/, no file over 400 lines, ioredis/bullmq/express each in their one folder)');
}
