/**
 * The partner policy set, loaded after the secrets (its start-up log names the gateway key) and
 * before the shared services because every one of them decides against it. It is held in one slot,
 * swapped whole by the policy reloader (services.ts); every consumer reads it through `live()`, never a
 * captured copy, so a job always sees one consistent set and a reload is seen by the next one. Partner
 * keys that cannot be used are reported here, not fatal: only their deliveries are blocked. In
 * production a set pinning a published test key stops start-up (config/demo-material.ts).
 */
import type { GatewayKey, RecipientKey } from '../crypto/openpgp.js';
import { parseRecipientKey } from '../crypto/openpgp.js';
import { refuseDemoKeys } from '../config/demo-material.js';
import { setPolicyRevision } from '../metrics/metrics.js';
import { buildLiveSet, type LiveSet } from '../policy/live.js';
import { loadPolicySet } from '../policy/load.js';
import type { Wiring } from './context.js';

export interface LivePolicies {
  /** The set in force now. */
  live: () => LiveSet<RecipientKey>;
  /** Puts a new set in force (the policy reloader, once it has validated it). */
  replace: (next: LiveSet<RecipientKey>) => void;
}

export async function loadPolicies({ config, logger }: Wiring, gatewayKey: GatewayKey): Promise<LivePolicies> {
  const set = await loadPolicySet(config.policyDir);
  if (config.production) refuseDemoKeys(set);
  // Swapped whole by the policy reloader (services.ts); every consumer reads it through a closure.
  let live: LiveSet<RecipientKey> = await buildLiveSet(set, (armored, fp) => parseRecipientKey(armored, fp));
  for (const [id, k] of live.keys) {
    if ('invalid' in k) logger.warn({ partner: id, problem: k.invalid }, 'partner key unusable: its deliveries will be blocked');
  }
  logger.info({ revision: set.revision, partners: set.partners.size, gatewayKey: gatewayKey.fingerprint }, 'policy set loaded');
  setPolicyRevision(set.revision);
  return {
    live: () => live,
    replace: (next) => {
      live = next;
    },
  };
}
