/**
 * Reading the policy directory: YAML files (size-capped, duplicate keys refused, aliases bounded) and
 * key files (inside the directory, also through links; never a secret key). Every file read is kept
 * with its content for the revision hash.
 */
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { Problems } from './schema-check.js';

const MAX_FILE_BYTES = 1024 * 1024;

export interface Loaded {
  rel: string;
  content: string;
}

export async function readText(root: string, rel: string, files: Loaded[], problems: Problems): Promise<string | undefined> {
  const abs = path.join(root, rel);
  try {
    const info = await stat(abs);
    if (!info.isFile()) {
      problems.add(rel, '', 'is not a regular file');
      return undefined;
    }
    if (info.size > MAX_FILE_BYTES) {
      problems.add(rel, '', `is larger than ${MAX_FILE_BYTES} bytes`);
      return undefined;
    }
    const content = await readFile(abs, 'utf8');
    files.push({ rel, content });
    return content;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    problems.add(rel, '', code === 'ENOENT' ? 'is missing' : `cannot be read: ${code ?? (err as Error).message}`);
    return undefined;
  }
}

export function parseYaml(rel: string, text: string, problems: Problems): unknown {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true, schema: 'core' });
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const line = e.linePos?.[0];
      const message = (e.message.split('\n')[0] ?? 'YAML syntax error').replace(/ at line \d+, column \d+:?$/, '');
      problems.add(rel, line ? `line ${line.line}, column ${line.col}` : '', message);
    }
    return undefined;
  }
  try {
    return doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (err) {
    problems.add(rel, '', `YAML: ${(err as Error).message}`);
    return undefined;
  }
}

/** `partners/*.yaml` (and .yml), sorted; a missing directory is `undefined`. */
export async function listYaml(root: string, sub: string): Promise<string[] | undefined> {
  let names: string[];
  try {
    names = await readdir(path.join(root, sub));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return names.filter((n) => /\.ya?ml$/.test(n) && !n.startsWith('.')).sort();
}

export function fileId(name: string): string {
  return name.replace(/\.ya?ml$/, '');
}

export async function readKey(root: string, realRoot: string, rel: string, where: string, file: string, files: Loaded[], problems: Problems): Promise<string | undefined> {
  if (path.isAbsolute(file) || file.split('/').includes('..') || file.includes('\\')) {
    problems.add(rel, where, 'must be a path inside the policy directory (relative, without "..")');
    return undefined;
  }
  const abs = path.resolve(root, file);
  const relToRoot = path.relative(root, abs);
  if (relToRoot.startsWith('..') || path.isAbsolute(relToRoot)) {
    problems.add(rel, where, 'must be a path inside the policy directory');
    return undefined;
  }
  let real: string;
  try {
    real = await realpath(abs);
  } catch {
    return undefined; // missing: the delivery blocks with recipient_key_invalid, the set still loads
  }
  const realRel = path.relative(realRoot, real);
  if (realRel.startsWith('..') || path.isAbsolute(realRel)) {
    problems.add(rel, where, 'resolves (through a link) outside the policy directory');
    return undefined;
  }
  try {
    const info = await stat(real);
    if (!info.isFile()) return undefined;
    if (info.size > MAX_FILE_BYTES) {
      problems.add(rel, where, `key file is larger than ${MAX_FILE_BYTES} bytes`);
      return undefined;
    }
    const armored = await readFile(real, 'utf8');
    if (/PRIVATE KEY BLOCK/.test(armored)) {
      problems.add(rel, where, 'is a SECRET key: only public keys belong in the policy directory');
      return undefined;
    }
    files.push({ rel: relToRoot.split(path.sep).join('/'), content: armored });
    return armored;
  } catch {
    return undefined;
  }
}
