/** Timing and summary helpers for the benchmark: rounds, medians, ranges, percentiles. */
import { performance } from 'node:perf_hooks';

export interface Summary {
  median: number;
  min: number;
  max: number;
  /** Every round's value, in run order. */
  rounds: number[];
}

export function summarise(values: number[]): Summary {
  if (values.length === 0) return { median: NaN, min: NaN, max: NaN, rounds: [] };
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, rounds: values };
}

/** The p-th percentile (0–100) by nearest rank. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export const now = (): number => performance.now();

/** ms per run of `op`, per round, after warm-up (awaited one after another unless `sync`). */
export async function single(op: (i: number) => unknown, opts: RoundOpts & { sync?: boolean }): Promise<Summary> {
  const sync = opts.sync ?? false;
  await timeRound(op, 0, opts.warmup, sync);
  const values: number[] = [];
  let i = opts.warmup;
  for (let r = 0; r < opts.rounds; r++) {
    values.push(await timeRound(op, i, opts.iterations, sync));
    i += opts.iterations;
  }
  return summarise(values);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface RoundOpts {
  rounds: number;
  iterations: number;
  warmup: number;
}

/** Keeps the last result reachable so that no work can be optimised away. */
export let sink: unknown;

/** Milliseconds per run of `iterations` runs of `op`, awaited one after another unless `sync`. */
async function timeRound(op: (i: number) => unknown, start: number, iterations: number, sync: boolean): Promise<number> {
  const t0 = now();
  if (sync) for (let k = 0; k < iterations; k++) sink = op(start + k);
  else for (let k = 0; k < iterations; k++) await op(start + k);
  return (now() - t0) / iterations;
}

/**
 * Measures a baseline and a candidate in alternating rounds (A B A B …) after warming both, so that
 * noise from other processes on the machine hits both about equally. Returns ms per run per round.
 */
export async function paired(
  baseline: (i: number) => unknown,
  candidate: (i: number) => unknown,
  opts: RoundOpts & { sync?: boolean },
): Promise<{ baseline: Summary; candidate: Summary }> {
  const sync = opts.sync ?? false;
  await timeRound(baseline, 0, opts.warmup, sync);
  await timeRound(candidate, 0, opts.warmup, sync);
  const a: number[] = [];
  const b: number[] = [];
  let i = opts.warmup;
  for (let r = 0; r < opts.rounds; r++) {
    a.push(await timeRound(baseline, i, opts.iterations, sync));
    b.push(await timeRound(candidate, i, opts.iterations, sync));
    i += opts.iterations;
  }
  return { baseline: summarise(a), candidate: summarise(b) };
}
