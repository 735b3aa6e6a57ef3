/**
 * What the in-process stages share: the sample policy set, the partners' parsed keys, a gateway key and
 * master secret in a temporary state directory, and one delivery's work without Redis (decide, redact,
 * encrypt+sign), exactly as gateway/fanout/fanout.ts does it before it writes anything.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { checkRecipientKey, encryptAndSign, loadOrCreateGatewayKey, parseRecipientKey, type GatewayKey, type RecipientKey } from '../../gateway/crypto/openpgp.js';
import { deriveKey, hmacId, loadOrCreateMasterSecret } from '../../gateway/crypto/seal.js';
import type { Dossier } from '../../gateway/dossier/types.js';
import { buildLiveSet, isInvalid, type LiveSet } from '../../gateway/policy/live.js';
import { loadPolicySet } from '../../gateway/policy/load.js';
import { redact } from '../../gateway/redact/redact.js';

export const ROOT = path.resolve(import.meta.dirname, '../..');

export interface Env {
  stateDir: string;
  live: LiveSet<RecipientKey>;
  partners: string[];
  keys: Map<string, RecipientKey>;
  gatewayKey: GatewayKey;
  master: Buffer;
  idKey: Buffer;
  pseudonymKeys: Map<string, Buffer>;
}

export async function setup(): Promise<Env> {
  const stateDir = await mkdtemp(path.join(os.tmpdir(), 'cordon-bench-'));
  const set = await loadPolicySet(path.join(ROOT, 'policies'));
  const live = await buildLiveSet(set, (armored, fp) => parseRecipientKey(armored, fp));
  const keys = new Map<string, RecipientKey>();
  for (const [id, k] of live.keys) {
    if (isInvalid(k)) throw new Error(`sample partner ${id} has an unusable key: ${k?.invalid}`);
    keys.set(id, k);
  }
  const master = await loadOrCreateMasterSecret(stateDir);
  const partners = [...set.partners.keys()].sort();
  return {
    stateDir,
    live,
    partners,
    keys,
    gatewayKey: await loadOrCreateGatewayKey(stateDir),
    master,
    idKey: deriveKey(master, 'packet-id'),
    pseudonymKeys: new Map(partners.map((p) => [p, deriveKey(master, `pseudonym:${p}`)])),
  };
}

/** The packet plaintext one partner would get, or undefined when the delivery is blocked. */
export async function packetPlaintext(env: Env, dossier: Dossier, partner: string, now = new Date()): Promise<string | undefined> {
  const policy = env.live.set.partners.get(partner)!;
  const decision = await env.live.decider.decide(partner, dossier, now);
  if (decision.block) return undefined;
  const packetId = 'pkt_' + hmacId(env.idKey, dossier.reference, partner);
  // As gateway/fanout/fanout.ts: one random draw for the refs, the partner's pseudonym key derived once.
  const random = randomBytes(8 * dossier.subjects.length).toString('hex');
  const refs = new Map(dossier.subjects.map((s, i) => [s.id, 'ref_' + random.slice(16 * i, 16 * i + 16)]));
  const pseudonymKey = env.pseudonymKeys.get(partner)!;
  const { dossier: redacted } = redact(dossier, decision.plan, { refs, pseudonymKey });
  const issuedAt = now.toISOString();
  return JSON.stringify({
    packet: {
      id: packetId,
      recipient: partner,
      issuedAt,
      expiresAt: new Date(now.getTime() + policy.agreement.retentionDays * 86_400_000).toISOString(),
      classification: dossier.classification,
      handling: dossier.handling,
      policy: { id: partner, revision: decision.revision },
      agreement: { reference: policy.agreement.reference, legalBasis: policy.agreement.legalBasis, purpose: policy.agreement.purpose },
    },
    dossier: redacted,
  });
}

/** One delivery without Redis: decide, check the key, redact, encrypt+sign. Returns the message or undefined if blocked. */
export async function deliverInProcess(env: Env, dossier: Dossier, partner: string): Promise<string | undefined> {
  const now = new Date();
  const key = env.keys.get(partner)!;
  const plaintext = await packetPlaintext(env, dossier, partner, now);
  if (plaintext === undefined) return undefined;
  await checkRecipientKey(key, now);
  return encryptAndSign(plaintext, key, env.gatewayKey, now);
}

/** A whole dossier, partners in parallel (as the worker's fan-out does). */
export async function fanoutInProcess(env: Env, dossier: Dossier): Promise<number> {
  const out = await Promise.all(env.partners.map((p) => deliverInProcess(env, dossier, p)));
  return out.filter((m) => m !== undefined).length;
}

/** Runs `items` through `worker` with at most `concurrency` at once; resolves when all are done. */
export async function pool<T>(items: T[], concurrency: number, worker: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) await worker(items[next++]!);
  });
  await Promise.all(lanes);
}
