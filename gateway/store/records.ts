/**
 * Reading and changing authenticated records (record-mac.ts) in Redis: every read checks the MAC and
 * the version key, every change is a compare-and-set on the version read (store/scripts/record-*.lua),
 * retried from a fresh read when another writer got there first. A record that fails its check is
 * reported once per process (`onTampered`, which the gateway audits as `record.tampered`) and refused.
 */
import type { Redis } from 'ioredis';
import type { Keys } from './redis.js';
import { BULK_FIELDS, RecordMac, tamperedError, type RecordKind, type Tampering } from './record-mac.js';
import { evalScript, evalScriptBuffer, loadScript } from './scripts.js';

const READ = loadScript('record-read');
const UPDATE = loadScript('record-update');
const SEAL_LEGACY = loadScript('record-seal-legacy');

/** How many compare-and-set rounds a change gets before it gives up (only concurrent writers retry). */
const MAX_ATTEMPTS = 10;
/** Tamper reports remembered per process, so a record read in a loop is audited once. */
const MAX_REPORTED = 10_000;

export type TamperReport = (t: Tampering) => void | Promise<void>;

export interface RecordAuth {
  mac: RecordMac;
  /** Called once per tampered record (and problem) this process meets, before it is refused. */
  onTampered?: TamperReport;
}

export interface VerifiedRecord {
  fields: Record<string, string>;
  version: number;
  /** With a bulk read: the fields stored as bytes (BINARY_FIELDS: a packet's `message`), not in `fields`. */
  bytes?: Record<string, Buffer>;
  /** With `alongside`: that hash's fields, read in the same step. */
  alongside?: Record<string, string>;
}

/** Bulk fields that may hold bytes, read as Buffers; they are never authenticated by the MAC (record-mac.ts). */
const BINARY_FIELDS: Record<RecordKind, ReadonlySet<string>> = { dossier: new Set(['sealed']), packet: new Set(['message']) };

export class AuthenticatedRecords {
  private readonly reported = new Set<string>();

  constructor(private readonly redis: Redis, private readonly keys: Keys, private readonly auth: RecordAuth) {}

  private key(kind: RecordKind, id: string): string {
    return kind === 'dossier' ? this.keys.dossier(id) : this.keys.packet(id);
  }

  /** Signs a new record's fields at version 1: the fields to store, `v` and `mac` included. */
  sealNew(kind: RecordKind, id: string, fields: Record<string, string>): Record<string, string> {
    return { ...fields, v: '1', mac: this.auth.mac.sign(kind, id, 1, fields) };
  }

  /**
   * The record's fields (without its bulk fields unless `bulk`), checked; undefined when it is gone.
   * `alongside`: another hash read in the same step (returned as `alongside`, unchecked: not a record).
   * Throws `record_tampered` when it fails its check.
   */
  async read(kind: RecordKind, id: string, bulk = false, alongside?: string): Promise<VerifiedRecord | undefined> {
    const fields: Record<string, string> = {};
    let bytes: Record<string, Buffer> | undefined;
    let latest: string | null;
    let also: Record<string, string> | undefined;
    const keys = [this.key(kind, id), this.keys.recordVersion(kind, id), ...(alongside ? [alongside] : [])];
    if (bulk) {
      const [flat, version, other] = (await evalScriptBuffer(this.redis, READ, keys.length, ...keys)) as [Buffer[], Buffer | null, Buffer[]?];
      if (!flat.length) return undefined;
      bytes = {};
      for (let i = 0; i < flat.length; i += 2) {
        const name = flat[i]!.toString('utf8');
        if (BINARY_FIELDS[kind].has(name)) bytes[name] = flat[i + 1]!;
        else fields[name] = flat[i + 1]!.toString('utf8');
      }
      latest = version === null ? null : version.toString('utf8');
      if (other) also = pairs(other.map((b) => b.toString('utf8')));
    } else {
      const [flat, version, other] = (await evalScript(this.redis, READ, keys.length, ...keys, ...BULK_FIELDS[kind])) as [string[], string | null, string[]?];
      if (!flat.length) return undefined;
      Object.assign(fields, pairs(flat));
      latest = version;
      if (other) also = pairs(other);
    }
    const checked = this.auth.mac.check(kind, id, fields, latest);
    if ('problem' in checked) {
      const t: Tampering = { kind, id, problem: checked.problem };
      await this.report(t);
      throw tamperedError(t);
    }
    return { fields, version: checked.version, ...(bytes ? { bytes } : {}), ...(also ? { alongside: also } : {}) };
  }

  /** Like read(), but a tampered record reads as `tampered` (for listings, which leave it out). */
  async readOrSkip(kind: RecordKind, id: string): Promise<VerifiedRecord | undefined | 'tampered'> {
    try {
      return await this.read(kind, id);
    } catch (err) {
      if ((err as { code?: string }).code === 'record_tampered') return 'tampered';
      throw err;
    }
  }

  /** The MAC of a record's fields at `version` (for a change a script makes by compare-and-set). */
  mac(kind: RecordKind, id: string, version: number, fields: Record<string, string>): string {
    return this.auth.mac.sign(kind, id, version, fields);
  }

  /**
   * Changes a record: `change` gets its current fields and says what to set and delete (or undefined:
   * nothing to do). `known`: the record as this process last read it, tried first (saves a read when
   * nothing changed it since). Returns false when the record is gone.
   */
  async update(
    kind: RecordKind,
    id: string,
    change: (fields: Record<string, string>) => { set?: Record<string, string>; del?: string[] } | undefined,
    known?: VerifiedRecord,
  ): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = attempt === 0 && known ? known : await this.read(kind, id);
      if (!current) return false;
      const wanted = change(current.fields);
      if (!wanted) return true;
      const set = wanted.set ?? {};
      const del = wanted.del ?? [];
      const next: Record<string, string> = { ...current.fields, ...set };
      for (const f of del) delete next[f];
      const version = current.version + 1;
      const mac = this.auth.mac.sign(kind, id, version, next);
      const pairs = Object.entries(set).flat();
      const res = await evalScript(this.redis, UPDATE, 2, this.key(kind, id), this.keys.recordVersion(kind, id), String(current.version), String(version), mac, String(pairs.length / 2), ...pairs, ...del);
      if (res === 1) return true;
      if (res === 0) return false;
    }
    throw new Error(`the ${kind} record ${id} kept changing under ${MAX_ATTEMPTS} attempts to change it`);
  }

  /**
   * Seals every record written before records were authenticated (no MAC and no version key): run once
   * per state directory (see compose/records.ts). Returns how many were sealed.
   */
  async sealLegacy(): Promise<number> {
    let sealed = 0;
    for (const kind of ['dossier', 'packet'] as const) {
      const pattern = new RegExp(`^${escape(this.keys.prefix)}:${kind}:((?:dos|pkt)_[0-9a-z]+)$`);
      let cursor = '0';
      do {
        const [next, found] = await this.redis.scan(cursor, 'MATCH', `${this.keys.prefix}:${kind}:*`, 'COUNT', '1000');
        cursor = next;
        for (const key of found) {
          const id = pattern.exec(key)?.[1];
          if (!id) continue;
          const fields = await this.redis.hgetall(key);
          if (!fields.id || fields.mac !== undefined) continue;
          const mac = this.auth.mac.sign(kind, id, 1, fields);
          sealed += (await evalScript(this.redis, SEAL_LEGACY, 2, key, this.keys.recordVersion(kind, id), mac)) as number;
        }
      } while (cursor !== '0');
    }
    return sealed;
  }

  private async report(t: Tampering): Promise<void> {
    const key = `${t.kind}:${t.id}:${t.problem}`;
    if (this.reported.has(key) || !this.auth.onTampered) return;
    if (this.reported.size >= MAX_REPORTED) this.reported.clear();
    this.reported.add(key);
    try {
      await this.auth.onTampered(t);
    } catch {
      // The record is refused whether or not the report could be written.
    }
  }
}

/** A Redis field/value list as an object. */
function pairs(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
