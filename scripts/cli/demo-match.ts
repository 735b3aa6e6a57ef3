/**
 * `cordon demo`, match first, then disclose: the partners under after-match agreements (in the sample
 * set DWP and HMRC with automatic follow-up, Immigration Enforcement after the force approves) were
 * sent match requests, identifiers only. HMRC answers no trace for everyone (nothing more is sent), DWP
 * hit for Daniel (the follow-up, Daniel only, arrives at once), Immigration Enforcement hit for Daniel
 * (it waits until an officer of the force approves it, then arrives).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as openpgpKeys from '../../gateway/crypto/openpgp.js';
import { GatewayError } from '../../gateway/errors/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

type Call = <T = Record<string, unknown>>(url: string, token: string, method?: string, body?: unknown) => Promise<{ status: number; text: string; json: T }>;

interface Delivery {
  partner: string;
  state: string;
  packetId?: string;
  matchPacketId?: string;
  stage?: string;
}

interface MatchRequest {
  subjects: Array<{ ref: string; name?: { given?: string } }>;
}

const say = (line = '') => process.stdout.write(line + '\n');

export async function demoMatch(
  base: string,
  tokens: Record<string, string>,
  dossierId: string,
  call: Call,
  verifyKey: Awaited<ReturnType<typeof openpgpKeys.parseArmoredPublicKey>>,
): Promise<void> {
  const force = tokens['west-midlands-rocu']!;
  const deliveries = async () => (await call<{ deliveries: Delivery[] }>(`${base}/v1/dossiers/${dossierId}`, force)).json.deliveries;
  const open = async (partner: string, id: string) => {
    const armored = await call(`${base}/v1/packets/${id}`, tokens[partner]!);
    const secret = await openpgpKeys.parseArmoredPrivateKey(await readFile(path.join(ROOT, `test/fixtures/keys/${partner}.sec.asc`), 'utf8'));
    return JSON.parse((await openpgpKeys.decryptAndVerify(armored.text, secret, [verifyKey])).data) as Record<string, unknown>;
  };
  const stageOf = async (partner: string, want: string) => {
    for (let i = 0; i < 100; i++) {
      const d = (await deliveries()).find((x) => x.partner === partner);
      if (d?.stage === want) return d;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new GatewayError('internal', `${partner} did not reach the stage ${want}`);
  };
  const asked = (await deliveries()).filter((d) => d.matchPacketId && tokens[d.partner]);
  if (!asked.length) return;
  say('\nMatch first, then disclose: these partners were sent match requests (identifiers only) and answer hit or no trace per subject:');
  const answers: Record<string, (given: string) => 'hit' | 'no_trace'> = {
    hmrc: () => 'no_trace',
    'dwp-benefits': (given) => (given === 'Daniel' ? 'hit' : 'no_trace'),
    'immigration-enforcement': (given) => (given === 'Daniel' ? 'hit' : 'no_trace'),
  };
  for (const d of asked) {
    const request = (await open(d.partner, d.matchPacketId!)) as unknown as MatchRequest;
    if (!Array.isArray(request.subjects)) continue; // a blind-match request: its partner's client answers it (demo-blind.ts)
    const answer = answers[d.partner] ?? (() => 'no_trace' as const);
    const results = request.subjects.map((s) => ({ subject: s.ref, result: answer(s.name?.given ?? '') }));
    const res = await call(`${base}/v1/packets/${d.matchPacketId}/matches`, tokens[d.partner]!, 'POST', { schema: 'cordon.matches/v1', packet: d.matchPacketId, results });
    if (res.status !== 202) throw new GatewayError('internal', `the gateway refused ${d.partner}'s answers: ${res.text}`);
    say(`  ${d.partner.padEnd(24)} ${request.subjects.map((s, i) => `${s.name?.given ?? s.ref}: ${results[i]!.result}`).join(', ')}`);
  }

  const shown = async (partner: string, d: Delivery) => {
    const packet = (await open(partner, d.packetId!)) as { dossier: { subjects: Array<{ id: string; name?: { given?: string }; role?: string }> } };
    return packet.dossier.subjects.map((s) => `${s.name?.given ?? '?'} (${s.id}${s.role ? `, ${s.role}` : ''})`).join(', ');
  };
  if (asked.some((d) => d.partner === 'hmrc')) {
    await stageOf('hmrc', 'no_trace');
    say('\n  hmrc                     no trace for everyone: nothing more is sent, ever');
  }
  if (asked.some((d) => d.partner === 'dwp-benefits')) {
    const d = await stageOf('dwp-benefits', 'disclosed');
    say(`  dwp-benefits             hit, followed up at once: the disclosure holds ${await shown('dwp-benefits', d)} only`);
  }
  if (asked.some((d) => d.partner === 'immigration-enforcement')) {
    await stageOf('immigration-enforcement', 'awaiting_approval');
    say('  immigration-enforcement  hit, awaiting the force\'s approval; an officer approves it:');
    const officer = { name: 'DI Anna Kowalski', id: 'WM2207' };
    const res = await call<{ approved: string[] }>(`${base}/v1/dossiers/${dossierId}/approvals`, force, 'POST', { partner: 'immigration-enforcement', officer });
    if (res.status !== 202) throw new GatewayError('internal', `the gateway refused the approval: ${res.text}`);
    say(`    POST /v1/dossiers/${dossierId}/approvals → ${res.status}, approved ${res.json.approved.join(', ')} (audited as followup.approved, naming ${officer.name})`);
    const d = await stageOf('immigration-enforcement', 'disclosed');
    say(`  immigration-enforcement  followed up after approval: the disclosure holds ${await shown('immigration-enforcement', d)} only`);
  }
  say('\nThe force\'s status now (stage and answers per partner):');
  const status = (await call<{ deliveries: Delivery[]; matches?: Record<string, Record<string, string>> }>(`${base}/v1/dossiers/${dossierId}`, force)).json;
  for (const d of status.deliveries) {
    const m = status.matches?.[d.partner];
    say(`  ${d.partner.padEnd(24)} ${d.state.padEnd(12)} ${(d.stage ?? '').padEnd(18)} ${m ? Object.entries(m).map(([s, a]) => `${s} ${a}`).join(', ') : ''}`);
  }
}
