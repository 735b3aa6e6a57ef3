/**
 * The retention sweeper: every worker runs one, and a Redis lock lets one sweep at a time. Each sweep
 * takes what is due from the schedule (schedule.ts), oldest first, a bounded batch, and erases it
 * through the eraser for its kind, audited. A failed erasure stays scheduled and is tried again on the
 * next sweep; the lock expires by itself if its holder dies. The clock is injectable for tests.
 */
import { randomBytes } from 'node:crypto';
import type { RetentionStore } from '../store/retention.js';
import type { Eraser } from './erase.js';

export type EraseFn = (parts: string[]) => Promise<void>;

export interface SweeperOptions {
  now?: () => Date;
  /** Items erased per sweep at most. */
  batch?: number;
  /** How long the sweep lock is held at most. */
  lockMs?: number;
  onError?: (err: Error, member: string) => void;
}

export interface SweepResult {
  /** False when another process held the lock. */
  swept: boolean;
  erased: string[];
  failed: string[];
}

export class RetentionSweeper {
  private readonly erasers = new Map<string, EraseFn>();
  private readonly now: () => Date;
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;

  constructor(
    private readonly store: RetentionStore,
    eraser: Eraser,
    private readonly options: SweeperOptions = {},
  ) {
    this.now = options.now ?? (() => new Date());
    this.register('packet', async ([id, dossier, partner]) => {
      await eraser.erasePacket({ id: id!, dossier: dossier!, partner: partner! }, 'retention_expired');
    });
    this.register('dossier', async ([id]) => eraser.eraseDossier(id!, 'retention_expired'));
  }

  /** Adds an eraser for another kind of scheduled item (e.g. hits kept on their own schedule). */
  register(kind: string, erase: EraseFn): void {
    this.erasers.set(kind, erase);
  }

  /** Schedules `member` (see schedule.ts) for erasure at `due`; rescheduling moves it. */
  async schedule(member: string, due: Date): Promise<void> {
    await this.store.schedule(member, due.getTime());
  }

  async sweepOnce(): Promise<SweepResult> {
    // Nothing due (the usual case): no lock taken, nothing written.
    const first = await this.store.due(this.now().getTime(), 1);
    if (first.length === 0) return { swept: true, erased: [], failed: [] };
    const token = randomBytes(12).toString('hex');
    if (!(await this.store.lock(token, this.options.lockMs ?? 60_000))) return { swept: false, erased: [], failed: [] };
    const result: SweepResult = { swept: true, erased: [], failed: [] };
    try {
      const due = await this.store.due(this.now().getTime(), this.options.batch ?? 200);
      for (const member of due) {
        const [kind, ...parts] = member.split('|');
        const erase = this.erasers.get(kind!);
        try {
          if (!erase) throw new Error(`no eraser for scheduled kind "${kind}"`);
          await erase(parts);
          // Erasers remove their own member atomically with the erasure; this covers the rest.
          await this.store.unschedule(member);
          result.erased.push(member);
        } catch (err) {
          result.failed.push(member);
          this.options.onError?.(err as Error, member);
        }
      }
    } finally {
      await this.store.release(token).catch(() => undefined);
    }
    return result;
  }

  start(intervalMs = 30_000): void {
    if (this.timer) return;
    const tick = () => {
      if (this.running) return;
      this.running = this.sweepOnce()
        .catch((err: Error) => this.options.onError?.(err, ''))
        .finally(() => (this.running = undefined));
    };
    this.timer = setInterval(tick, intervalMs);
    this.timer.unref();
    tick();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
