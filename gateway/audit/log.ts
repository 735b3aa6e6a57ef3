/**
 * The s.62 audit trail: an append-only list in Redis where every record carries the SHA-256 of the
 * previous one. Appends are compare-and-set on the chain head (a Lua script), so several api and worker
 * processes can write at once without forking the chain. Records hold ids, paths and codes, never values.
 * When a record cannot be written the caller gets `audit_unavailable` and must not perform the action.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { GatewayError } from '../errors/index.js';
import type { Keys } from '../store/redis.js';

export type AuditKind =
  | 'collection' // dossier received
  | 'rejection' // dossier refused at the door
  | 'disclosure' // packet created for a recipient
  | 'decision' // delivery blocked
  | 'consultation' // packet retrieved, preview used, dossier status read
  | 'acknowledgement'
  | 'erasure'
  | 'alteration' // policy set loaded or refused
  | 'auth_failure';

export interface AuditEvent {
  kind: AuditKind;
  action: string;
  actor?: string;
  dossier?: string;
  packet?: string;
  recipient?: string;
  policyRevision?: string;
  agreement?: { reference: string; legalBasis: string; purpose: string };
  fields?: Array<{ path: string; op: string }>;
  reason?: string;
  [key: string]: unknown;
}

export interface AuditRecord extends AuditEvent {
  seq: number;
  at: string;
  prev: string;
  hash: string;
}

export const GENESIS = '0'.repeat(64);

const APPEND = `
local head = redis.call('GET', KEYS[1]) or ARGV[1]
if head ~= ARGV[2] then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('SET', KEYS[1], ARGV[4])
return 1
`;

/** Canonical JSON (sorted keys) so the hash does not depend on property order. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function recordHash(record: Omit<AuditRecord, 'hash'>): string {
  return createHash('sha256').update(canonical(record)).digest('hex');
}

export class AuditLog {
  constructor(private readonly redis: Redis, private readonly keys: Keys) {}

  async append(event: AuditEvent): Promise<AuditRecord> {
    try {
      for (let attempt = 0; attempt < 200; attempt++) {
        const head = (await this.redis.get(this.keys.auditHead())) ?? `0:${GENESIS}`;
        const [seqText, prev] = head.split(':') as [string, string];
        const body: Omit<AuditRecord, 'hash'> = { ...event, seq: Number(seqText) + 1, at: new Date().toISOString(), prev };
        const record = { ...body, hash: recordHash(body) } as AuditRecord;
        const ok = await this.redis.eval(
          APPEND,
          2,
          this.keys.auditHead(),
          this.keys.auditLog(),
          `0:${GENESIS}`,
          head,
          JSON.stringify(record),
          `${record.seq}:${record.hash}`,
        );
        if (ok === 1) return record;
      }
      throw new Error('audit chain head kept moving');
    } catch (err) {
      throw new GatewayError('audit_unavailable', 'The audit trail cannot be written, so the action was not performed', undefined, { cause: err });
    }
  }

  async read(start = 0, end = -1): Promise<AuditRecord[]> {
    const rows = await this.redis.lrange(this.keys.auditLog(), start, end);
    return rows.map((r) => JSON.parse(r) as AuditRecord);
  }
}

/** Recomputes the chain; returns the first bad record's position and why, or undefined when intact. */
export function verifyChain(records: AuditRecord[]): { index: number; seq?: number; problem: string } | undefined {
  let prev = GENESIS;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    const { hash, ...body } = r;
    if (r.seq !== i + 1) return { index: i, seq: r.seq, problem: `expected sequence ${i + 1}, found ${r.seq}` };
    if (r.prev !== prev) return { index: i, seq: r.seq, problem: 'does not link to the previous record' };
    if (recordHash(body) !== hash) return { index: i, seq: r.seq, problem: 'content does not match its hash' };
    prev = hash;
  }
  return undefined;
}
