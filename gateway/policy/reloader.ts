/**
 * Hot reload of the policy set: on a change in the policy directory (fs.watch, debounced) or when asked
 * (SIGHUP, wired by main.ts), load the directory again and swap the live set whole.
 *
 * Fail closed: a set that does not load (any validation problem) is refused and the last good set stays
 * live; so is a set whose load cannot be written to the audit trail (no unlogged alteration goes live).
 * A refusal is logged with every problem (file and location, never dossier values), recorded in the
 * audit trail (alteration, policy.refused, with the revision still served and the number of problems)
 * and reported by status() for /readyz until a later reload succeeds. The gateway keeps serving the
 * last good set meanwhile, so readiness is not withdrawn.
 *
 * With policy signers configured, a set that loads must also be approved (governance/signatures.ts,
 * injected as `approve`): one not signed by the quorum over exactly its files is refused with reason
 * `unsigned`, one signed at an older sequence than the last applied with reason `rollback`; either way
 * the last good set stays live, as for an invalid one.
 *
 * Reloads run one at a time; a change arriving during a reload triggers one more afterwards. A reload
 * that yields the revision already live changes nothing (no swap, no audit record).
 */
import { watch, type FSWatcher } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { GatewayError } from '../errors/index.js';
import { buildLiveSet, type LiveSet } from './live.js';
import { loadPolicySet } from './load.js';
import type { PolicySet } from './types.js';

export type PolicyAuditEvent = {
  kind: 'alteration';
  action: 'policy.loaded' | 'policy.refused';
  policyRevision: string;
  reason: string;
  previousRevision?: string;
  problems?: number;
  /** The refused revision (policy.refused for signatures: policyRevision is the one still served). */
  refusedRevision?: string;
  note?: string;
  policySequence?: number;
  signers?: string[];
};

/** The signature gate's answer for a set that loads (governance/signatures.ts policyApprover). */
export type PolicyApproval =
  | { ok: true; sequence: number; signers: string[]; commit(): Promise<void> }
  | { ok: false; refusal: 'unsigned' | 'rollback'; message: string };

interface Log {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

interface PolicyReloaderDeps<K> {
  dir: string;
  /** The live set now. */
  current: () => LiveSet<K>;
  /** Make `next` the live set. */
  apply: (next: LiveSet<K>) => void;
  parseKey: (armored: string, fingerprint: string) => Promise<K>;
  audit: { append(event: PolicyAuditEvent): Promise<unknown> };
  logger: Log;
  /** Quiet time after the last file event before reloading (default 300 ms). */
  debounceMs?: number;
  /** Told every outcome (metrics). */
  onOutcome?: (outcome: ReloadOutcome) => void;
  /** For tests. */
  load?: (dir: string) => Promise<PolicySet>;
  /** With policy signers configured: whether a set that loads may go live. */
  approve?: (set: PolicySet) => Promise<PolicyApproval>;
}

export interface ReloadOutcome {
  status: 'loaded' | 'unchanged' | 'refused';
  /** The revision live after this reload. */
  revision: string;
  /** The number of problems, when refused for validation. */
  problems?: number;
  /** Why a set that loads was refused: not signed by the quorum, or signed at an older sequence. */
  refusal?: 'unsigned' | 'rollback';
}

interface Refusal {
  at: string;
  serving: string;
  problems?: number;
  cause?: string;
}

const MAX_LOGGED_PROBLEMS = 100;

export class PolicyReloader<K> {
  private chain: Promise<unknown> = Promise.resolve();
  private queued: Promise<ReloadOutcome> | undefined;
  private refusal: Refusal | undefined;
  /** Per watched directory, its watcher and the inode it watches (a directory deleted and made again is a new one). */
  private readonly watchers = new Map<string, { w: FSWatcher; ino: number }>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private watching = false;

  constructor(private readonly deps: PolicyReloaderDeps<K>) {}

  /** For /readyz: why the last reload was refused and what is served instead; undefined when all is well. */
  status(): string | undefined {
    const r = this.refusal;
    if (r === undefined) return undefined;
    if (r.problems !== undefined) return `reload refused at ${r.at}: ${r.problems} problem${r.problems === 1 ? '' : 's'}; serving revision ${r.serving}`;
    return `reload refused at ${r.at}: ${r.cause ?? 'unknown cause'}; serving revision ${r.serving}`;
  }

  /** Reload now (or right after the reload in progress); the outcome says what is live afterwards. */
  reload(reason: string): Promise<ReloadOutcome> {
    if (this.queued) return this.queued;
    const run = this.chain.then(async () => {
      this.queued = undefined;
      const outcome = await this.attempt(reason);
      this.deps.onOutcome?.(outcome);
      return outcome;
    });
    this.queued = run;
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async attempt(reason: string): Promise<ReloadOutcome> {
    const { deps } = this;
    const before = deps.current();
    const serving = before.set.revision;
    let set: PolicySet;
    try {
      set = await (deps.load ?? loadPolicySet)(deps.dir);
    } catch (err) {
      const details = err instanceof GatewayError ? (err.details ?? []) : [];
      const problems = err instanceof GatewayError && err.code === 'policy_invalid' ? details.length || 1 : 1;
      const at = new Date().toISOString();
      this.refusal = { at, serving, problems };
      deps.logger.error(
        {
          reason,
          problems,
          serving,
          details: details.slice(0, MAX_LOGGED_PROBLEMS).map((d) => `${d.path ? `${d.path}: ` : ''}${d.message}`),
          ...(err instanceof GatewayError ? {} : { err: (err as Error).message }),
        },
        `policy reload refused (${problems} problem${problems === 1 ? '' : 's'}): keeping revision ${serving}`,
      );
      await deps.audit
        .append({ kind: 'alteration', action: 'policy.refused', policyRevision: serving, reason, problems })
        .catch((e: Error) => deps.logger.error({ err: e.message }, 'the refused policy reload could not be audited'));
      this.rewatch();
      return { status: 'refused', revision: serving, problems };
    }
    if (set.revision === serving) {
      if (this.refusal) deps.logger.info({ revision: serving, reason }, 'policy directory back to the live revision');
      else if (reason !== 'file change') deps.logger.info({ revision: serving, reason }, 'policy set unchanged');
      this.refusal = undefined;
      this.rewatch();
      return { status: 'unchanged', revision: serving };
    }
    let approval: PolicyApproval | undefined;
    try {
      approval = await deps.approve?.(set);
    } catch (err) {
      approval = { ok: false, refusal: 'unsigned', message: `the signatures of revision ${set.revision} cannot be checked: ${(err as Error).message}` };
    }
    if (approval && !approval.ok) {
      this.refusal = { at: new Date().toISOString(), serving, cause: approval.message };
      deps.logger.error({ reason, refusal: approval.refusal, revision: set.revision, serving }, `policy reload refused: ${approval.message}; keeping revision ${serving}`);
      await deps.audit
        .append({ kind: 'alteration', action: 'policy.refused', policyRevision: serving, refusedRevision: set.revision, reason: approval.refusal, note: approval.message.slice(0, 1000) })
        .catch((e: Error) => deps.logger.error({ err: e.message }, 'the refused policy reload could not be audited'));
      this.rewatch();
      return { status: 'refused', revision: serving, refusal: approval.refusal };
    }
    const signed = approval ? { policySequence: approval.sequence, signers: approval.signers } : {};
    const next = await buildLiveSet(set, deps.parseKey);
    try {
      // Audit first: an alteration that cannot be logged does not go live. Then the sequence is recorded
      // (no rollback below it from now on), then the set is swapped in.
      await deps.audit.append({ kind: 'alteration', action: 'policy.loaded', policyRevision: set.revision, previousRevision: serving, reason, ...signed });
      await approval?.commit();
    } catch (err) {
      this.refusal = { at: new Date().toISOString(), serving, cause: `revision ${set.revision} could not be audited${approval ? ' or its sequence recorded' : ''}` };
      deps.logger.error({ reason, revision: set.revision, serving, err: (err as Error).message }, `policy reload not applied: the audit trail (or the policy sequence in the state directory) cannot be written; keeping revision ${serving}`);
      this.rewatch();
      return { status: 'refused', revision: serving };
    }
    deps.apply(next);
    this.refusal = undefined;
    for (const [id, k] of next.keys) {
      if (typeof k === 'object' && k !== null && 'invalid' in k) deps.logger.warn({ partner: id, problem: (k as { invalid: string }).invalid }, 'partner key unusable: its deliveries will be blocked');
    }
    deps.logger.info({ revision: set.revision, previous: serving, partners: set.partners.size, reason }, 'policy set reloaded');
    this.rewatch();
    return { status: 'loaded', revision: set.revision };
  }

  /** Watch the policy directory and its subdirectories; any change reloads after a quiet period. */
  watch(): void {
    this.closed = false;
    this.watching = true;
    void this.attach();
  }

  private onEvent = (): void => {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.reload('file change');
    }, this.deps.debounceMs ?? 300);
  };

  /** (Re)attach watchers: directories may have appeared, or been replaced by an editor or git. */
  private rewatch(): void {
    if (this.watching && !this.closed) void this.attach();
  }

  private async attach(): Promise<void> {
    const root = path.resolve(this.deps.dir);
    const dirs = [root];
    try {
      for (const e of await readdir(root, { withFileTypes: true })) if (e.isDirectory() && !e.name.startsWith('.')) dirs.push(path.join(root, e.name));
    } catch {
      // the directory is gone for now: keep what we have
    }
    if (this.closed) return;
    for (const d of dirs) {
      let ino: number;
      try {
        ino = (await stat(d)).ino;
      } catch {
        continue;
      }
      const had = this.watchers.get(d);
      if (had?.ino === ino) continue;
      // Replaced (rm -r and made again, a checkout): the old watcher watches nothing any more.
      had?.w.close();
      this.watchers.delete(d);
      if (this.closed) return;
      try {
        const w = watch(d, { persistent: false }, (_event, name) => {
          if (name) this.forget(root, d, String(name));
          this.onEvent();
        });
        w.on('error', () => {
          w.close();
          if (this.watchers.get(d)?.w === w) this.watchers.delete(d);
        });
        this.watchers.set(d, { w, ino });
      } catch (err) {
        this.deps.logger.warn({ dir: d, err: (err as Error).message }, 'cannot watch a policy directory: use SIGHUP to reload');
      }
    }
  }

  /**
   * An event naming a subdirectory (in the top directory) or the watched directory itself: it may have
   * been deleted, replaced or renamed, and the watcher on it then sees nothing more. Drop that watcher;
   * the reload the event triggers attaches a new one (an inode check alone misses a reused inode).
   */
  private forget(root: string, d: string, name: string): void {
    const target = d === root ? path.join(root, name) : name === path.basename(d) ? d : undefined;
    const had = target === undefined ? undefined : this.watchers.get(target);
    if (had === undefined) return;
    had.w.close();
    this.watchers.delete(target!);
  }

  close(): void {
    this.closed = true;
    this.watching = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const { w } of this.watchers.values()) w.close();
    this.watchers.clear();
  }
}
