/**
 * Secret files in the gateway's state directory (`CORDON_STATE_DIR`): the gateway's OpenPGP key and
 * the master secret for at-rest sealing. Both are created on first start, exactly once, even when
 * several processes start at the same moment against one state directory.
 *
 * How "exactly once" holds: the creator writes the full content to a private temporary file and then
 * hard-links it to the final name. link(2) fails with EEXIST when the name is taken, so one process
 * wins and every other one reads the winner's file, which is complete from the moment it appears
 * (a plain `open(O_EXCL)` + write would let a loser read a half-written file). Where the file system
 * cannot hard-link, it falls back to an exclusive create (`flag: 'wx'`) and readers retry briefly.
 */
import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const FILE_MODE = 0o600;
const DIR_MODE = 0o700;
const READ_RETRIES = 20;
const READ_RETRY_MS = 50;

function errno(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Creates the state directory (0700) if absent; tightens its mode if we own it and it is wider. */
async function ensureStateDir(stateDir: string): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: DIR_MODE });
  await tighten(stateDir, DIR_MODE);
}

async function tighten(path: string, mode: number): Promise<void> {
  try {
    const st = await stat(path);
    if ((st.mode & 0o077) !== 0 && (typeof process.getuid !== 'function' || st.uid === process.getuid())) {
      await chmod(path, mode);
    }
  } catch {
    // read-only mounts and foreign owners: leave as is, the content is still read.
  }
}

/**
 * Reads `<stateDir>/<name>` and hands it to `parse`; if the file does not exist, calls `create` for
 * fresh content, publishes it atomically and exclusively, and returns what is then on disk (which
 * is another process's content when that process won the race).
 */
export async function readOrCreateStateFile<T>(
  stateDir: string,
  name: string,
  create: () => Promise<string>,
  parse: (content: string) => Promise<T>,
): Promise<T> {
  await ensureStateDir(stateDir);
  const path = join(stateDir, name);
  const existing = await readIfExists(path);
  if (existing !== undefined) return readParsed(path, existing, parse);

  const content = await create();
  const published = await publishExclusive(stateDir, path, content);
  if (published) return parse(content);
  const winner = await readIfExists(path);
  if (winner === undefined) throw new Error(`${path} vanished while being created`);
  return readParsed(path, winner, parse);
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    const content = await readFile(path, 'utf8');
    await tighten(path, FILE_MODE);
    return content;
  } catch (err) {
    if (errno(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** Parses; on failure re-reads a few times in case a fallback-mode writer is still writing. */
async function readParsed<T>(path: string, first: string, parse: (content: string) => Promise<T>): Promise<T> {
  let content = first;
  for (let attempt = 0; ; attempt++) {
    try {
      return await parse(content);
    } catch (err) {
      if (attempt >= READ_RETRIES) throw err;
      await sleep(READ_RETRY_MS);
      const again = await readIfExists(path);
      if (again === undefined) throw err;
      if (again === content && attempt >= 2) throw err; // unchanged content: not a race, really invalid
      content = again;
    }
  }
}

/** true if this call created the file, false if another process had created it first. */
async function publishExclusive(stateDir: string, path: string, content: string): Promise<boolean> {
  const tmp = join(stateDir, `.${randomBytes(8).toString('hex')}.tmp`);
  await writeFile(tmp, content, { mode: FILE_MODE, flag: 'wx' });
  try {
    await link(tmp, path);
    return true;
  } catch (err) {
    if (errno(err) === 'EEXIST') return false;
    // No hard links here (some network or FUSE file systems): exclusive create instead.
    try {
      await writeFile(path, content, { mode: FILE_MODE, flag: 'wx' });
      return true;
    } catch (err2) {
      if (errno(err2) === 'EEXIST') return false;
      throw err2;
    }
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/** `<stateDir>/<name>`, or undefined when it does not exist. */
export async function readStateFile(stateDir: string, name: string): Promise<string | undefined> {
  return readIfExists(join(stateDir, name));
}

/** Replaces `<stateDir>/<name>` whole (temporary file, then rename): a reader sees the old or the new content. */
export async function writeStateFile(stateDir: string, name: string, content: string): Promise<void> {
  await ensureStateDir(stateDir);
  const tmp = join(stateDir, `.${randomBytes(8).toString('hex')}.tmp`);
  await writeFile(tmp, content, { mode: FILE_MODE, flag: 'wx' });
  try {
    await rename(tmp, join(stateDir, name));
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}
