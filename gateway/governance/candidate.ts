/**
 * A candidate policy set sent from the governance console: `{files: {relpath: content}, base}`, the
 * files chosen in the browser. `base: "none"`: the files are the whole set (a folder was chosen);
 * `base: "live"`: they replace or add to the live set's own files (a few edited files were chosen).
 *
 * The set is loaded by the same loader as the live one (every check, every problem listed), from a
 * private temporary directory (0700, removed before the answer) — never the policy directory, so a
 * candidate can never go live or be signed from here. Paths are relative names checked against a
 * strict pattern before anything is written; sizes are capped before anything is written.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GatewayError, type ErrorDetail } from '../errors/index.js';
import { collectPolicySet } from '../policy/load.js';
import type { PolicySet } from '../policy/types.js';

export const CANDIDATE_MAX_FILES = 200;
export const CANDIDATE_MAX_FILE_BYTES = 256 * 1024;
export const CANDIDATE_MAX_BYTES = 2 * 1024 * 1024;

/**
 * Only what the loader reads: `gateway.yaml`, `partners|sources|peers/<id>.yaml`, and key or certificate
 * files (`keys/dvla.asc`) at most 3 deep. Never a clients file or anything else; no dot-files, no "..";
 * folder names without dots, so no file can also be a folder.
 */
const REL = /^(?:gateway\.yaml|(?:partners|sources|peers)\/[A-Za-z0-9_][A-Za-z0-9._-]{0,63}\.ya?ml|(?:[A-Za-z0-9_][A-Za-z0-9_-]{0,63}\/){0,2}[A-Za-z0-9_][A-Za-z0-9._-]{0,63}\.(?:asc|pem|crt))$/;

export interface CandidateFiles {
  files: Record<string, string>;
  base: 'live' | 'none';
}

const pointer = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Checks the shape, paths and sizes; `at` is where the candidate sits in the request (`/candidate`). */
export function parseCandidate(v: unknown, at: string): CandidateFiles {
  const problems: ErrorDetail[] = [];
  if (!isPlainObject(v)) throw new GatewayError('schema_violation', 'The candidate policy set does not match the schema', [{ path: at, message: 'must be an object with files and base' }]);
  for (const k of Object.keys(v)) if (k !== 'files' && k !== 'base') problems.push({ path: `${at}/${pointer(k)}`, message: 'is not an allowed property' });
  const base = v.base ?? 'none';
  if (base !== 'live' && base !== 'none') problems.push({ path: `${at}/base`, message: 'must be "live" (the files change the live set) or "none" (the files are the whole set)' });
  const files: Record<string, string> = {};
  if (!isPlainObject(v.files)) problems.push({ path: `${at}/files`, message: 'must be an object of relative path → file content' });
  else {
    const entries = Object.entries(v.files);
    if (entries.length === 0) problems.push({ path: `${at}/files`, message: 'must hold at least one file' });
    if (entries.length > CANDIDATE_MAX_FILES) problems.push({ path: `${at}/files`, message: `must hold at most ${CANDIDATE_MAX_FILES} files` });
    let total = 0;
    for (const [rel, content] of entries.slice(0, CANDIDATE_MAX_FILES)) {
      const where = `${at}/files/${pointer(rel)}`;
      if (!REL.test(rel) || rel.split('/').some((s) => s === '..' || s === '.')) {
        problems.push({ path: where, message: 'must be a file the policy loader reads: gateway.yaml, partners|sources|peers/ID.yaml, or a key or certificate (.asc, .pem, .crt) at most 3 levels deep; letters, digits, . _ -, no ".."' });
        continue;
      }
      if (typeof content !== 'string') {
        problems.push({ path: where, message: 'must be the file content as a string' });
        continue;
      }
      const bytes = Buffer.byteLength(content, 'utf8');
      total += bytes;
      if (bytes > CANDIDATE_MAX_FILE_BYTES) problems.push({ path: where, message: `is larger than ${CANDIDATE_MAX_FILE_BYTES} bytes` });
      if (content.includes('\u0000')) problems.push({ path: where, message: 'must be text' });
      files[rel] = content;
    }
    if (total > CANDIDATE_MAX_BYTES) throw new GatewayError('payload_too_large', `The candidate files total ${total} bytes; at most ${CANDIDATE_MAX_BYTES} are accepted`, [{ path: `${at}/files`, message: `at most ${CANDIDATE_MAX_BYTES} bytes in all` }]);
  }
  if (problems.length) throw new GatewayError('schema_violation', 'The candidate policy set does not match the schema', problems);
  return { files, base: base as 'live' | 'none' };
}

/** The live set's own files, as it loaded them: refused if the directory changed since. */
async function liveFiles(live: PolicySet): Promise<Record<string, string>> {
  if (!live.files) throw new GatewayError('candidate_invalid', 'The live set does not list its files, so no candidate can be laid over it: choose the whole folder');
  const out: Record<string, string> = {};
  for (const { rel, sha256 } of live.files) {
    const content = await readFile(path.join(live.dir, rel), 'utf8').catch(() => undefined);
    if (content === undefined || createHash('sha256').update(content, 'utf8').digest('hex') !== sha256) {
      throw new GatewayError('candidate_invalid', `The policy directory has changed since revision ${live.revision} went live (${rel}): choose the whole folder, or diff once the reload is done`, [{ path: rel, message: 'differs from the live revision' }]);
    }
    out[rel] = content;
  }
  return out;
}

/**
 * Loads the candidate (laid over the live set's files for `base: "live"`), or throws candidate_invalid
 * with every problem, each path naming the file as sent. The temporary directory is always removed.
 */
export async function loadCandidate(candidate: CandidateFiles, live: PolicySet, at: string, now: Date = new Date()): Promise<PolicySet> {
  const files = candidate.base === 'live' ? { ...(await liveFiles(live)), ...candidate.files } : candidate.files;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cordon-candidate-'));
  try {
    for (const [rel, content] of Object.entries(files)) {
      const abs = path.join(dir, rel);
      await mkdir(path.dirname(abs), { recursive: true, mode: 0o700 });
      await writeFile(abs, content, { mode: 0o600, flag: 'wx' });
    }
    const { set, problems } = await collectPolicySet(dir, now);
    if (problems.length) {
      const n = problems.length;
      throw new GatewayError(
        'candidate_invalid',
        `The candidate policy set does not load: ${n} problem${n === 1 ? '' : 's'}`,
        problems.map((p) => ({ ...p, path: `${at}/files/${p.path ?? ''}` })),
      );
    }
    // The loader names its directory; this one is gone once the answer is made.
    return { ...set, dir: '(candidate from the console)' };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
