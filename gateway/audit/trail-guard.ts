/**
 * What a gateway process knows about its own trail, and checks every head against. A Redis writer can
 * recompute hashes but not the audit key's signatures, so a head this process did not write must be
 * signed by that key (once the trail's heads are signed); it can delete the trail or cut it back, so a
 * head below what this process wrote or saw is refused; it can rewrite records under a genuine head,
 * so before a checkpoint signs the head the tail from this process's own last head must chain to it.
 * Checking a head costs one Ed25519 verification, and only heads written by another process need it.
 */
import { GatewayError } from '../errors/index.js';
import type { AuditVerifyKey } from '../crypto/audit-key.js';
import type { AuditChainStore } from '../store/audit.js';
import { batchStatement } from './checkpoint.js';
import { parseHead, recordHash, type AuditRecord, type ChainHead } from './log.js';

/** Records read at a time when a checkpoint checks the tail. */
const TAIL_CHUNK = 500;

export class TrailGuard {
  /** Highest sequence number this process wrote or saw signed: a head below it was cut back or wiped. */
  private highestSeen = 0;
  /** The last head this process wrote: a checkpoint first checks the tail from there. */
  private lastWritten?: { seq: number; hash: string };
  /** Once the trail's heads are signed (or its anchor says so), an unsigned head is a forgery. */
  private requireSigned = false;
  /** A tail that failed its check: appends stay refused until an operator has looked (a restart). */
  private broken?: string;

  constructor(private readonly store: AuditChainStore, private readonly key?: AuditVerifyKey) {}

  /** What is wrong with this head, or undefined; `own`: this process wrote it, so only `broken` counts. */
  problem(head: ChainHead, own = false): string | undefined {
    if (this.broken) return this.broken;
    if (own) return undefined;
    if (head.seq === 0 && this.highestSeen > 0) {
      return `the audit trail vanished from Redis (this gateway had it up to seq ${this.highestSeen}): new work is refused until an operator accepts a new trail (CORDON_AUDIT_ACCEPT_NEW_TRAIL)`;
    }
    if (head.seq < this.highestSeen) {
      return `the audit trail was cut back to seq ${head.seq} (this gateway had it up to seq ${this.highestSeen}): new work is refused until \`cordon audit verify\` has been run`;
    }
    if (!this.key || head.seq === 0) return undefined;
    if (!head.sig) {
      return this.requireSigned ? `the audit chain head (seq ${head.seq}) carries no gateway signature: the trail was rewritten outside the gateway` : undefined;
    }
    if (!this.key.verify(batchStatement(head.seq, head.hash), head.sig)) {
      return `the audit chain head (seq ${head.seq}) is not signed by this gateway's audit key: the trail was rewritten or replaced outside the gateway`;
    }
    return undefined;
  }

  /** Parses and checks a head read from Redis; remembers what a good one proves. */
  accept(raw: string | null): ChainHead {
    const head = parseHead(raw);
    const problem = this.problem(head);
    if (problem) throw new GatewayError('audit_unavailable', problem);
    if (head.sig) this.requireSigned = true;
    if (head.sig || !this.key) this.highestSeen = Math.max(this.highestSeen, head.seq);
    return head;
  }

  /** A head this process wrote itself (its last write): nothing to check but an earlier alarm. */
  own(raw: string): ChainHead {
    if (this.broken) throw new GatewayError('audit_unavailable', this.broken);
    return parseHead(raw);
  }

  wrote(head: ChainHead): void {
    this.lastWritten = { seq: head.seq, hash: head.hash };
    this.highestSeen = Math.max(this.highestSeen, head.seq);
    if (head.sig) this.requireSigned = true;
  }

  /**
   * At start-up, from the state directory's anchor: the trail reaches at least the anchored record, and
   * until this process writes, that record is the last head "it" wrote, so the first checkpoint checks
   * the tail written since (by an earlier run or another process) before signing it.
   */
  expect(anchored: { seq: number; hash: string }, signed: boolean): void {
    this.highestSeen = Math.max(this.highestSeen, anchored.seq);
    this.lastWritten ??= { seq: anchored.seq, hash: anchored.hash };
    if (signed) this.requireSigned = true;
  }

  /**
   * Before a checkpoint signs the head: the records from the last head this process wrote up to it
   * must still start from that head and chain to it (the head's own signature is already checked).
   * A tail that does not is left unsigned, and appends are refused from then on.
   */
  async checkTail(head: ChainHead): Promise<void> {
    const from = this.lastWritten;
    if (!from || !this.key || head.seq <= from.seq) return;
    let prev = from.hash;
    let problem: string | undefined;
    const first = parse((await this.store.at(from.seq - 1)) ?? '');
    if (!first || first.hash !== from.hash || recordHash(first) !== from.hash) problem = `record ${from.seq}, which this gateway wrote, was replaced`;
    for (let seq = from.seq + 1; !problem && seq <= head.seq; seq += TAIL_CHUNK) {
      const rows = await this.store.range(seq - 1, Math.min(head.seq, seq + TAIL_CHUNK - 1) - 1);
      if (!rows.length) problem = `records from seq ${seq} are missing`;
      for (let i = 0; !problem && i < rows.length; i++) {
        const r = parse(rows[i]!);
        if (!r || r.seq !== seq + i || r.prev !== prev || recordHash(r) !== r.hash) problem = `record ${seq + i} does not chain from the head this gateway wrote at seq ${from.seq}`;
        else prev = r.hash;
      }
    }
    if (!problem && prev !== head.hash) problem = `the records after seq ${from.seq} do not lead to the chain head`;
    if (problem) {
      this.broken = `${problem}: the audit trail was altered outside the gateway; new work is refused until \`cordon audit verify\` has been run`;
      throw new GatewayError('audit_unavailable', this.broken);
    }
  }
}

function parse(raw: string): AuditRecord | undefined {
  try {
    return JSON.parse(raw) as AuditRecord;
  } catch {
    return undefined;
  }
}
