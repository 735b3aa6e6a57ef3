/**
 * The retention sweeper: every worker runs one, and a Redis lock lets one sweep at a time. Each sweep
 * takes what is due from the schedule (schedule.ts), oldest first, a bounded batch, and erases it
 * through the eraser for its kind, audited. A failed erasure stays scheduled and is tried again on the
 * next sweep; the lock expires by itself if its holder dies. The clock is injectable for tests.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Keys } from '../store/redis.js';
import type { Eraser } from './erase.js';
import { retentionKey, retentionLockKey } from './schedule.js';
import { evalScript } from '../store/scripts.js';

export type EraseFn = (parts: string[]) => Promise<void>;

export interface SweeperOptions {
  now?: () => Date;
  /** Items erased per sweep at most. */
  batch?: number;
  /** How long the sweep lock is held at most. */
  lockMs?: number;
  onError?: (err: Error, member: string) => void;
}

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

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
    private readonly redis: Redis,
    private readonly keys: Keys,
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
    await this.redis.zadd(retentionKey(this.keys), due.getTime(), member);
  }

  async sweepOnce(): Promise<SweepResult> {
    // Nothing due (the usual case): no lock taken, nothing written.
    const first = await this.redis.zrangebyscore(retentionKey(this.keys), '-inf', this.now().getTime(), 'LIMIT', 0, 1);
    if (first.length === 0) return { swept: true, erased: [], failed: [] };
    const lockKey = retentionLockKey(this.keys);
    const token = randomBytes(12).toString('hex');
    const got = await this.redis.set(lockKey, token, 'PX', this.options.lockMs ?? 60_000, 'NX');
    if (got !== 'OK') return { swept: false, erased: [], failed: [] };
    const result: SweepResult = { swept: true, erased: [], failed: [] };
    try {
      const due = await this.redis.zrangebyscore(retentionKey(this.keys), '-inf', this.now().getTime(), 'LIMIT', 0, this.options.batch ?? 200);
      for (const member of due) {
        const [kind, ...parts] = member.split('|');
        const erase = this.erasers.get(kind!);
        try {
          if (!erase) throw new Error(`no eraser for scheduled kind "${kind}"`);
          await erase(parts);
          // Erasers remove their own member atomically with the erasure; this covers the rest.
          await this.redis.zrem(retentionKey(this.keys), member);
          result.erased.push(member);
        } catch (err) {
          result.failed.push(member);
          this.options.onError?.(err as Error, member);
        }
      }
    } finally {
      await evalScript(this.redis, RELEASE, 1, lockKey, token).catch(() => undefined);
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
