/**
 * The partner client's output directory: one JSON file per packet (mode 0600, in a 0700 directory),
 * written whole or not at all (a temporary file, fsync, rename), a lock so two runs (cron overlapping a
 * slow one) never work at once, and a small state file that makes a run resumable.
 */
import { constants } from 'node:fs';
import { chmod, mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { ClientError } from './http.js';

export const LOCK_FILE = '.cordon-partner.lock';
export const STATE_FILE = '.cordon-partner-state.json';
const PACKET_FILE = /^pkt_[a-z2-7]{1,64}\.json$/;

/** One packet as the client keeps it: what the gateway listed, and the decrypted, verified plaintext. */
export interface PacketFile {
  id: string;
  type: 'packet' | 'match' | 'recall';
  expiresAt: string;
  retrievedAt: string;
  /** The key that signed it: always the pinned gateway key. */
  signedBy: string;
  /** For a recall notice: the packet it recalls. */
  recalls?: string;
  /** The plaintext exactly as the gateway made it (`{packet, dossier}`, `{match, subjects}`, `{recall}`). */
  content: unknown;
}

export interface ClientState {
  /** Packets refused (a signature not by the pinned key…): not acknowledged, not fetched again unless asked. */
  refused: Record<string, { at: string; reason: string }>;
}

export class OutDir {
  private constructor(readonly dir: string) {}

  static async open(dir: string): Promise<OutDir> {
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const s = await stat(dir);
      if (!s.isDirectory()) throw new Error('not a directory');
      // Only the owner may list what was received.
      if ((s.mode & 0o077) !== 0) await chmod(dir, 0o700);
    } catch (err) {
      throw new ClientError('config', `output directory ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    return new OutDir(dir);
  }

  file(id: string): string {
    return path.join(this.dir, `${id}.json`);
  }

  /**
   * Takes the lock or throws `locked`. A lock left by a run that died (its process is gone) is taken
   * over. Returns the release function.
   */
  async lock(): Promise<() => Promise<void>> {
    const file = path.join(this.dir, LOCK_FILE);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fh = await open(file, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
        await fh.writeFile(`${process.pid}\n${new Date().toISOString()}\n`);
        await fh.close();
        return async () => {
          await unlink(file).catch(() => undefined);
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new ClientError('config', `cannot create the lock ${file}: ${(err as Error).message}`);
        const pid = Number((await readFile(file, 'utf8').catch(() => '')).split('\n')[0]);
        if (Number.isInteger(pid) && pid > 0 && alive(pid)) throw new ClientError('locked', `another run (pid ${pid}) holds ${file}`);
        await unlink(file).catch(() => undefined);
      }
    }
    throw new ClientError('locked', `cannot take the lock ${file}`);
  }

  async readState(): Promise<ClientState> {
    try {
      const s = JSON.parse(await readFile(path.join(this.dir, STATE_FILE), 'utf8')) as Partial<ClientState>;
      return { refused: s.refused && typeof s.refused === 'object' ? s.refused : {} };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { refused: {} };
      throw new ClientError('config', `${STATE_FILE} in ${this.dir} is unreadable: ${(err as Error).message}`);
    }
  }

  writeState(state: ClientState): Promise<void> {
    return this.writeAtomic(path.join(this.dir, STATE_FILE), JSON.stringify(state, null, 2) + '\n');
  }

  async has(id: string): Promise<boolean> {
    return stat(this.file(id)).then(
      () => true,
      () => false,
    );
  }

  write(p: PacketFile): Promise<void> {
    return this.writeAtomic(this.file(p.id), JSON.stringify(p, null, 2) + '\n');
  }

  /** Removes a packet's file; true when there was one. */
  async remove(id: string): Promise<boolean> {
    try {
      await rm(this.file(id));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  async read(id: string): Promise<PacketFile | undefined> {
    try {
      return JSON.parse(await readFile(this.file(id), 'utf8')) as PacketFile;
    } catch {
      return undefined;
    }
  }

  /** Every packet file held. */
  async list(): Promise<PacketFile[]> {
    const out: PacketFile[] = [];
    for (const name of (await readdir(this.dir)).filter((n) => PACKET_FILE.test(n)).sort()) {
      const p = await this.read(name.slice(0, -5));
      if (p) out.push(p);
    }
    return out;
  }

  private async writeAtomic(file: string, text: string): Promise<void> {
    const tmp = `${file}.${process.pid}.tmp`;
    // A leftover from a run that died may have another mode: start afresh so the file is born 0600.
    await unlink(tmp).catch(() => undefined);
    const fh = await open(tmp, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
