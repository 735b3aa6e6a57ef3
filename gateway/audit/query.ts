/**
 * Searching the audit trail: "who received data about subject S1 of dossier WMP-OCG-2026-00412, when,
 * under which agreement and policy revision". Filters are ANDed; the dossier reference and subject id
 * are turned into the same keyed HMACs the records carry (for the given source, or for every configured
 * source), so neither is ever stored or compared in plaintext. Results come in sequence order, a page
 * at a time (`after` = the last sequence number seen); each search does bounded work and says where to
 * resume when it stopped early. Every record returned is re-hashed: one that does not match its hash
 * is flagged, so a tampered log shows even here (`cordon audit verify` is the full check).
 */
import { GatewayError, type ErrorDetail } from '../errors/index.js';
import type { AuditChainStore, AuditTerm } from '../store/audit.js';
import { AUDIT_KINDS } from './events.js';
import { AuditIndexer } from './index-terms.js';
import type { TermDimension } from './keys.js';
import { recordHash, type AuditKind, type AuditLog, type AuditRecord } from './log.js';

export { AUDIT_KINDS } from './events.js';
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 500;
/** Index entries examined per search at most (then `next` says where to resume). */
const MAX_SCAN = 20_000;
const BATCH = 1000;

export interface AuditFilter {
  reference?: string;
  subject?: string;
  source?: string;
  partner?: string;
  dossier?: string;
  packet?: string;
  kind?: AuditKind;
  since?: Date;
  until?: Date;
  after?: number;
  limit: number;
}

export interface AuditPage {
  records: AuditRecord[];
  /** Pass as `after` for the next page; null when there is nothing more. */
  next: number | null;
  /** Sequence numbers whose stored record does not match its position or hash. */
  damaged: number[];
}

const ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
const DOSSIER = /^dos_[0-9a-f]{32}$/;
const PACKET = /^pkt_[a-z2-7]{1,64}$/;
const PRINTABLE = /^[\x21-\x7e][\x20-\x7e]*$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;
const PARAMS = ['reference', 'subject', 'source', 'partner', 'dossier', 'packet', 'kind', 'since', 'until', 'after', 'limit'];

/** Validates query-string parameters into a filter; every problem is listed (`query_invalid`). */
export function parseAuditFilter(query: Record<string, unknown>): AuditFilter {
  const problems: ErrorDetail[] = [];
  const get = (name: string): string | undefined => {
    const v = query[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') {
      problems.push({ path: name, message: 'must be given once, as a plain value' });
      return undefined;
    }
    return v;
  };
  for (const name of Object.keys(query)) if (!PARAMS.includes(name)) problems.push({ path: name, message: `unknown filter; use ${PARAMS.join(', ')}` });
  const filter: AuditFilter = { limit: DEFAULT_LIMIT };
  const check = (name: 'reference' | 'subject' | 'source' | 'partner' | 'dossier' | 'packet', ok: (v: string) => boolean, message: string) => {
    const v = get(name);
    if (v === undefined) return;
    if (ok(v)) filter[name] = v;
    else problems.push({ path: name, message });
  };
  check('reference', (v) => v.length <= 128 && PRINTABLE.test(v), 'must be 1–128 printable characters');
  check('subject', (v) => v.length <= 64 && PRINTABLE.test(v), 'must be 1–64 printable characters');
  check('source', (v) => ID.test(v), 'must be a source id');
  check('partner', (v) => ID.test(v), 'must be a partner id');
  check('dossier', (v) => DOSSIER.test(v), 'must be a dossier id (dos_ and 32 hex digits)');
  check('packet', (v) => PACKET.test(v), 'must be a packet id (pkt_…)');
  const kind = get('kind');
  if (kind !== undefined) {
    if ((AUDIT_KINDS as string[]).includes(kind)) filter.kind = kind as AuditKind;
    else problems.push({ path: 'kind', message: `must be one of ${AUDIT_KINDS.join(', ')}` });
  }
  for (const name of ['since', 'until'] as const) {
    const v = get(name);
    if (v === undefined) continue;
    const t = DATE_TIME.test(v) ? Date.parse(v) : NaN;
    if (Number.isFinite(t)) filter[name] = new Date(t);
    else problems.push({ path: name, message: 'must be an RFC 3339 date-time (2026-11-20T09:15:00Z) or a date (2026-11-20)' });
  }
  if (filter.since && filter.until && filter.since > filter.until) problems.push({ path: 'since', message: 'must not be after until' });
  const limit = get('limit');
  if (limit !== undefined) {
    const n = /^\d{1,4}$/.test(limit) ? Number(limit) : NaN;
    if (n >= 1 && n <= MAX_LIMIT) filter.limit = n;
    else problems.push({ path: 'limit', message: `must be an integer from 1 to ${MAX_LIMIT}` });
  }
  const after = get('after');
  if (after !== undefined) {
    const n = /^\d{1,15}$/.test(after) ? Number(after) : NaN;
    if (Number.isSafeInteger(n)) filter.after = n;
    else problems.push({ path: 'after', message: 'must be a sequence number (the `next` of the previous page)' });
  }
  if (problems.length) throw new GatewayError('query_invalid', `${problems.length} problem(s) with the audit filters`, problems);
  return filter;
}

/**
 * The sequence numbers recorded from `since` to `until` (inclusive), from the time index. Record times
 * never go backwards along the chain, so the range is contiguous. `lo > hi` when it is empty.
 */
export async function seqRange(store: AuditChainStore, headSeq: number, since?: Date, until?: Date): Promise<{ lo: number; hi: number }> {
  let lo = 1;
  let hi = headSeq;
  if (since) {
    const first = await store.firstSeqFrom(since.getTime());
    lo = first === undefined ? hi + 1 : Math.max(lo, first);
  }
  if (until) {
    const last = await store.lastSeqUntil(until.getTime());
    hi = last === undefined ? 0 : Math.min(hi, last);
  }
  return { lo, hi };
}

export class AuditQuery {
  private readonly indexer: AuditIndexer;

  private readonly store: AuditChainStore;

  constructor(
    private readonly log: AuditLog,
    indexKey: Buffer,
    /** The sources to try when a reference or subject is given without `source`. */
    private readonly sources: () => string[],
  ) {
    this.indexer = new AuditIndexer(indexKey);
    this.store = log.store;
  }

  /** The filter as it may be logged: ids as given, reference and subject as their HMAC terms only. */
  describe(f: AuditFilter): Record<string, unknown> {
    const sources = f.source ? [f.source] : this.sources();
    return {
      ...(f.reference !== undefined ? { referenceTerms: sources.map((s) => this.indexer.reference(s, f.reference!)) } : {}),
      ...(f.subject !== undefined ? { subjectTerms: sources.map((s) => this.indexer.subject(s, f.subject!)) } : {}),
      ...(f.source ? { source: f.source } : {}),
      ...(f.partner ? { partner: f.partner } : {}),
      ...(f.dossier ? { dossier: f.dossier } : {}),
      ...(f.packet ? { packet: f.packet } : {}),
      ...(f.kind ? { kind: f.kind } : {}),
      ...(f.since ? { since: f.since.toISOString() } : {}),
      ...(f.until ? { until: f.until.toISOString() } : {}),
    };
  }

  async find(f: AuditFilter): Promise<AuditPage> {
    const head = await this.log.head();
    const { lo, hi } = await seqRange(this.store, head.seq, f.since, f.until);
    const start = Math.max(lo, (f.after ?? 0) + 1);
    if (start > hi) return { records: [], next: null, damaged: [] };

    const dims = this.dimensions(f);
    if (dims.some((d) => d.length === 0)) return { records: [], next: null, damaged: [] };
    let seqs: number[];
    let next: number | null;
    if (dims.length === 0) {
      const end = Math.min(hi, start + f.limit - 1);
      seqs = Array.from({ length: end - start + 1 }, (_, i) => start + i);
      next = end < hi ? end : null;
    } else {
      ({ seqs, next } = await this.search(dims, start, hi, f.limit));
    }
    return { ...(await this.fetch(seqs)), next };
  }

  /** Terms per filter dimension: a record must carry at least one term of every dimension. */
  private dimensions(f: AuditFilter): AuditTerm[][] {
    const dims: AuditTerm[][] = [];
    const term = (d: TermDimension, v: string): AuditTerm => [d, v];
    const one = (d: TermDimension, v: string | undefined) => v !== undefined && dims.push([term(d, v)]);
    one('dossier', f.dossier);
    one('packet', f.packet);
    one('partner', f.partner);
    one('kind', f.kind);
    const sources = f.source ? [f.source] : this.sources();
    if (f.reference !== undefined) dims.push(sources.map((s) => term('ref', this.indexer.reference(s, f.reference!))));
    if (f.subject !== undefined) dims.push(sources.map((s) => term('subject', this.indexer.subject(s, f.subject!))));
    return dims;
  }

  private async search(dims: AuditTerm[][], start: number, hi: number, limit: number): Promise<{ seqs: number[]; next: number | null }> {
    // Drive with the smallest dimension in range, then check membership in the others.
    const sizes = await Promise.all(dims.map(async (d) => (await Promise.all(d.map((t) => this.store.termCount(t, start, hi)))).reduce((a, b) => a + b, 0)));
    const order = dims.map((d, i) => ({ d, size: sizes[i]! })).sort((a, b) => a.size - b.size);
    if (order[0]!.size === 0) return { seqs: [], next: null };
    const [driver, ...others] = order.map((o) => o.d);
    const found: number[] = [];
    let cursor = start;
    let scanned = 0;
    while (cursor <= hi) {
      const lists = await Promise.all(driver!.map((t) => this.store.termSeqs(t, cursor, hi, BATCH)));
      // Only seqs up to the smallest last seq of a full batch are known complete.
      let bound = hi;
      for (const l of lists) if (l.length === BATCH) bound = Math.min(bound, l[l.length - 1]!);
      let candidates = [...new Set(lists.flat())].filter((s) => s <= bound).sort((a, b) => a - b);
      scanned += candidates.length;
      for (const dim of others) {
        if (!candidates.length) break;
        const has = await Promise.all(dim.map((t) => this.store.termHas(t, candidates)));
        candidates = candidates.filter((_, i) => has.some((h) => h[i]));
      }
      for (const s of candidates) {
        found.push(s);
        if (found.length === limit) return { seqs: found, next: s < hi ? s : null };
      }
      if (bound >= hi) return { seqs: found, next: null };
      cursor = bound + 1;
      if (scanned >= MAX_SCAN) return { seqs: found, next: bound };
    }
    return { seqs: found, next: null };
  }

  private async fetch(seqs: number[]): Promise<{ records: AuditRecord[]; damaged: number[] }> {
    if (!seqs.length) return { records: [], damaged: [] };
    const rows = await this.store.bySeq(seqs);
    const records: AuditRecord[] = [];
    const damaged: number[] = [];
    rows.forEach((raw, i) => {
      const seq = seqs[i]!;
      let r: AuditRecord | undefined;
      try {
        r = raw !== null ? (JSON.parse(raw) as AuditRecord) : undefined;
      } catch {
        r = undefined;
      }
      if (!r) {
        damaged.push(seq);
        return;
      }
      const { hash, ...body } = r;
      if (r.seq !== seq || recordHash(body) !== hash) damaged.push(seq);
      records.push(r);
    });
    return { records, damaged };
  }
}
