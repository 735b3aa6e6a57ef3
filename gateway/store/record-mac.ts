/**
 * Authenticated record metadata. A dossier's status record and a packet's (or recall notice's) record
 * are Redis hashes whose fields decide who gets what: a packet's `partner`, a dossier's `source` and
 * `state`. Each record carries a version `v`, incremented on every change, and `mac`: HMAC-SHA-256,
 * under the keyring's `record-mac` key, of the record's kind, id, version and every authenticated field
 * in a canonical order. The latest version of each record is also kept in its version key
 * (`Keys.recordVersion`), written in the same script as the record (compare-and-set on both), so an
 * older copy of the record restored on its own no longer matches. Reads check both and refuse the
 * record (`record_tampered`) on any mismatch; see docs/decisions/0010-authenticated-record-metadata.md.
 *
 * Fields left out of the MAC are sealed elsewhere under an AAD naming the record (`sealed`, `refs`,
 * `subjects`, `blind`), or are ciphertext to the partner's own key (`message`), or say only that a dossier is
 * still being stored (`pending`).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { GatewayError } from '../errors/index.js';

export type RecordKind = 'dossier' | 'packet';

/** Fields not covered by the MAC, per kind (see above), besides `v` and `mac` themselves. */
const UNAUTHENTICATED: Record<RecordKind, ReadonlySet<string>> = {
  dossier: new Set(['sealed', 'pending']),
  packet: new Set(['message', 'refs', 'subjects', 'blind']),
};

/** The large fields a read of the metadata alone leaves in Redis. */
export const BULK_FIELDS: Record<RecordKind, readonly string[]> = {
  dossier: ['sealed'],
  packet: ['message', 'refs', 'subjects', 'blind'],
};

/** Why a record was refused; the store reports it (`onTampered`) and throws `record_tampered`. */
export type TamperProblem = 'mac_missing' | 'mac_invalid' | 'version_missing' | 'version_stale';

export interface Tampering {
  kind: RecordKind;
  id: string;
  problem: TamperProblem;
}

export class RecordMac {
  constructor(private readonly key: Buffer) {
    if (key.length < 32) throw new GatewayError('key_invalid', 'the record MAC key must be 32 bytes');
  }

  /** The MAC of `fields` (the hash as stored; `v`, `mac` and unauthenticated fields are ignored) at `version`. */
  sign(kind: RecordKind, id: string, version: number, fields: Record<string, string>): string {
    const skip = UNAUTHENTICATED[kind];
    const entries = Object.entries(fields)
      .filter(([k]) => k !== 'v' && k !== 'mac' && !skip.has(k))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    // JSON of strings only: unambiguous, whatever the fields contain.
    return createHmac('sha256', this.key).update(JSON.stringify(['cordon.record/v1', kind, id, version, entries])).digest('base64url');
  }

  /**
   * The record's version when its MAC and version hold, else why not. `latest` is the value of its
   * version key (null when absent).
   */
  check(kind: RecordKind, id: string, fields: Record<string, string>, latest: string | null): { version: number } | { problem: TamperProblem } {
    if (fields.mac === undefined) return { problem: 'mac_missing' };
    const version = Number(fields.v);
    if (!Number.isSafeInteger(version) || version < 1 || String(version) !== fields.v) return { problem: 'mac_invalid' };
    const expected = Buffer.from(this.sign(kind, id, version, fields));
    const given = Buffer.from(fields.mac);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { problem: 'mac_invalid' };
    if (latest === null) return { problem: 'version_missing' };
    if (latest !== fields.v) return { problem: 'version_stale' };
    return { version };
  }
}

/** The error a tampered record is refused with: nothing of it is disclosed. */
export function tamperedError(t: Tampering): GatewayError {
  return new GatewayError('record_tampered', `The stored ${t.kind} record ${t.id} failed its integrity check (${t.problem}); it is refused`);
}
