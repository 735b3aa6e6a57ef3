/**
 * The s.62 audit trail: an append-only list in Redis where every record carries the SHA-256 of the
 * previous one. Appends are compare-and-set on the chain head (a Lua script), so several api and worker
 * processes can write at once without forking the chain; the same script writes the search indexes.
 * Records hold ids, paths, codes and keyed HMACs, never values. Each group commit is signed with the
 * gateway's Ed25519 audit key (the signature on its last record and in the head), so a Redis writer who
 * recomputes hashes cannot produce a head the gateway accepts; signed checkpoints (checkpoint.ts) vouch
 * for the chain with the OpenPGP key and publish the audit key. When a record cannot be written the
 * caller gets `audit_unavailable` and must not perform the action. When the trail is not the one this
 * process wrote (its head unsigned or signed by another key, cut back, vanished, or the list not
 * matching its head) every append is refused and /readyz says not ready until an operator has looked
 * (`cordon audit verify`).
 */
import { auditWrites } from '../metrics/metrics.js';
import { createHash } from 'node:crypto';
import { GatewayError } from '../errors/index.js';
import type { AuditChainStore, AuditRow } from '../store/audit.js';
import { canonicalJson } from './canonical.js';
import type { AuditSigningKey } from '../crypto/audit-key.js';
import { checkAnchor } from './anchor-check.js';
import { TrailGuard } from './trail-guard.js';
import { batchStatement, DEFAULT_CHECKPOINT_EVERY, statementText, writeAnchor, type CheckpointSigner, type CheckpointStatement } from './checkpoint.js';
import type { AuditEvent, AuditKind, CommonFields } from './events.js';
import { AuditIndexer, type IndexTerms } from './index-terms.js';
import { termsOf } from './keys.js';

export { canonical } from './canonical.js';
export type { AuditAction, AuditEvent, AuditKind, Justification } from './events.js';

/** A record as read back from the trail: whatever was stored (checked by its hash), so loosely typed. */
export interface AuditRecord extends CommonFields {
  kind: AuditKind;
  action: string;
  seq: number;
  at: string;
  prev: string;
  hash: string;
  /** On the last record of each group commit: the audit key's signature of `batchStatement(seq, hash)`. */
  sig?: string;
  [key: string]: unknown;
}

export const GENESIS = '0'.repeat(64);

/**
 * The head: `seq:hash:atMs:lastCheckpointSeq:sig` (older heads lack the signature, the oldest have the
 * first two parts only). `sig` is the audit key's signature of the last record (as on that record).
 */
export interface ChainHead {
  seq: number;
  hash: string;
  atMs: number;
  checkpointSeq: number;
  sig?: string;
}

export function parseHead(raw: string | null): ChainHead {
  if (!raw) return { seq: 0, hash: GENESIS, atMs: 0, checkpointSeq: 0 };
  const [seq, hash, atMs, checkpointSeq, sig] = raw.split(':');
  const head: ChainHead = { seq: Number(seq), hash: hash ?? '', atMs: Number(atMs ?? 0), checkpointSeq: Number(checkpointSeq ?? 0), ...(sig ? { sig } : {}) };
  if (!Number.isInteger(head.seq) || head.seq < 0 || !/^[0-9a-f]{64}$/.test(head.hash) || !Number.isFinite(head.atMs) || !Number.isInteger(head.checkpointSeq) || (sig !== undefined && !/^[A-Za-z0-9_-]+$/.test(sig))) {
    throw new GatewayError('audit_unavailable', 'The audit chain head is malformed: run `cordon audit verify`');
  }
  return head;
}

function formatHead(h: ChainHead): string {
  return `${h.seq}:${h.hash}:${h.atMs}:${h.checkpointSeq}${h.sig ? `:${h.sig}` : ''}`;
}

/** How long after a write the anchor in the state directory catches up with it (the window a cut across a restart can hide in). */
export const ANCHOR_EVERY_MS = 1000;

/** At most this many records go in one group commit (bounds the script's run time and argument size). */
const MAX_BATCH = 64;

export type CheckpointReason = 'start-up' | 'interval' | 'timer' | 'on demand' | 'shutdown' | 'format-change';

/** The SHA-256 of a record without its `hash` and `sig` (the signature is made over the hash). */
export function recordHash(record: Record<string, unknown>): string {
  const { hash: _hash, sig: _sig, ...body } = record;
  return createHash('sha256').update(canonicalJson(body)!).digest('hex');
}

/**
 * A record as stored: its canonical body (what `recordHash` hashes, since canonical JSON parses back to
 * itself) with `hash` and `sig` added last. Both are hex or base64url, so need no escaping.
 */
function storedJson(body: string, hash: string, sig?: string): string {
  return `${body.slice(0, -1)},"hash":"${hash}"${sig ? `,"sig":"${sig}"` : ''}}`;
}

export interface AuditLogOptions {
  /** The clock (tests inject one). Record times never go backwards along the chain. */
  now?: () => Date;
  /** The keyring's `auditIndex`: enables `terms()`. */
  indexKey?: Buffer;
  /** The gateway key, for signed checkpoints. Without it no checkpoint is written. */
  signer?: CheckpointSigner;
  /** The audit key: signs each group commit and checks every head this process did not write itself. */
  auditKey?: AuditSigningKey;
  /** A checkpoint after this many records (default 100). */
  checkpointEvery?: number;
  /** Where to anchor the latest record this process wrote, outside Redis (the gateway's state directory). */
  stateDir?: string;
  /** Told about checkpoint or anchor failures (they never fail the action that triggered them). */
  onBackgroundError?: (err: Error) => void;
}

export class AuditLog {
  readonly checkpointEvery: number;
  private readonly now: () => Date;
  private readonly indexer?: AuditIndexer;
  /** Last checkpoint sequence number seen in the head by this process's latest append. */
  private lastCheckpointSeen = 0;
  private pendingInterval?: Promise<AuditRecord | undefined>;
  /** Checks every head this process did not write, and the tail before a checkpoint signs it. */
  private readonly guard: TrailGuard;

  constructor(readonly store: AuditChainStore, private readonly options: AuditLogOptions = {}) {
    this.now = options.now ?? (() => new Date());
    this.indexer = options.indexKey ? new AuditIndexer(options.indexKey) : undefined;
    this.checkpointEvery = Math.max(1, options.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY);
    this.guard = new TrailGuard(store, options.auditKey);
  }

  /**
   * Search terms for a record about a dossier (keyed HMACs; the inputs are never stored). A log built
   * without an index key (tools, some tests) gives none: the record is written, just not findable by
   * reference or subject. The gateway always builds its log with the key.
   */
  terms(source: string, reference?: string, subjectIds: string[] = []): IndexTerms | undefined {
    return this.indexer?.terms(source, reference, subjectIds);
  }

  /** `terms()` for many records about one dossier, each HMAC computed once. */
  dossierTerms(source: string, reference?: string): (subjectIds: string[]) => IndexTerms | undefined {
    const terms = this.indexer?.forDossier(source, reference);
    return (subjectIds) => terms?.(subjectIds);
  }

  /**
   * Appends one record. Appends made while this process's previous write is in flight are queued and
   * written together in one round trip (group commit); each caller still gets its own record, and a
   * batch that cannot be written fails every append in it.
   */
  async append(event: AuditEvent): Promise<AuditRecord> {
    if (event.kind === 'checkpoint') throw new GatewayError('internal', 'checkpoints are written by checkpoint()');
    let record: AuditRecord;
    try {
      record = await new Promise<AuditRecord>((resolve, reject) => {
        this.queued.push({ event, resolve, reject });
        if (!this.drainScheduled) {
          this.drainScheduled = true;
          this.writing = this.writing.then(() => this.drain());
        }
      });
      auditWrites.inc({ outcome: 'written' });
    } catch (err) {
      auditWrites.inc({ outcome: 'failed' });
      throw err;
    }
    if (this.options.signer && record.seq - this.lastCheckpointSeen >= this.checkpointEvery) {
      await this.checkpoint('interval').catch((err: Error) => this.options.onBackgroundError?.(err));
    }
    return record;
  }

  /** Appends several records at once (one disclosure per partner of a fan-out): one round trip. */
  appendAll(events: AuditEvent[]): Promise<AuditRecord[]> {
    return Promise.all(events.map((e) => this.append(e)));
  }

  private queued: Array<{ event: AuditEvent; resolve: (r: AuditRecord) => void; reject: (e: unknown) => void }> = [];
  private drainScheduled = false;

  /** Runs on the write chain: takes what is queued now and writes it as one batch. */
  private async drain(): Promise<void> {
    const batch = this.queued.splice(0, MAX_BATCH);
    if (this.queued.length) this.writing = this.writing.then(() => this.drain());
    else this.drainScheduled = false;
    if (!batch.length) return;
    try {
      const records = await this.writeNow(async () => batch.map((b) => b.event));
      batch.forEach((b, i) => b.resolve(records[i]!));
    } catch (err) {
      for (const b of batch) b.reject(err);
    }
  }

  /**
   * Appends a checkpoint signed by the gateway key over the head as it is now. The signature is made
   * once, outside the compare-and-set loop, so a busy log cannot starve checkpoints; the record lands
   * a few records after what it covers, and the verifier checks the covered record's hash. With reason
   * `interval` or `timer` it does nothing when another writer has just checkpointed.
   */
  async checkpoint(reason: CheckpointReason): Promise<AuditRecord | undefined> {
    const signer = this.options.signer;
    if (!signer) throw new GatewayError('config_invalid', 'audit checkpoints need the gateway key');
    if (reason === 'interval' && this.pendingInterval) return this.pendingInterval;
    const run = async (): Promise<AuditRecord | undefined> => {
      let head: ChainHead;
      let signature: string;
      let checkpoint: CheckpointStatement;
      try {
        head = this.guard.accept(await this.store.head());
        if (reason === 'interval' && head.seq - head.checkpointSeq < this.checkpointEvery) return undefined;
        if (reason === 'timer' && head.seq === head.checkpointSeq) return undefined;
        // Never sign what another writer put there: the tail from our own last head must check out.
        await this.guard.checkTail(head);
        const signedAt = new Date(Math.max(this.now().getTime(), head.atMs)).toISOString();
        const auditKey = this.options.auditKey?.spki;
        checkpoint = { seq: head.seq, hash: head.hash, signedAt, signer: signer.fingerprint, every: this.checkpointEvery, ...(auditKey ? { auditKey } : {}) };
        signature = await signer.sign(statementText(checkpoint));
      } catch (err) {
        if (err instanceof GatewayError && err.code === 'audit_unavailable') throw err;
        throw new GatewayError('audit_unavailable', 'The audit checkpoint could not be made', undefined, { cause: err });
      }
      const routine = reason === 'interval' || reason === 'timer';
      const [record] = await this.write(async (now) => {
        if (routine && now.checkpointSeq > checkpoint.seq) return []; // another writer was quicker
        return [{ kind: 'checkpoint', action: 'audit.checkpoint', reason, checkpoint, signature }];
      });
      if (record) await this.flushAnchor().catch((err: Error) => this.options.onBackgroundError?.(err));
      return record;
    };
    if (reason !== 'interval') return run();
    this.pendingInterval = run().finally(() => (this.pendingInterval = undefined));
    return this.pendingInterval;
  }

  /** Checkpoints every `ms` when the log has grown since the last one. Returns the stop function. */
  startCheckpointTimer(ms: number): () => void {
    const timer = setInterval(() => {
      this.checkpoint('timer').catch((err: Error) => this.options.onBackgroundError?.(err));
    }, ms);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** This process's writes run one at a time: concurrent ones would only collide on the head and retry. */
  private writing: Promise<unknown> = Promise.resolve();
  /** The head as this process last wrote it: the next write tries it first instead of reading it. */
  private knownHead?: string;

  private write(build: (head: ChainHead) => Promise<AuditEvent[]>): Promise<AuditRecord[]> {
    const run = this.writing.then(() => this.writeNow(build));
    this.writing = run.catch(() => undefined);
    return run;
  }

  /** Chains the events `build` gives for the current head and writes them in one script call. */
  private async writeNow(build: (head: ChainHead) => Promise<AuditEvent[]>): Promise<AuditRecord[]> {
    try {
      for (let attempt = 0; attempt < 200; attempt++) {
        // Another process may have appended since: then the script refuses (0) and the retry reads the head.
        const known = attempt === 0 ? this.knownHead : undefined;
        this.knownHead = undefined;
        const raw = known ?? (await this.store.head());
        const head = known ? this.guard.own(known) : this.guard.accept(raw);
        const atMs = Math.max(this.now().getTime(), head.atMs);
        const at = new Date(atMs).toISOString();
        const events = await build(head);
        if (!events.length) return [];
        const records: AuditRecord[] = [];
        const bodies: string[] = [];
        let next = head;
        for (const event of events) {
          // One serialisation: the canonical JSON is hashed and, with the hash appended, stored as it is.
          const { hash: _hash, sig: _sig, ...fields } = event as AuditEvent & { hash?: unknown; sig?: unknown };
          const record = { ...fields, seq: next.seq + 1, at, prev: next.hash } as AuditRecord;
          const body = canonicalJson(record)!;
          record.hash = createHash('sha256').update(body).digest('hex');
          next = { seq: record.seq, hash: record.hash, atMs, checkpointSeq: event.kind === 'checkpoint' ? record.seq : next.checkpointSeq };
          records.push(record);
          bodies.push(body);
        }
        // One signature per batch, on its last record (the chain fixes the others), also in the head.
        const key = this.options.auditKey;
        if (key) next.sig = records[records.length - 1]!.sig = key.sign(batchStatement(next.seq, next.hash));
        const rows: AuditRow[] = records.map((r, i) => ({ json: storedJson(bodies[i]!, r.hash, r.sig), seq: r.seq, atMs, terms: termsOf(r) }));
        const outcome = await this.store.append(raw ?? '', head.seq, formatHead(next), rows);
        if (outcome === 'ok') {
          this.knownHead = formatHead(next);
          this.lastCheckpointSeen = next.checkpointSeq;
          this.guard.wrote(next);
          this.scheduleAnchor({ seq: next.seq, hash: next.hash, at });
          return records;
        }
        if (outcome === 'mismatch') {
          throw new GatewayError('audit_unavailable', 'The audit log does not match its chain head (truncated or altered): new work is refused until `cordon audit verify` has been run');
        }
        if (attempt >= 5) await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, attempt * 2)));
      }
      throw new Error('audit chain head kept moving');
    } catch (err) {
      if (err instanceof GatewayError && err.code === 'audit_unavailable') throw err;
      throw new GatewayError('audit_unavailable', 'The audit trail cannot be written, so the action was not performed', undefined, { cause: err });
    }
  }

  private first?: string;

  private async firstHash(): Promise<string | undefined> {
    if (this.first) return this.first;
    const raw = await this.store.at(0);
    this.first = raw ? (JSON.parse(raw) as AuditRecord).hash : undefined;
    return this.first;
  }

  private anchorNext?: { seq: number; hash: string; at: string };
  private anchorTimer?: NodeJS.Timeout;

  /** The anchor follows the writes, at most ANCHOR_EVERY_MS behind: one file write a second, not one a batch. */
  private scheduleAnchor(next: { seq: number; hash: string; at: string }): void {
    if (!this.options.stateDir) return;
    this.anchorNext = next;
    if (this.anchorTimer) return;
    this.anchorTimer = setTimeout(() => {
      this.anchorTimer = undefined;
      this.flushAnchor().catch((err: Error) => this.options.onBackgroundError?.(err));
    }, ANCHOR_EVERY_MS);
    this.anchorTimer.unref();
  }

  /** On shutdown: no more timed anchor writes; the last write's anchor is written now. */
  async stopAnchoring(): Promise<void> {
    clearTimeout(this.anchorTimer);
    this.anchorTimer = undefined;
    await this.flushAnchor().catch((err: Error) => this.options.onBackgroundError?.(err));
  }

  /** Writes the anchor now (checkpoints, shutdown). */
  async flushAnchor(): Promise<void> {
    const next = this.anchorNext;
    const stateDir = this.options.stateDir;
    if (!next || !stateDir) return;
    this.anchorNext = undefined;
    const first = await this.firstHash();
    await writeAnchor(stateDir, { prefix: this.store.prefix, first, ...next, ...(this.options.auditKey ? { format: 2 as const } : {}) });
  }

  /** Start-up (anchor-check.ts): the trail must reach at least the anchored record, signed if the anchor says so. */
  expectTrail(anchored: { seq: number; hash: string }, signed: boolean): void {
    this.guard.expect(anchored, signed);
  }

  /** At start-up, after checkAnchor: the tail written since the anchored record must chain from it. */
  async checkTail(): Promise<void> {
    await this.guard.checkTail(this.guard.accept(await this.store.head()));
  }

  async checkAnchor(acceptNewTrail?: number): Promise<string | undefined> {
    return checkAnchor(this, this.options.stateDir, acceptNewTrail);
  }

  async head(): Promise<ChainHead> {
    return parseHead(await this.store.head());
  }

  /**
   * For /readyz: appends succeed only while the trail is the one this process wrote (head signed by
   * its key, not cut back or vanished) and the list is exactly as long as its head says.
   */
  async health(): Promise<{ ready: boolean; detail: string }> {
    try {
      const [raw, length] = await Promise.all([this.store.head(), this.store.length()]);
      const head = parseHead(raw);
      const problem = this.guard.problem(head, raw === this.knownHead);
      if (problem) return { ready: false, detail: problem };
      if (length !== head.seq) {
        return { ready: false, detail: `the audit log holds ${length} records but its head says ${head.seq}: every append is refused (run cordon audit verify)` };
      }
      return { ready: true, detail: `seq ${head.seq}` };
    } catch (err) {
      return { ready: false, detail: `unreadable: ${(err as Error).message}` };
    }
  }

  /** Records by list position (0-based, inclusive; -1 is the last). */
  async read(start = 0, end = -1): Promise<AuditRecord[]> {
    const rows = await this.store.range(start, end);
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
