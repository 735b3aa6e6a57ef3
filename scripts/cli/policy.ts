import { loadPolicySet } from '../../gateway/policy/load.js';
import { agreementStatus } from '../../gateway/http/partners.js';

export async function policyLint(dir: string): Promise<void> {
  const set = await loadPolicySet(dir);
  let warnings = 0;
  for (const p of set.partners.values()) {
    const status = agreementStatus(p.agreement.inForceFrom, p.agreement.reviewBy, new Date());
    if (status !== 'in_force') {
      warnings++;
      process.stdout.write(`warning ${p.file}: agreement ${p.agreement.reference} is ${status.replace(/_/g, ' ')} (review by ${p.agreement.reviewBy})\n`);
    }
    if (!p.partner.key.armored) {
      warnings++;
      process.stdout.write(`warning ${p.file}: key file ${p.partner.key.file} is missing: deliveries will be blocked\n`);
    }
  }
  process.stdout.write(`ok: ${set.partners.size} partner policies, ${set.sources.size} sources, revision ${set.revision}${warnings ? `, ${warnings} warning(s)` : ''}\n`);
}
