/**
 * The partner policy set, loaded after the secrets (its start-up log names the gateway key) and
 * before the shared services because every one of them decides against it. It is held in one slot,
 * swapped whole by the policy reloader (services.ts); every consumer reads it through `live()`, never a
 * captured copy, so a job always sees one consistent set and a reload is seen by the next one. Partner
 * keys that cannot be used are reported here, not fatal: only their deliveries are blocked. In
 * production a set pinning a published test key stops start-up (config/demo-material.ts).
 *
 * With `CORDON_POLICY_SIGNERS` the set must also be signed by the quorum (governance/signatures.ts), or
 * start-up stops with `policy_unsigned`; the same gate (`approve`) is handed to the reloader. The signers
 * file is read once, here; production requires it and refuses a published test key in it.
 */
import type { GatewayKey, RecipientKey } from '../crypto/openpgp.js';
import { parseRecipientKey } from '../crypto/openpgp.js';
import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import { DEMO_KEY_FINGERPRINTS, refuseDemoKeys } from '../config/demo-material.js';
import { readSignerKeys, type SignerKey } from '../crypto/signers.js';
import { GatewayError } from '../errors/index.js';
import { RevisionHistory } from '../governance/revisions.js';
import { policyApprover, type Approval } from '../governance/signatures.js';
import type { PolicySet } from '../policy/types.js';
import { setPolicyRevision } from '../metrics/metrics.js';
import { buildLiveSet, type LiveSet } from '../policy/live.js';
import { loadPolicySet } from '../policy/load.js';
import type { Wiring } from './context.js';

export interface LivePolicies {
  /** The set in force now. */
  live: () => LiveSet<RecipientKey>;
  /** Puts a new set in force (the policy reloader, once it has validated it). */
  replace: (next: LiveSet<RecipientKey>) => void;
  /** The sets this process served before the live one (the governance console diffs against them). */
  history: RevisionHistory;
  /** With policy signers configured: the signature gate every new set passes. */
  approve?: (set: PolicySet) => Promise<Approval>;
  /** The start-up set's signed sequence and signers (for its `policy.loaded` record). */
  signed?: { policySequence: number; signers: string[] };
}

export async function loadPolicies({ config, logger }: Wiring, gatewayKey: GatewayKey): Promise<LivePolicies> {
  const set = await loadPolicySet(config.policyDir);
  if (config.production) refuseDemoKeys(set);
  const approve = await signatureGate(config);
  let signed: LivePolicies['signed'];
  if (approve) {
    const approval = await approve(set);
    if (!approval.ok) throw new GatewayError('policy_unsigned', `${config.policyDir}: ${approval.message}`, [{ path: config.policyDir, message: approval.message, reason: approval.refusal }]);
    await approval.commit();
    signed = { policySequence: approval.sequence, signers: approval.signers };
    logger.info({ revision: set.revision, sequence: approval.sequence, signers: approval.signers }, 'policy set signed by the quorum');
  }
  // Swapped whole by the policy reloader (services.ts); every consumer reads it through a closure.
  let live: LiveSet<RecipientKey> = await buildLiveSet(set, (armored, fp) => parseRecipientKey(armored, fp));
  for (const [id, k] of live.keys) {
    if ('invalid' in k) logger.warn({ partner: id, problem: k.invalid }, 'partner key unusable: its deliveries will be blocked');
  }
  logger.info({ revision: set.revision, partners: set.partners.size, gatewayKey: gatewayKey.fingerprint }, 'policy set loaded');
  setPolicyRevision(set.revision);
  const history = new RevisionHistory();
  return {
    live: () => live,
    replace: (next) => {
      if (next.set.revision !== live.set.revision) history.retire(live.set);
      live = next;
    },
    history,
    ...(approve ? { approve } : {}),
    ...(signed ? { signed } : {}),
  };
}

/** The signature gate of CORDON_POLICY_SIGNERS and CORDON_POLICY_QUORUM, or undefined when no signers are configured (never in production). */
async function signatureGate(config: Wiring['config']): Promise<((set: PolicySet) => Promise<Approval>) | undefined> {
  const file = config.policySigners;
  if (file === undefined) {
    if (config.production) throw new GatewayError('config_invalid', 'production needs signed policy revisions: set CORDON_POLICY_SIGNERS (governance public keys) and CORDON_POLICY_QUORUM', [{ path: 'CORDON_POLICY_SIGNERS', message: 'unset' }]);
    return undefined;
  }
  let armored: string;
  let real: string;
  try {
    real = await realpath(file);
    armored = await readFile(real, 'utf8');
  } catch (err) {
    throw new GatewayError('config_invalid', `CORDON_POLICY_SIGNERS: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  // Also through a link: a signers file the policy editors can write would let them add a signer.
  const rel = path.relative(await realpath(config.policyDir), real);
  if (rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))) throw new GatewayError('config_invalid', `CORDON_POLICY_SIGNERS: ${file} resolves inside the policy directory; keep it where policy editors cannot write`);
  let signers: SignerKey[];
  try {
    signers = await readSignerKeys(armored, file);
  } catch (err) {
    throw new GatewayError('config_invalid', `CORDON_POLICY_SIGNERS: ${(err as Error).message}`);
  }
  if (config.production) {
    const demo = new Map(Object.entries(DEMO_KEY_FINGERPRINTS).map(([id, fp]) => [fp, id]));
    const found = signers.filter((k) => demo.has(k.fingerprint));
    if (found.length) throw new GatewayError('config_invalid', `CORDON_POLICY_SIGNERS: ${file} holds the published test key(s) ${found.map((k) => `"${demo.get(k.fingerprint)}" (${k.fingerprint})`).join(', ')}: refused in production`);
  }
  const distinct = new Set(signers.map((k) => k.fingerprint)).size;
  if (distinct < config.policyQuorum) throw new GatewayError('config_invalid', `CORDON_POLICY_QUORUM is ${config.policyQuorum} but ${file} holds ${distinct} signer key(s): no policy set could ever go live`);
  return policyApprover({ dir: config.policyDir, signers, quorum: config.policyQuorum, stateDir: config.stateDir });
}
