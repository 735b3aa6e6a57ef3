/**
 * The policy revisions this process has served, kept in memory so the governance console can diff the
 * live set against an earlier one without a server path or git. Parsed sets only (no key material
 * beyond the public keys the set pins, no dossier data); each api process keeps its own list, which
 * starts with the set it loaded at start-up and is lost on restart. Bounded: the oldest fall off.
 */
import type { PolicySet } from '../policy/types.js';

export const MAX_EARLIER_REVISIONS = 10;

export interface RevisionSummary {
  revision: string;
  loadedAt: string;
  /** When it stopped being live (absent for the live one). */
  replacedAt?: string;
  partners: string[];
}

export class RevisionHistory {
  private readonly earlier: Array<{ set: PolicySet; replacedAt: string }> = [];

  constructor(private readonly max: number = MAX_EARLIER_REVISIONS) {}

  /** `outgoing` stops being live at `at`; a revision already held is moved to the front, not repeated. */
  retire(outgoing: PolicySet, at: Date = new Date()): void {
    const i = this.earlier.findIndex((e) => e.set.revision === outgoing.revision);
    if (i >= 0) this.earlier.splice(i, 1);
    this.earlier.unshift({ set: outgoing, replacedAt: at.toISOString() });
    this.earlier.length = Math.min(this.earlier.length, this.max);
  }

  /** An earlier revision by its id, unless it is the one live now. */
  get(revision: string, live: PolicySet): PolicySet | undefined {
    if (revision === live.revision) return undefined;
    return this.earlier.find((e) => e.set.revision === revision)?.set;
  }

  /** Newest first, the live one excluded (a revision can come back live after a revert). */
  list(live: PolicySet): RevisionSummary[] {
    return this.earlier
      .filter((e) => e.set.revision !== live.revision)
      .map((e) => ({ ...summarise(e.set), replacedAt: e.replacedAt }));
  }
}

export function summarise(set: PolicySet): RevisionSummary {
  return { revision: set.revision, loadedAt: set.loadedAt, partners: [...set.partners.keys()].sort() };
}
