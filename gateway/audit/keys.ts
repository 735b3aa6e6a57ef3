/**
 * Where the audit trail lives in Redis. The chain itself is one list (`audit:log`, record n at index
 * n-1) and its head (`audit:head`). Beside it, search indexes: one sorted set per term (score and member
 * are the record's sequence number) and one time index (score: the record's time in ms). The indexes
 * only speed up `GET /v1/audit`; they prove nothing and can be rebuilt from the chain.
 */
import type { Keys } from '../store/redis.js';

/** What a record is findable by. Values are ids or keyed HMACs, never dossier content. */
export type TermDimension = 'kind' | 'partner' | 'dossier' | 'packet' | 'ref' | 'subject';

export class AuditKeys {
  constructor(readonly keys: Keys) {}
  log() { return this.keys.auditLog(); }
  head() { return this.keys.auditHead(); }
  time() { return `${this.keys.prefix}:audit:idx:time`; }
  term(dimension: TermDimension, value: string) { return `${this.keys.prefix}:audit:idx:${dimension}:${value}`; }
}

/** The index terms of one record (`dimension:value`), derived from its fields. */
export function termsOf(record: Record<string, unknown>): Array<[TermDimension, string]> {
  const out: Array<[TermDimension, string]> = [];
  const str = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 200;
  if (str(record.kind)) out.push(['kind', record.kind]);
  if (str(record.recipient)) out.push(['partner', record.recipient]);
  if (str(record.dossier)) out.push(['dossier', record.dossier]);
  if (str(record.packet)) out.push(['packet', record.packet]);
  if (str(record.notice)) out.push(['packet', record.notice]);
  const index = record.index as { reference?: unknown; subjects?: unknown } | undefined;
  if (index && typeof index === 'object') {
    if (str(index.reference)) out.push(['ref', index.reference]);
    if (Array.isArray(index.subjects)) for (const s of new Set(index.subjects)) if (str(s)) out.push(['subject', s]);
  }
  return out;
}
