/**
 * Acknowledge only what survives a fail-over. Redis replicates asynchronously: a write the master
 * answered may not have reached the replica Sentinel promotes when the master dies, and then it is
 * gone. So when the master has replicas, the stores end every write the gateway acknowledges (a
 * dossier accepted, a packet stored or handed out, a hit or answer recorded, an audit group commit)
 * with `WAIT`: the write counts once at least `confirmReplicas` replicas hold it, and a store failure
 * (`store_unavailable`, a 503 the client retries with its Idempotency-Key) is thrown otherwise.
 *
 * Which replicas there are is read from `INFO replication`, cached and refreshed in the background:
 * a standalone Redis (the default) pays nothing but that read once a second. What a master has had is
 * remembered: a master whose replica has gone away (its link cut, the replica stopped) is exactly the
 * one whose writes a fail-over would lose, so it keeps being asked for the confirmation it gave before
 * and its writes are refused until a replica is back. A newly promoted master (another replication id)
 * starts afresh: alone, it is written to unconfirmed, as a standalone Redis would be.
 *
 * The guard belongs to a connection (registered once, in gateway/compose/redis.ts); stores look it up,
 * so a connection without one (tools, tests) writes as before.
 */
import type { Redis } from 'ioredis';
import { GatewayError } from '../errors/index.js';
import { whenReady, type Keys } from './redis.js';

export interface ReplicationOptions {
  /** Replicas that must hold a write before it is acknowledged (0: never wait). */
  confirmReplicas: number;
  /** How long a write waits for them before it is refused (ms). */
  waitTimeoutMs: number;
  /** How often the master's replicas are read again (ms). */
  refreshMs?: number;
  /** Told once per change of what writes need (a replica lost or back, a new master, a cut trail). */
  log?: (level: 'info' | 'warn' | 'error', msg: string) => void;
}

interface MasterView {
  role: string;
  replid: string;
  /** Replicas connected and streaming (`state=online`). */
  online: number;
}

export interface ReplicationStatus {
  ready: boolean;
  detail: string;
  /** Replicas each acknowledged write waits for now (0: none asked). */
  required: number;
  online: number;
}


export class ReplicationGuard {
  private view?: MasterView;
  private fetched = 0;
  private refreshing?: Promise<void>;
  /** The most replicas the current master has had online since this process has known it. */
  private seen = 0;
  private lastWaitMs?: number;
  private cut?: string;
  private lastState = '';
  private readonly barrierKey: string;
  private readonly cutKey: string;

  constructor(private readonly redis: Redis, keys: Keys, readonly options: ReplicationOptions) {
    this.barrierKey = keys.replicationBarrier();
    this.cutKey = keys.auditCut();
  }

  /** Reads the master's replicas again when the cached view is older than the refresh period. */
  private async refresh(force = false): Promise<void> {
    if (!force && this.view && Date.now() - this.fetched < (this.options.refreshMs ?? 1000)) return;
    this.refreshing ??= (async () => {
      try {
        const info = await this.redis.info('replication');
        const field = (name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim() ?? '';
        const online = (info.match(/^slave\d+:.*state=online.*$/gm) ?? []).length;
        const view = { role: field('role'), replid: field('master_replid'), online };
        if (this.view && this.view.replid !== view.replid) {
          this.seen = 0;
          this.log('warn', `Redis master changed (replication id ${this.view.replid.slice(0, 8)}… → ${view.replid.slice(0, 8)}…): ${online} replica(s) online`);
        }
        this.view = view;
        this.seen = Math.max(this.seen, online);
        this.fetched = Date.now();
        this.note();
      } finally {
        this.refreshing = undefined;
      }
    })();
    await this.refreshing;
  }

  /** Replicas a write waits for now: those configured, as far as this master has ever had them. */
  private required(): number {
    return Math.min(this.options.confirmReplicas, this.seen);
  }

  private note(): void {
    const s = this.describe();
    if (s.detail !== this.lastState) {
      this.lastState = s.detail;
      this.log(s.ready ? 'info' : 'error', `Redis replication: ${s.detail}`);
    }
  }

  private log(level: 'info' | 'warn' | 'error', msg: string): void {
    this.options.log?.(level, msg);
  }

  /**
   * Makes every write this process has had answered so far, on any connection, durable: on a
   * connection of its own (a blocked `WAIT` holds up every command queued behind it, so never on the
   * connection the requests share), a one-round-trip pipeline of a tiny write, which orders after
   * everything already answered (BullMQ's writes on its own connections included), and `WAIT` for it.
   * Throws `store_unavailable` when too few replicas confirm in time. Nothing at all is sent, and no
   * connection opened, while no replica is required.
   */
  async confirm(): Promise<number> {
    if (this.options.confirmReplicas <= 0) return 0;
    if (!this.view) await this.refresh();
    else void this.refresh().catch(() => undefined);
    const need = this.required();
    if (need === 0) return 0;
    if (this.view!.online < need) {
      void this.refresh(true).catch(() => undefined);
      throw unconfirmed(`${this.view!.online} of the ${need} replica(s) this Redis master had are connected`);
    }
    if (!this.waiter) {
      this.waiter = this.redis.duplicate();
      // Its problems surface as refused writes (and the shared connection logs Redis being away).
      this.waiter.on('error', () => undefined);
    }
    const started = performance.now();
    if (this.waiter.status !== 'ready') await whenReady(this.waiter, this.options.waitTimeoutMs).catch((err: Error) => this.settle([err, null], need, started));
    const res = await this.waiter.pipeline().incr(this.barrierKey).wait(need, this.options.waitTimeoutMs).exec();
    // A barrier write that failed (a demoted master: READONLY) covers nothing, whatever WAIT says.
    this.settle(res?.[0]?.[0] ? res[0] : res?.[1], need, started);
    return need;
  }

  private waiter?: Redis;

  async close(): Promise<void> {
    await this.waiter?.quit().catch(() => this.waiter?.disconnect());
  }

  private settle(res: [Error | null, unknown] | undefined, need: number, started: number): void {
    const [err, acks] = res ?? [new Error('no answer'), null];
    this.lastWaitMs = performance.now() - started;
    if (err) throw unconfirmed(err.message);
    if (typeof acks !== 'number' || acks < need) {
      void this.refresh(true).catch(() => undefined);
      throw unconfirmed(`${String(acks)} of ${need} replica(s) confirmed within ${this.options.waitTimeoutMs} ms`);
    }
  }

  /** Called by the audit store when the master lacks records this process had confirmed. */
  reportCut(detail: string): void {
    if (this.cut) return;
    this.cut = detail;
    this.log('error', detail);
  }

  /** For /readyz: how many replicas confirm writes, and whether writes can be acknowledged at all. */
  async status(): Promise<ReplicationStatus> {
    await this.refresh().catch(() => undefined);
    const marker = await this.redis.get(this.cutKey).catch(() => null);
    if (marker && !this.cut) this.reportCut(`the audit trail was cut by a fail-over and every append is refused: ${marker}`);
    return this.describe();
  }

  private describe(): ReplicationStatus {
    const online = this.view?.online ?? 0;
    const need = this.required();
    if (this.cut) return { ready: false, detail: this.cut, required: need, online };
    if (this.options.confirmReplicas <= 0) return { ready: true, detail: `writes are not confirmed by replicas (confirmation switched off; ${this.view ? online : 'unknown'} replica(s) online)`, required: 0, online };
    if (!this.view) return { ready: false, detail: 'replication state not read yet (INFO replication)', required: need, online };
    if (need === 0) return { ready: true, detail: 'standalone master: writes are not waited for (no replica to confirm them)', required: 0, online };
    const wait = this.lastWaitMs === undefined ? '' : `, last WAIT ${this.lastWaitMs.toFixed(1)} ms`;
    if (online < need) return { ready: false, detail: `writes refused: ${online} of the ${need} replica(s) this master had confirm them`, required: need, online };
    return { ready: true, detail: `every acknowledged write is confirmed by ${need} of ${online} replica(s) online${wait}`, required: need, online };
  }
}

function unconfirmed(why: string): GatewayError {
  return new GatewayError('store_unavailable', `The write could not be confirmed by a Redis replica (${why}); nothing was acknowledged, retry with the same Idempotency-Key`);
}

const guards = new WeakMap<Redis, ReplicationGuard>();

/** Gives the connection its guard (once, where the connection is made). */
export function guardReplication(redis: Redis, keys: Keys, options: ReplicationOptions): ReplicationGuard {
  const guard = new ReplicationGuard(redis, keys, options);
  guards.set(redis, guard);
  return guard;
}

export function replicationOf(redis: Redis): ReplicationGuard | undefined {
  return guards.get(redis);
}

/**
 * Makes what has been written so far durable (see ReplicationGuard.confirm); a no-op without a guard.
 * Returns how many replicas confirmed it (0: none was asked).
 */
export async function confirmWrites(redis: Redis): Promise<number> {
  return (await guards.get(redis)?.confirm()) ?? 0;
}
