/**
 * A Golomb-compressed set (Golomb 1966; as in BIP 158's block filters and OpenMined PSI's setup
 * message): n values hashed uniformly into [0, n·2^p), sorted, and their differences written in
 * Golomb-Rice code with parameter p. About p + 1.5 bits per element; a value not in the set is found
 * in it with probability about 2^-p. Membership is tested by decoding once into a sorted array. Pure.
 * Not a cryptographic primitive: the values it holds are already OPRF outputs (psi.ts).
 */

/** Largest set this encoding accepts: n·2^p must stay below 2^53 for exact arithmetic. */
export const MAX_GCS_ELEMENTS = 1 << 22;

export interface Gcs {
  /** How many values it holds. */
  n: number;
  /** Golomb-Rice parameter: false positive rate about 2^-p. */
  p: number;
  /** The Golomb-Rice coded differences. */
  data: Uint8Array;
}

/** Maps a uniformly random digest (at least 8 bytes) into [0, n·2^p). */
export function gcsValue(digest: Uint8Array, n: number, p: number): number {
  if (digest.length < 8) throw new Error('digest too short');
  let x = 0n;
  for (let i = 0; i < 8; i++) x = (x << 8n) | BigInt(digest[i]!);
  return Number(x % (BigInt(n) * (1n << BigInt(p))));
}

export function buildGcs(digests: readonly Uint8Array[], p: number): Gcs {
  const n = digests.length;
  if (n > MAX_GCS_ELEMENTS || p < 1 || p > 31) throw new Error('set too large or bad parameter');
  const values = Float64Array.from(digests.map((d) => gcsValue(d, Math.max(n, 1), p))).sort();
  const bits = new BitWriter();
  let last = 0;
  const base = 2 ** p;
  for (const v of values) {
    const delta = v - last;
    last = v;
    const q = Math.floor(delta / base);
    for (let i = 0; i < q; i++) bits.write(1);
    bits.write(0);
    const r = delta - q * base;
    for (let i = p - 1; i >= 0; i--) bits.write(Math.floor(r / 2 ** i) % 2);
  }
  return { n, p, data: bits.bytes() };
}

/** The sorted values, for repeated membership tests; throws on a truncated or inconsistent encoding. */
export function decodeGcs(gcs: Gcs): Float64Array {
  const { n, p, data } = gcs;
  if (!Number.isInteger(n) || n < 0 || n > MAX_GCS_ELEMENTS || !Number.isInteger(p) || p < 1 || p > 31) throw new Error('bad set parameters');
  const out = new Float64Array(n);
  const base = 2 ** p;
  let pos = 0;
  const total = data.length * 8;
  const bit = (): number => {
    if (pos >= total) throw new Error('set encoding is truncated');
    const b = (data[pos >> 3]! >> (7 - (pos & 7))) & 1;
    pos++;
    return b;
  };
  let last = 0;
  for (let k = 0; k < n; k++) {
    let q = 0;
    while (bit() === 1) q++;
    let r = 0;
    for (let i = 0; i < p; i++) r = r * 2 + bit();
    last += q * base + r;
    out[k] = last;
  }
  return out;
}

export function gcsHas(sorted: Float64Array, value: number): boolean {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const v = sorted[mid]!;
    if (v === value) return true;
    if (v < value) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}

class BitWriter {
  private readonly chunks: number[] = [];
  private current = 0;
  private used = 0;

  write(bit: number): void {
    this.current = (this.current << 1) | bit;
    if (++this.used === 8) {
      this.chunks.push(this.current);
      this.current = 0;
      this.used = 0;
    }
  }

  bytes(): Uint8Array {
    const out = Uint8Array.from(this.chunks.length || this.used ? [...this.chunks, ...(this.used ? [this.current << (8 - this.used)] : [])] : []);
    return out;
  }
}
