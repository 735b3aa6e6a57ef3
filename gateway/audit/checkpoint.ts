/**
 * Signed checkpoints. A checkpoint is itself a record of the chain (`kind: 'checkpoint'`) whose
 * signature, made with the gateway's OpenPGP key, covers the sequence number and hash of the record
 * just before it. The hash chain fixes everything before that record, so one valid signature vouches
 * for the whole log up to it: rewriting any earlier record (even recomputing every hash after it) needs
 * the gateway's private key. Checkpoints are written at start-up, every N records, on a timer when the
 * log has grown since the last one, and on demand (`POST /v1/audit/checkpoint`).
 *
 * The latest record this gateway wrote is also anchored outside Redis, in the state directory
 * (`audit-anchor.json`, beside the gateway key), at most a second after it was written and at every
 * checkpoint: someone able to rewrite Redis can cut the log back and reset its head, or replace it
 * whole, but cannot move the anchor. `cordon audit verify --state DIR` compares both, and the gateway
 * refuses to start on a log that does not match its anchor.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { signDetached, verifyDetached, type GatewayKey } from '../crypto/openpgp.js';
import { canonical } from './canonical.js';

const CHECKPOINT_STATEMENT_TYPE = 'cordon.audit.checkpoint/v1';
const BATCH_STATEMENT_TYPE = 'cordon.audit.batch/v1';
const ANCHOR_FILE = 'audit-anchor.json';
export const DEFAULT_CHECKPOINT_EVERY = 100;

/** What a checkpoint's signature covers: "record `seq` of this log had hash `hash`". */
export interface CheckpointStatement {
  /** Sequence number of the record just before the checkpoint record (0: the empty log). */
  seq: number;
  /** Its hash (the genesis value when `seq` is 0). */
  hash: string;
  signedAt: string;
  /** Fingerprint of the signing key. */
  signer: string;
  /** The checkpoint interval in force, so a verifier knows how long an unsigned stretch may be. */
  every: number;
  /**
   * The gateway's audit signing key (Ed25519 SPKI, base64) with which every group commit after this
   * checkpoint is signed: the OpenPGP signature vouches for it, so an export carries its own key.
   * Absent on checkpoints written before batches were signed.
   */
  auditKey?: string;
}

export interface CheckpointSigner {
  fingerprint: string;
  sign(text: string): Promise<string>;
}

export function gatewaySigner(key: GatewayKey): CheckpointSigner {
  return { fingerprint: key.fingerprint, sign: (text) => signDetached(text, key) };
}

/** The exact bytes signed: canonical JSON of the statement with its type. */
export function statementText(s: CheckpointStatement): string {
  return canonical({ type: CHECKPOINT_STATEMENT_TYPE, seq: s.seq, hash: s.hash, signedAt: s.signedAt, signer: s.signer, every: s.every, auditKey: s.auditKey });
}

/**
 * The exact bytes of a group commit's signature: "record `seq` of this log has hash `hash`". The hash
 * chain fixes every record before it, so one signature on the last record of a batch vouches for the
 * whole batch and the log before it. The signature is stored beside the record (its `sig` member, left
 * out of its hash) and in the chain head.
 */
export function batchStatement(seq: number, hash: string): string {
  return `${BATCH_STATEMENT_TYPE}:${seq}:${hash}`;
}

/** Checks a checkpoint record's signature; returns the problem, or undefined when it is good. */
export async function checkCheckpointSignature(
  checkpoint: CheckpointStatement,
  signature: unknown,
  armoredKey: string,
): Promise<string | undefined> {
  if (typeof signature !== 'string' || !signature.includes('-----BEGIN PGP SIGNATURE-----')) return 'has no signature';
  const result = await verifyDetached(statementText(checkpoint), signature, armoredKey);
  if (!result.valid) return `signature does not verify with the gateway key (${result.problem})`;
  if (result.fingerprint !== checkpoint.signer) return `signed by ${result.fingerprint}, but names ${checkpoint.signer} as signer`;
  return undefined;
}

export interface Anchor {
  prefix: string;
  /** Hash of record 1: which log this is (a log rebuilt from scratch has another). */
  first?: string;
  /** Sequence number and hash of the latest record written by this state directory's gateway (a second behind at most). */
  seq: number;
  hash: string;
  at: string;
  /** 2: the trail's batches are signed with the audit key, so an unsigned head is a forgery. */
  format?: 2;
}

/**
 * Records the latest checkpoint of the log under `prefix` (several gateways may share one state dir
 * but not one prefix, so the anchor is per prefix). Never moves backwards; written atomically.
 */
/** Anchor writes of one process run one after another, so an older checkpoint never lands last. */
const anchorWrites = new Map<string, Promise<void>>();

export function writeAnchor(stateDir: string, anchor: Anchor): Promise<void> {
  const file = path.join(stateDir, anchorName(anchor.prefix));
  const next = (anchorWrites.get(file) ?? Promise.resolve()).then(() => writeAnchorNow(file, stateDir, anchor));
  const settled = next.catch(() => undefined);
  anchorWrites.set(file, settled);
  void settled.then(() => {
    if (anchorWrites.get(file) === settled) anchorWrites.delete(file);
  });
  return next;
}

async function writeAnchorNow(file: string, stateDir: string, anchor: Anchor): Promise<void> {
  const current = await readFile(file, 'utf8').then((t) => JSON.parse(t) as Anchor, () => undefined);
  if (current && current.first === anchor.first && current.seq >= anchor.seq) return;
  const tmp = path.join(stateDir, `.${randomBytes(6).toString('hex')}.anchor.tmp`);
  await writeFile(tmp, JSON.stringify(anchor) + '\n', { mode: 0o600 });
  await rename(tmp, file);
}

/** `audit-anchor.json` for the default prefix `cordon`, `audit-anchor.<prefix>.json` otherwise. */
export function anchorName(prefix: string): string {
  return prefix === 'cordon' ? ANCHOR_FILE : `audit-anchor.${prefix.replace(/[^A-Za-z0-9._-]/g, '_')}.json`;
}

export async function readAnchorFor(stateDir: string, prefix: string): Promise<Anchor | undefined> {
  try {
    const a = JSON.parse(await readFile(path.join(stateDir, anchorName(prefix)), 'utf8')) as Anchor;
    if (typeof a.seq === 'number' && typeof a.hash === 'string' && a.prefix === prefix) return a;
    return undefined;
  } catch {
    return undefined;
  }
}
