/**
 * What the in-process stages share: the sample policy set, the partners' parsed keys, a gateway key and
 * master secret in a temporary state directory, and one delivery's work without Redis (the pipeline's
 * disclose step, then encrypt+sign), as gateway/fanout/fanout.ts does it before it writes anything.
 */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { checkRecipientKey, encryptAndSign, loadOrCreateGatewayKey, parseRecipientKey, type GatewayKey, type RecipientKey } from '../../gateway/crypto/openpgp.js';
import { Keyring } from '../../gateway/crypto/keyring.js';
import { hmacId, loadOrCreateMasterSecret } from '../../gateway/crypto/seal.js';
import type { Dossier } from '../../gateway/dossier/types.js';
import { buildLiveSet, isInvalid, type LiveSet } from '../../gateway/policy/live.js';
import { loadPolicySet } from '../../gateway/policy/load.js';
import { isBlindMatch } from '../../gateway/policy/blind-keys.js';
import { disclose, matchPlaintext, packetPlaintext as packetHeaderAndBody } from '../../gateway/pipeline/disclose.js';
import { isAfterMatch } from '../../gateway/policy/match.js';
import { packetExpiry } from '../../gateway/retention/schedule.js';

export const ROOT = path.resolve(import.meta.dirname, '../..');

export interface Env {
  stateDir: string;
  /** The sample policy folder without the blind-match partner (it has its own stage): what the gateways under test load. */
  policyDir: string;
  live: LiveSet<RecipientKey>;
  partners: string[];
  keys: Map<string, RecipientKey>;
  gatewayKey: GatewayKey;
  keyring: Keyring;
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
  // The blind-match partner has its own stage (blind.ts): the others measure the sample set without it,
  // in process and over HTTP alike (a copy of policies/ without its file).
  const partners = [...set.partners.values()].filter((p) => !isBlindMatch(p.agreement)).map((p) => p.partner.id).sort();
  const policyDir = path.join(stateDir, 'policies');
  await cp(path.join(ROOT, 'policies'), policyDir, { recursive: true });
  for (const p of set.partners.values()) if (isBlindMatch(p.agreement)) await rm(path.resolve(policyDir, p.file));
  return {
    stateDir,
    policyDir,
    live,
    partners,
    keys,
    gatewayKey: await loadOrCreateGatewayKey(stateDir),
    keyring: new Keyring(master),
  };
}

/**
 * The packet plaintext one partner would get, or undefined when the delivery is blocked: the
 * pipeline's own disclose step and header (gateway/pipeline/disclose.ts), without Redis or the audit.
 * A partner under an after-match agreement gets what the fan-out sends it first, a match request
 * (identifiers only), as gateway/fanout/fanout.ts makes it.
 */
export async function packetPlaintext(env: Env, dossier: Dossier, partner: string, now = new Date()): Promise<string | undefined> {
  const policy = env.live.set.partners.get(partner)!;
  const match = isAfterMatch(policy.agreement) ? (policy.match ?? []) : undefined;
  const disclosed = await disclose({
    ...(match ? { match } : {}),
    dossierId: dossier.reference,
    source: 'bench',
    dossier,
    recipient: partner,
    policy,
    decide: () => env.live.decider.decide(partner, dossier, now),
    key: async () => env.keys.get(partner)!,
    pseudonymKey: env.keyring.pseudonym(partner),
  });
  if ('block' in disclosed) return undefined;
  const id = 'pkt_' + hmacId(env.keyring.packetId, dossier.reference, partner);
  const expiresAt = packetExpiry(now, policy.agreement.retentionDays);
  const header = { id, recipient: partner, issuedAt: now, expiresAt, dossier, revision: disclosed.revision, policy };
  return match ? matchPlaintext(header, disclosed.redacted) : packetHeaderAndBody(header, disclosed.redacted);
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
