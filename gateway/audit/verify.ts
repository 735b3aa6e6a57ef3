/**
 * The offline verifier behind `cordon audit verify`: recomputes every record's hash and link, checks
 * sequence numbers and times, verifies each checkpoint's signature with the gateway's public key, and
 * compares the end of the log with the chain head (live) and the state directory's anchor. It names the
 * first bad record. Records are pushed one at a time, so a log of any length verifies in little memory.
 *
 * What each check catches: an edited record no longer matches its hash; a deleted record leaves a gap
 * in the sequence; reordered records break the sequence and the links; a record slipped in breaks the
 * link after it; a truncated log ends before the head or the anchor; a rewritten log (hashes recomputed)
 * fails the signatures of the checkpoints it contains, and one without its checkpoints has an unsigned
 * stretch longer than the gateway ever leaves.
 *
 * Since group commits are signed (each batch's last record carries `sig`, the Ed25519 audit key's
 * signature of its seq and hash), every record from the first signed one on must be vouched for by a
 * batch signature: a tail rewritten through Redis (a record deleted, the hashes after it and the head
 * recomputed) fails at the first record no valid signature covers. The audit key comes from
 * `--state DIR` or from the checkpoints, whose OpenPGP-signed statement names it.
 */
import { parseAuditVerifyKey, type AuditVerifyKey } from '../crypto/audit-key.js';
import { DEFAULT_CHECKPOINT_EVERY, batchStatement, checkCheckpointSignature, type Anchor, type CheckpointStatement } from './checkpoint.js';
import { GENESIS, recordHash, type AuditRecord, type ChainHead } from './log.js';

/** How many recent hashes are kept to check a checkpoint's covered record (checkpoints lag a little). */
const RECENT = 50_000;

export interface VerifyOptions {
  /** The gateway's public key (or its private key file), armored: checks checkpoint signatures. */
  gatewayKey?: string;
  /** The live chain head: the log must end exactly there. */
  head?: ChainHead;
  /** The state directory's anchor of the latest checkpoint. */
  anchor?: Anchor;
  /** A log that ends before the anchor fails (live); an export may end early on purpose (--until). */
  anchorIsEnd?: boolean;
  /** Longest run of records not followed by a checkpoint; default twice the interval the checkpoints state. */
  maxUnsigned?: number;
  /** The gateway's audit key (SPKI base64 or PEM), e.g. from its state directory; else learnt from checkpoints. */
  auditKey?: string;
  /** Every record must be vouched for by a batch signature (the anchor says the trail is signed). */
  requireSigned?: boolean;
}

export interface VerifyFailure {
  /** Sequence number of the bad record, when it has one. */
  seq?: number;
  /** 1-based line of the export, or position in the live list. */
  line: number;
  problem: string;
}

export interface VerifyReport {
  ok: boolean;
  records: number;
  firstSeq?: number;
  lastSeq?: number;
  lastHash?: string;
  checkpoints: number;
  lastCheckpointSeq?: number;
  signer?: string;
  failure?: VerifyFailure;
  warnings: string[];
}

function stripHash(r: AuditRecord): Omit<AuditRecord, 'hash'> {
  const { hash: _hash, ...body } = r;
  return body;
}

export class ChainVerifier {
  private report: VerifyReport = { ok: true, records: 0, checkpoints: 0, warnings: [] };
  private prevHash?: string;
  private prevSeq?: number;
  private prevAt = 0;
  /** Highest sequence number a verified checkpoint vouches for. */
  private coveredUpTo?: number;
  /** Recent seq → hash, to check what a checkpoint (landing a few records later) covers. */
  private readonly recent = new Map<number, string>();
  private every = DEFAULT_CHECKPOINT_EVERY;
  private lastLine = 0;
  /** Audit keys: given, or named by a checkpoint whose OpenPGP signature verified. */
  private readonly auditKeys = new Map<string, AuditVerifyKey>();
  /** From the first signed record (or a checkpoint naming the audit key) on, every record needs a batch signature. */
  private strict: boolean;
  /** The first record (seq, line) no batch signature vouches for yet. */
  private unvouched?: { seq: number; line: number };
  /** Batch signatures seen before any audit key was known, checked when one is. */
  private pending: Array<{ seq: number; hash: string; sig: string; from: { seq: number; line: number } }> = [];

  constructor(private readonly options: VerifyOptions = {}) {
    if (options.auditKey) {
      const key = parseAuditVerifyKey(options.auditKey);
      this.auditKeys.set(key.spki, key);
    }
    this.strict = options.requireSigned ?? false;
  }

  get failed(): boolean {
    return !this.report.ok;
  }

  private fail(line: number, problem: string, seq?: number): void {
    if (!this.report.ok) return;
    this.report.ok = false;
    this.report.failure = { line, problem, ...(seq !== undefined ? { seq } : {}) };
  }

  /**
   * A checkpoint covers the head it signed; records appended by other processes while it was being
   * signed and written land after it uncovered, so under load a run can exceed the interval well. The
   * bound is generous on purpose: removing checkpoints is also caught by the broken hash chain, the
   * signatures of later checkpoints and the anchor outside Redis; this only catches a wholesale
   * rewrite of a long tail with its checkpoints stripped.
   */
  private get maxUnsigned(): number {
    return this.options.maxUnsigned ?? 4 * this.every + 50;
  }

  /** One record as stored (a JSON text) or already parsed, at export line / list position `line`. */
  async push(input: string | unknown, line: number): Promise<void> {
    if (!this.report.ok) return;
    this.lastLine = line;
    let r: AuditRecord;
    try {
      r = (typeof input === 'string' ? JSON.parse(input) : input) as AuditRecord;
    } catch {
      return this.fail(line, 'is not valid JSON');
    }
    if (!r || typeof r !== 'object' || typeof r.seq !== 'number' || typeof r.hash !== 'string' || typeof r.prev !== 'string' || typeof r.at !== 'string') {
      return this.fail(line, 'is not an audit record (seq, at, prev and hash are required)', typeof r?.seq === 'number' ? r.seq : undefined);
    }
    const at = Date.parse(r.at);
    if (this.prevSeq === undefined) {
      this.report.firstSeq = r.seq;
      if (r.seq === 1) {
        if (r.prev !== GENESIS) return this.fail(line, 'is the first record but does not start from the genesis value', r.seq);
        const first = this.options.anchor?.first;
        if (first !== undefined && recordHash(stripHash(r)) === r.hash && r.hash !== first) {
          return this.fail(line, 'is not the first record of the log the state directory anchored: this log was replaced or rebuilt', r.seq);
        }
      } else {
        this.report.warnings.push(`starts at seq ${r.seq}: records before it are not part of this check`);
      }
    } else {
      if (r.seq !== this.prevSeq + 1) {
        const why = r.seq > this.prevSeq + 1 ? `records ${this.prevSeq + 1}–${r.seq - 1} are missing (deleted)` : 'out of order (reordered or duplicated)';
        return this.fail(line, `expected seq ${this.prevSeq + 1} but found seq ${r.seq}: ${why}`, r.seq);
      }
      if (r.prev !== this.prevHash) return this.fail(line, 'does not link to the record before it (prev hash differs: inserted, reordered or the previous record edited)', r.seq);
    }
    const { hash, ...body } = r;
    if (recordHash(body) !== hash) return this.fail(line, 'content does not match its hash (edited)', r.seq);
    if (!Number.isFinite(at)) return this.fail(line, 'has no valid time', r.seq);
    if (at < this.prevAt) return this.fail(line, 'is timed before the record it follows', r.seq);

    if (this.options.anchor && r.seq === this.options.anchor.seq && r.hash !== this.options.anchor.hash) {
      return this.fail(line, `differs from the checkpoint anchored in the state directory (${this.options.anchor.at})`, r.seq);
    }

    this.coveredUpTo ??= r.seq - 1;
    if (r.kind === 'checkpoint') {
      const problem = await this.checkCheckpoint(r);
      if (problem) return this.fail(line, `checkpoint ${problem}`, r.seq);
    }
    if (r.sig !== undefined) this.strict = true;
    if (this.strict) {
      this.unvouched ??= { seq: r.seq, line };
      if (r.sig !== undefined) this.checkBatch(r.seq, r.hash, r.sig, this.unvouched);
      if (this.failed) return;
    }
    if (r.seq - this.coveredUpTo > this.maxUnsigned) {
      return this.fail(line, `ends a run of ${r.seq - this.coveredUpTo} records (from seq ${this.coveredUpTo + 1}) that no checkpoint covers, more than the gateway leaves (${this.maxUnsigned}): checkpoints were removed`, r.seq);
    }
    this.recent.set(r.seq, r.hash);
    if (this.recent.size > RECENT) this.recent.delete(r.seq - RECENT);

    this.report.records++;
    this.report.lastSeq = r.seq;
    this.report.lastHash = r.hash;
    this.prevSeq = r.seq;
    this.prevHash = r.hash;
    this.prevAt = at;
  }

  private async checkCheckpoint(r: AuditRecord): Promise<string | undefined> {
    const cp = r.checkpoint as CheckpointStatement | undefined;
    if (!cp || typeof cp !== 'object' || typeof cp.seq !== 'number' || typeof cp.hash !== 'string') return 'has no statement';
    if (!Number.isInteger(cp.seq) || cp.seq < 0 || cp.seq >= r.seq) return `covers seq ${cp.seq}, not an earlier record`;
    const first = this.report.firstSeq ?? r.seq;
    if (cp.seq === 0 ? cp.hash !== GENESIS : cp.seq >= first && this.recent.get(cp.seq) !== cp.hash) {
      if (cp.seq >= first && !this.recent.has(cp.seq)) return `covers seq ${cp.seq}, too far back to check`;
      return `covers seq ${cp.seq}, whose hash differs: the log was rewritten`;
    }
    if (!this.options.gatewayKey) return 'cannot be checked without the gateway key (--state DIR or --key FILE)';
    const problem = await checkCheckpointSignature(cp, r.signature, this.options.gatewayKey);
    if (problem) return problem;
    this.report.checkpoints++;
    this.report.lastCheckpointSeq = r.seq;
    this.report.signer = cp.signer;
    if (Number.isInteger(cp.every) && cp.every > 0) this.every = cp.every;
    if (typeof cp.auditKey === 'string' && !this.auditKeys.has(cp.auditKey)) {
      // The OpenPGP signature vouches for the audit key: batch signatures seen so far can now be checked.
      try {
        this.auditKeys.set(cp.auditKey, parseAuditVerifyKey(cp.auditKey));
      } catch {
        return 'names an audit key that is not an Ed25519 public key';
      }
      for (const p of this.pending.splice(0)) this.checkBatch(p.seq, p.hash, p.sig, p.from);
      this.strict = true;
    }
    // A checkpoint right after what it covers leaves nothing uncovered before it but itself, and it
    // carries its own signature.
    this.coveredUpTo = Math.max(this.coveredUpTo ?? 0, cp.seq === r.seq - 1 ? r.seq : cp.seq);
    return undefined;
  }

  /**
   * A batch signature on record `seq` vouches for every record from `from` to it; one that does not
   * verify names `from`, the first record no signature vouches for.
   */
  private checkBatch(seq: number, hash: string, sig: string, from: { seq: number; line: number }): void {
    if (!this.auditKeys.size) {
      this.pending.push({ seq, hash, sig, from });
    } else if (![...this.auditKeys.values()].some((k) => k.verify(batchStatement(seq, hash), sig))) {
      const range = from.seq === seq ? `record ${seq} is` : `records ${from.seq}–${seq} are`;
      return this.fail(from.line, `${range} not vouched for by the gateway: the batch signature on seq ${seq} does not verify with its audit key (the trail was rewritten outside the gateway, e.g. a record deleted and the hashes after it recomputed)`, from.seq);
    }
    this.unvouched = undefined;
    this.coveredUpTo = Math.max(this.coveredUpTo ?? 0, seq);
  }

  finish(): VerifyReport {
    const { head, anchor } = this.options;
    const last = this.report.lastSeq ?? 0;
    if (this.report.ok && this.pending.length) {
      const p = this.pending[0]!;
      this.fail(p.from.line, `batch signatures from seq ${p.seq} cannot be checked: no checkpoint in this export names the audit key (give --state DIR)`, p.from.seq);
    }
    if (this.report.ok && this.unvouched) {
      this.fail(this.unvouched.line, `records ${this.unvouched.seq}–${last} carry no gateway signature: the newest records were rewritten or added outside the gateway`, this.unvouched.seq);
    }
    if (this.report.ok && head) {
      if (head.seq > last) this.fail(this.lastLine + 1, `the log ends at seq ${last} but its head names seq ${head.seq}: records ${last + 1}–${head.seq} are missing (truncated)`, last + 1);
      else if (head.seq < last) this.fail(this.lastLine, `records after the head (seq ${head.seq}) were added outside the gateway`, head.seq + 1);
      else if (last > 0 && head.hash !== this.report.lastHash) this.fail(this.lastLine, 'the last record does not match the chain head', last);
    }
    if (this.report.ok && anchor && last < anchor.seq) {
      const msg = `the log ends at seq ${last} but the state directory anchors a checkpoint at seq ${anchor.seq} (${anchor.at})`;
      if (this.options.anchorIsEnd) this.fail(this.lastLine + 1, `${msg}: truncated`, last + 1);
      else this.report.warnings.push(`${msg}: a partial export, or a truncated one`);
    }
    const uncovered = this.coveredUpTo === undefined ? 0 : last - this.coveredUpTo;
    if (this.report.ok && uncovered > 0) {
      this.report.warnings.push(`${uncovered} record(s) from seq ${this.coveredUpTo! + 1} are chained but not yet covered by a signed checkpoint`);
    }
    return this.report;
  }
}
