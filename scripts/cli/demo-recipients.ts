/**
 * `cordon demo`, recipients chosen per dossier: the example dossier asking for tenancy checks only goes
 * to council housing (which serves them) and to children's services under its statutory condition (a
 * subject is a child); every other partner is sent nothing (`not_requested`), and the force is told so
 * in the 202 answer at once.
 */
import { GatewayError } from '../../gateway/errors/index.js';

type Call = <T = Record<string, unknown>>(url: string, token: string, method?: string, body?: unknown) => Promise<{ status: number; text: string; json: T }>;

interface Accepted {
  id: string;
  recipients: Array<{ partner: string; why: { requested?: { checks: string[] }; statutory?: { name: string } } }>;
  notSent: Array<{ partner: string; state: string; reason: string }>;
}

export async function demoTenancyOnly(base: string, source: string, dossier: Record<string, unknown>, call: Call): Promise<void> {
  const body = { ...dossier, requests: { ...((dossier.requests as Record<string, unknown> | undefined) ?? {}), checks: ['tenancies'] } };
  const res = await call<Accepted>(`${base}/v1/dossiers`, source, 'POST', body);
  if (res.status !== 202) throw new GatewayError('internal', `the gateway refused the tenancy-only dossier: ${res.text}`);
  process.stdout.write(`\nThe same dossier asking for tenancy checks only (requests.checks: ["tenancies"]) → ${res.json.id}:\n`);
  for (const r of res.json.recipients) {
    const why = r.why.statutory ? `statutory condition ${r.why.statutory.name}` : `requested: ${r.why.requested?.checks.join(', ')}`;
    process.stdout.write(`  ${r.partner.padEnd(24)} sent (${why})\n`);
  }
  for (const n of res.json.notSent) process.stdout.write(`  ${n.partner.padEnd(24)} ${n.state}: ${n.reason}\n`);
}
