/**
 * `cordon policy isa --partner ID`: the information-sharing agreement rendered from the policy set, as
 * Markdown (default) or HTML. Offline, on files; `--gateway-key` adds the gateway's signing key
 * fingerprint to the security section.
 */
import { readFile } from 'node:fs/promises';
import { readPublicKeyInfo } from '../../gateway/crypto/openpgp.js';
import { GatewayError } from '../../gateway/errors/index.js';
import { renderIsa } from '../../gateway/governance/isa-text.js';
import { loadPolicySet } from '../../gateway/policy/load.js';

export async function policyIsa(o: { policies: string; partner: string; format?: string; now?: string; gatewayKey?: string }): Promise<void> {
  const format = o.format ?? 'md';
  if (format !== 'md' && format !== 'html') throw new GatewayError('config_invalid', `--format ${JSON.stringify(format)}: use md or html`);
  let now = new Date();
  if (o.now !== undefined) {
    now = new Date(/^\d{4}-\d{2}-\d{2}$/.test(o.now) ? `${o.now}T12:00:00Z` : o.now);
    if (Number.isNaN(now.getTime())) throw new GatewayError('config_invalid', `--now ${JSON.stringify(o.now)} is not a date (YYYY-MM-DD or an ISO date-time)`);
  }
  const set = await loadPolicySet(o.policies);
  let gatewayKey: { fingerprint: string } | undefined;
  if (o.gatewayKey !== undefined) {
    const armored = await readFile(o.gatewayKey, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new GatewayError('config_invalid', `--gateway-key ${o.gatewayKey}: ${err.code ?? err.message}`);
    });
    gatewayKey = { fingerprint: (await readPublicKeyInfo(armored)).fingerprint };
  }
  process.stdout.write(renderIsa(set, o.partner, { format, now, ...(gatewayKey ? { gatewayKey } : {}) }) + '\n');
}
