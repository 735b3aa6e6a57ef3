/**
 * Time to delivery, the figure a force feels: from the moment its `POST /v1/dossiers` is answered 202
 * to the moment the last packet that dossier leads to without a partner's answer (match requests
 * included) is filed in a mailbox, or its delivery is blocked. Dossiers are sent open loop at a fixed
 * rate (half the end-to-end maximum), so the figure includes queueing the way real traffic meets it.
 *
 * The accepted time is taken by the load generator when the 202 arrives; the delivery time is each
 * delivery's `updatedAt`, which the fan-out stamps as it files the packet (one Redis round trip before
 * the packet is stored). Both are wall-clock milliseconds on the same machine.
 */
import { deliveriesOfMany, dossierStates } from '../../gateway/store/tools.js';
import { Keys, type Connection } from '../../gateway/store/redis.js';
import type { LoadGenerator } from './loadgen.js';
import { percentile, sleep, summarise, type Summary } from './stats.js';

export interface DeliveryTimes {
  /** p50 and p99 per round, ms. */
  p50: Summary;
  p99: Summary;
  /** Every dossier of every round pooled. */
  pooled: { p50: number; p99: number; max: number; dossiers: number };
  rate: number;
  seconds: number;
}

async function settled(redis: Connection, keys: Keys, ids: string[], deadline: number): Promise<void> {
  let pending = ids;
  while (pending.length) {
    const states = await dossierStates(redis, keys, pending);
    pending = pending.filter((_, i) => states[i] !== 'processed' && states[i] !== 'failed');
    if (!pending.length) return;
    if (Date.now() > deadline) throw new Error(`time to delivery: ${pending.length} of ${ids.length} dossiers not processed in time`);
    await sleep(50);
  }
}

/** Sends `rate` dossiers a second for `seconds`, `rounds` times; the delivery times of every dossier. */
export async function timeToDelivery(opts: {
  load: LoadGenerator;
  url: string;
  headers: Record<string, string>;
  bodies: string[];
  redis: Connection;
  prefix: string;
  rate: number;
  seconds: number;
  rounds: number;
}): Promise<DeliveryTimes> {
  const keys = new Keys(opts.prefix);
  const p50s: number[] = [];
  const p99s: number[] = [];
  const all: number[] = [];
  for (let r = 0; r < opts.rounds; r++) {
    const res = await opts.load.run({ mode: 'open', url: `${opts.url}/v1/dossiers`, headers: opts.headers, bodies: opts.bodies, rate: opts.rate, durationMs: opts.seconds * 1000, collectIds: true });
    if (res.ids.length !== res.completed) throw new Error(`time to delivery: ${res.completed - res.ids.length} POSTs not accepted; first: ${res.firstError}`);
    await settled(opts.redis, keys, res.ids, Date.now() + 120_000);
    const rows = await deliveriesOfMany(opts.redis, keys, res.ids);
    const times: number[] = [];
    rows.forEach((deliveries, i) => {
      let last = -Infinity;
      for (const v of Object.values(deliveries)) {
        const d = JSON.parse(v) as { state: string; updatedAt?: string };
        if (d.state !== 'delivered' && d.state !== 'blocked') throw new Error(`time to delivery: a delivery is still ${d.state}`);
        last = Math.max(last, Date.parse(d.updatedAt ?? ''));
      }
      if (Number.isFinite(last)) times.push(Math.max(0, last - res.acceptedAt[i]!));
    });
    p50s.push(percentile(times, 50));
    p99s.push(percentile(times, 99));
    all.push(...times);
  }
  return {
    p50: summarise(p50s),
    p99: summarise(p99s),
    pooled: { p50: percentile(all, 50), p99: percentile(all, 99), max: percentile(all, 100), dossiers: all.length },
    rate: opts.rate,
    seconds: opts.seconds,
  };
}
