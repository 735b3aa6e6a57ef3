/**
 * Where the audit trail lives in Redis. The chain itself is one list (`audit:log`, record n at index
 * n-1) and its head (`audit:head`, `seq:hash:atMs:lastCheckpointSeq`). Beside it, search indexes: one
 * sorted set per term (score and member are the record's sequence number) and one time index (score:
 * the record's time in ms). The indexes only speed up `GET /v1/audit`; they prove nothing and can be
 * rebuilt from the chain. Records are stored as the JSON the chain hashes: this module never parses them.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { GatewayError } from '../errors/index.js';
import type { Keys } from './redis.js';
import { confirmWrites, replicationOf } from './replication.js';
import { evalScript, loadScript } from './scripts.js';

const APPEND = loadScript('audit-append');

/** A search term: what a record is findable by (`dimension:value`, ids or keyed HMACs, never content). */
export type AuditTerm = readonly [dimension: string, value: string];

/** One record of a batch to append: its JSON, its sequence number, its time (ms) and its search terms. */
export interface AuditRow {
  json: string;
  seq: number;
  atMs: number;
  terms: readonly AuditTerm[];
}

/** `ok`: written; `moved`: the head is not the expected one (retry); `mismatch`: the list does not match the head. */
export type AppendOutcome = 'ok' | 'moved' | 'mismatch';

export interface AuditChainStore {
  /** The key prefix: anchors outside Redis are per prefix. */
  readonly prefix: string;
  /** The head as stored (null when there is none yet). */
  head(): Promise<string | null>;
  /**
   * Appends a batch at once if the head is still `expectedHead` ('' for none) and the list is
   * `expectedLength` long, setting the head to `newHead`; nothing is written otherwise.
   */
  append(expectedHead: string, expectedLength: number, newHead: string, rows: readonly AuditRow[]): Promise<AppendOutcome>;
  length(): Promise<number>;
  /** The stored record at list position `index` (0-based), as stored. */
  at(index: number): Promise<string | null>;
  /** Records by list position (inclusive; -1 is the last), as stored. */
  range(start: number, end: number): Promise<string[]>;
  /** The records with these sequence numbers (position seq-1), as stored; null where there is none. */
  bySeq(seqs: readonly number[]): Promise<Array<string | null>>;
  /** The first sequence number recorded at or after `ms`, from the time index. */
  firstSeqFrom(ms: number): Promise<number | undefined>;
  /** The last sequence number recorded at or before `ms`. */
  lastSeqUntil(ms: number): Promise<number | undefined>;
  /** How many records with lo ≤ seq ≤ hi carry the term. */
  termCount(term: AuditTerm, lo: number, hi: number): Promise<number>;
  /** The sequence numbers from lo to hi carrying the term, ascending, at most `limit`. */
  termSeqs(term: AuditTerm, lo: number, hi: number, limit: number): Promise<number[]>;
  /** For each of `seqs`, whether its record carries the term. */
  termHas(term: AuditTerm, seqs: readonly number[]): Promise<boolean[]>;
}

export class RedisAuditChain implements AuditChainStore {
  readonly prefix: string;

  constructor(private readonly redis: Redis, private readonly keys: Keys) {
    this.prefix = keys.prefix;
  }

  head(): Promise<string | null> {
    return this.redis.get(this.keys.auditHead());
  }

  /**
   * The last record this process wrote and had confirmed by a replica (never set on a standalone Redis): every
   * append first checks that the log still holds it, so a fail-over to a replica that lacks it is
   * noticed before anything is chained onto the shorter log (no silent gap: see the script).
   */
  private confirmed?: { seq: number; sha1: string };

  async append(expectedHead: string, expectedLength: number, newHead: string, rows: readonly AuditRow[]): Promise<AppendOutcome> {
    const keys: string[] = [this.keys.auditHead(), this.keys.auditLog(), this.keys.auditTime(), this.keys.auditCut()];
    const args: string[] = [];
    // A batch's records share most terms (its dossier, kind, subjects): one ZADD per term key, not per record.
    const byTerm = new Map<string, string[]>();
    for (const row of rows) {
      args.push(row.json, String(row.seq), String(row.atMs));
      for (const [d, v] of row.terms) {
        const key = this.keys.auditTerm(d, v);
        const seqs = byTerm.get(key);
        if (seqs) seqs.push(String(row.seq));
        else byTerm.set(key, [String(row.seq)]);
      }
    }
    for (const [key, seqs] of byTerm) {
      keys.push(key);
      args.push(String(seqs.length), ...seqs);
    }
    const { seq, sha1 } = this.confirmed ?? { seq: 0, sha1: '' };
    const res = await evalScript(this.redis, APPEND, keys.length, ...keys, expectedHead, String(expectedLength), newHead, String(rows.length), String(seq), sha1, new Date().toISOString(), ...args);
    if (Array.isArray(res)) {
      const why = `The audit trail was cut by a Redis fail-over: ${String(res[1])}. Every append is refused (the gateway is not ready) until an operator has run \`cordon audit verify\` and cleared ${this.keys.auditCut()}`;
      replicationOf(this.redis)?.reportCut(why);
      throw new GatewayError('audit_unavailable', why);
    }
    if (res !== 1) return res === -1 ? 'mismatch' : 'moved';
    // A group commit counts once a replica holds it: a fail-over cannot take back what was answered.
    const replicas = await confirmWrites(this.redis);
    const last = rows[rows.length - 1];
    if (last && replicas > 0) this.confirmed = { seq: last.seq, sha1: createHash('sha1').update(last.json).digest('hex') };
    return 'ok';
  }

  length(): Promise<number> {
    return this.redis.llen(this.keys.auditLog());
  }

  at(index: number): Promise<string | null> {
    return this.redis.lindex(this.keys.auditLog(), index);
  }

  range(start: number, end: number): Promise<string[]> {
    return this.redis.lrange(this.keys.auditLog(), start, end);
  }

  async bySeq(seqs: readonly number[]): Promise<Array<string | null>> {
    if (!seqs.length) return [];
    const pipeline = this.redis.pipeline();
    for (const s of seqs) pipeline.lindex(this.keys.auditLog(), s - 1);
    const rows = (await pipeline.exec()) ?? [];
    return rows.map(([err, raw]) => (!err && typeof raw === 'string' ? raw : null));
  }

  async firstSeqFrom(ms: number): Promise<number | undefined> {
    const [first] = await this.redis.zrangebyscore(this.keys.auditTime(), ms, '+inf', 'LIMIT', 0, 1);
    return first === undefined ? undefined : Number(first);
  }

  async lastSeqUntil(ms: number): Promise<number | undefined> {
    const [last] = await this.redis.zrevrangebyscore(this.keys.auditTime(), ms, '-inf', 'LIMIT', 0, 1);
    return last === undefined ? undefined : Number(last);
  }

  termCount([d, v]: AuditTerm, lo: number, hi: number): Promise<number> {
    return this.redis.zcount(this.keys.auditTerm(d, v), lo, hi);
  }

  async termSeqs([d, v]: AuditTerm, lo: number, hi: number, limit: number): Promise<number[]> {
    return (await this.redis.zrangebyscore(this.keys.auditTerm(d, v), lo, hi, 'LIMIT', 0, limit)).map(Number);
  }

  async termHas([d, v]: AuditTerm, seqs: readonly number[]): Promise<boolean[]> {
    if (!seqs.length) return [];
    const scores = await this.redis.zmscore(this.keys.auditTerm(d, v), ...seqs.map(String));
    return scores.map((s) => s !== null);
  }
}
