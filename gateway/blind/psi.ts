/**
 * Blind matching's protocol: private set intersection in the roles of OpenMined's PSI (the partner is
 * the server, the gateway the client), built on the verifiable OPRF of RFC 9497 with the
 * ristretto255-SHA512 suite (hash_to_ristretto255 of RFC 9380 inside; `@noble/curves`). Pure.
 *
 * - Setup (partner, reusable): F(k, y) = the OPRF output of each of its records' match keys y under its
 *   secret k, hashed into a Golomb-compressed set (gcs.ts), padded with random values to a multiple of
 *   SETUP_BUCKET so only its approximate size shows, published with its public key K = k·G.
 * - Request (gateway, per dossier): each subject's keys x blinded with a fresh random scalar r (r·H(x)),
 *   padded with blinded random inputs to a fixed size and shuffled: the partner sees only the size.
 * - Answer (partner): k·(r·H(x)) for every element, with one DLEQ proof that the same k (the one behind K)
 *   was used for all: a partner cannot answer one element with another's value or a made-up one.
 * - Finish (gateway): verify the proof against the setup's K, unblind (F(k, x)), and test each output
 *   in the set. The gateway learns per key whether the partner holds it; nothing else about the set.
 *
 * Why the verifiable OPRF and not plain DH-PSI on X25519 (~40× cheaper per exponentiation on node's
 * native X25519): without the proof a partner that holds one subject can answer another subject's
 * slot with a value derived from the one it holds and so claim a hit it does not have. See
 * docs/blind-matching.md.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { ristretto255_oprf } from '@noble/curves/ed25519.js';
import { buildGcs, decodeGcs, gcsHas, gcsValue, MAX_GCS_ELEMENTS, type Gcs } from './gcs.js';
import { NORMALISER_VERSION, type KeyType, type MatchKey } from './keys.js';

export const SUITE = 'ristretto255-SHA512';
// RFC 9497 §3.3.2 Evaluate (mode VOPRF): present at run time, missing from the package's typings.
const voprf = ristretto255_oprf.voprf as typeof ristretto255_oprf.voprf & { evaluate(secretKey: Uint8Array, input: Uint8Array): Uint8Array };

/** The setup's size is rounded up to a multiple of this with random values (its owner's count stays approximate). */
export const SETUP_BUCKET = 1024;
/** Golomb-Rice parameter: a key the partner does not hold is a false hit with probability about 2^-32. */
export const GCS_P = 32 - 1;
/** Request sizes: the smallest of these that holds every key (and is within the cap) is used. */
export const REQUEST_SIZES: readonly number[] = [32, 64, 128, 256, 512, 1024];

export interface ServerKey {
  secretKey: Uint8Array;
  publicKey: Uint8Array;
}

export interface SetupMessage {
  schema: 'cordon.blind-setup/v1';
  suite: typeof SUITE;
  normaliser: string;
  /** The partner's OPRF public key K (base64): answers must prove they were made with its secret. */
  publicKey: string;
  /** Values in the set (records' keys plus padding). */
  n: number;
  p: number;
  /** The Golomb-Rice coded set (base64). */
  set: string;
}

export interface BlindRequest {
  schema: 'cordon.blind-request/v1';
  suite: typeof SUITE;
  normaliser: string;
  /** Blinded elements (base64), padded and shuffled. */
  elements: string[];
}

export interface BlindAnswer {
  schema: 'cordon.blind-answer/v1';
  /** The packet the request came in. */
  packet: string;
  /** The setup's public key the answer was made with (base64). */
  publicKey: string;
  /** k·element for each element, in the request's order (base64). */
  evaluated: string[];
  /** One DLEQ proof for the whole batch (base64). */
  proof: string;
}

/** What the gateway keeps (sealed) to finish a request: never sent. `slots[i]` is null for padding. */
export interface BlindState {
  inputs: string[];
  blinds: string[];
  blinded: string[];
  slots: Array<{ ref: string; type: KeyType } | null>;
}

/** A request refused by the partner's client (too large, wrong suite or normaliser, malformed). */
export class BlindRefused extends Error {
  constructor(
    readonly code: 'request_too_large' | 'rate_limited' | 'incompatible' | 'malformed',
    message: string,
  ) {
    super(message);
  }
}

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const unb64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));

export function generateServerKey(): ServerKey {
  const k = voprf.generateKeyPair();
  return { secretKey: k.secretKey, publicKey: k.publicKey };
}

/** F(k, input): the partner computes it for its own records directly (RFC 9497 Evaluate). */
export function prfOutput(key: ServerKey, input: Uint8Array): Uint8Array {
  return voprf.evaluate(key.secretKey, input);
}

/** The setup message from the records' OPRF outputs (each ≥ 8 bytes), padded with random values. */
export function makeSetup(publicKey: Uint8Array, outputs: readonly Uint8Array[]): SetupMessage {
  const n = Math.max(SETUP_BUCKET, Math.ceil(outputs.length / SETUP_BUCKET) * SETUP_BUCKET);
  if (n > MAX_GCS_ELEMENTS) throw new Error(`at most ${MAX_GCS_ELEMENTS} keys fit in one setup message`);
  const all = [...outputs];
  while (all.length < n) all.push(randomBytes(8));
  const gcs = buildGcs(all, GCS_P);
  return { schema: 'cordon.blind-setup/v1', suite: SUITE, normaliser: NORMALISER_VERSION, publicKey: b64(publicKey), n: gcs.n, p: gcs.p, set: b64(gcs.data) };
}

/** The smallest request size that holds `count` keys within `cap`, or undefined when none does. */
export function requestSize(count: number, cap: number): number | undefined {
  return REQUEST_SIZES.find((s) => s >= count && s <= cap);
}

/** Blinds each subject's keys with fresh scalars, pads to `size` with blinded random inputs, shuffles. */
export function blindRequest(items: ReadonlyArray<{ ref: string; key: MatchKey }>, size: number): { request: BlindRequest; state: BlindState } {
  if (items.length > size) throw new Error('more keys than the request size');
  const slots: Array<{ ref: string; type: KeyType; input: Uint8Array } | null> = items.map((i) => ({ ref: i.ref, type: i.key.type, input: i.key.input }));
  while (slots.length < size) slots.push(null);
  for (let i = slots.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [slots[i], slots[j]] = [slots[j]!, slots[i]!];
  }
  const state: BlindState = { inputs: [], blinds: [], blinded: [], slots: [] };
  for (const slot of slots) {
    // Padding is a blinded random input: indistinguishable from a real key's element.
    const input = slot?.input ?? randomBytes(32);
    const { blind, blinded } = voprf.blind(input);
    state.inputs.push(b64(input));
    state.blinds.push(b64(blind));
    state.blinded.push(b64(blinded));
    state.slots.push(slot ? { ref: slot.ref, type: slot.type } : null);
  }
  return { request: { schema: 'cordon.blind-request/v1', suite: SUITE, normaliser: NORMALISER_VERSION, elements: state.blinded }, state };
}

/**
 * The partner's answer. Refuses (BlindRefused) a request over `cap` elements, of another suite or
 * normaliser version, or with an element that is not a valid ristretto255 point.
 */
export function answerRequest(key: ServerKey, packet: string, request: BlindRequest, cap: number): BlindAnswer {
  if (request?.schema !== 'cordon.blind-request/v1' || !Array.isArray(request.elements)) throw new BlindRefused('malformed', 'not a blind-match request');
  if (request.suite !== SUITE || request.normaliser !== NORMALISER_VERSION) {
    throw new BlindRefused('incompatible', `request uses ${String(request.suite)} / ${String(request.normaliser)}; this client runs ${SUITE} / ${NORMALISER_VERSION}`);
  }
  if (request.elements.length > cap) throw new BlindRefused('request_too_large', `request holds ${request.elements.length} elements; the cap for this agreement is ${cap}`);
  let out: { evaluated: Uint8Array[]; proof: Uint8Array };
  try {
    out = voprf.blindEvaluateBatch(key.secretKey, key.publicKey, request.elements.map(unb64));
  } catch (err) {
    throw new BlindRefused('malformed', `request holds an invalid element: ${(err as Error).message}`);
  }
  return { schema: 'cordon.blind-answer/v1', packet, publicKey: b64(key.publicKey), evaluated: out.evaluated.map(b64), proof: b64(out.proof) };
}

export type FinishResult = { ok: true; hits: Map<string, KeyType[]> } | { ok: false; reason: 'proof_invalid' | 'wrong_key' | 'wrong_size' };

/** A decoded setup message, for repeated tests against it. */
export interface OpenSetup {
  setup: SetupMessage;
  sorted: Float64Array;
}

export function openSetup(setup: SetupMessage): OpenSetup {
  const gcs: Gcs = { n: setup.n, p: setup.p, data: unb64(setup.set) };
  return { setup, sorted: decodeGcs(gcs) };
}

/**
 * Verifies the answer's proof against the setup's public key, unblinds, and tests each real slot's
 * output in the set: per ref, the key types the partner holds. Fails closed: a proof that does not
 * verify, another key, or a count that differs give no result at all.
 */
export function finishRequest(state: BlindState, answer: Pick<BlindAnswer, 'evaluated' | 'proof' | 'publicKey'>, open: OpenSetup): FinishResult {
  const { setup, sorted } = open;
  if (answer.publicKey !== setup.publicKey) return { ok: false, reason: 'wrong_key' };
  if (!Array.isArray(answer.evaluated) || answer.evaluated.length !== state.blinded.length) return { ok: false, reason: 'wrong_size' };
  let outputs: Uint8Array[];
  try {
    const items = state.inputs.map((input, i) => ({ input: unb64(input), blind: unb64(state.blinds[i]!), blinded: unb64(state.blinded[i]!), evaluated: unb64(answer.evaluated[i]!) }));
    outputs = voprf.finalizeBatch(items, unb64(setup.publicKey), unb64(answer.proof));
  } catch {
    return { ok: false, reason: 'proof_invalid' };
  }
  const hits = new Map<string, KeyType[]>();
  state.slots.forEach((slot, i) => {
    if (!slot) return;
    if (!hits.has(slot.ref)) hits.set(slot.ref, []);
    if (gcsHas(sorted, gcsValue(outputs[i]!, setup.n, setup.p))) hits.get(slot.ref)!.push(slot.type);
  });
  return { ok: true, hits };
}
