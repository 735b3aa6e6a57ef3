/**
 * `cordon demo`, blind matching (docs/blind-matching.md): Riverside Homes, a housing association, was
 * sent a blind-match request, blinded keys only. Its client (gateway/client/blind.ts) publishes a
 * setup message from its tenants (Daniel Okafor among them, Samuel not), answers, and the gateway works
 * out hit or no trace: Daniel's disclosure follows, and Riverside never learns that Samuel was asked about.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BlindPartner, parseRecords } from '../../gateway/client/blind.js';
import * as openpgpKeys from '../../gateway/crypto/openpgp.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PARTNER = 'riverside-homes';
const say = (line = '') => process.stdout.write(line + '\n');

type Call = <T = Record<string, unknown>>(url: string, token: string, method?: string, body?: unknown) => Promise<{ status: number; text: string; json: T }>;

const TENANTS = [
  'tenancyRef,given,family,dateOfBirth,line1,postcode',
  'RH-0001,Daniel,Okafor,1987-04-12,14 Cedar Road,CV6 5HX',
  ...Array.from({ length: 200 }, (_, i) => `RH-${1002 + i},Tenant${i},Example,19${50 + (i % 40)}-0${1 + (i % 9)}-1${i % 9},${i + 1} Example Street,CV${1 + (i % 6)} ${i % 9}AB`),
].join('\n');

export async function demoBlind(base: string, tokens: Record<string, string>, dossierId: string, call: Call): Promise<void> {
  const token = tokens[PARTNER];
  if (!token) return;
  const force = tokens['west-midlands-rocu']!;
  const delivery = (await call<{ deliveries: Array<{ partner: string; matchPacketId?: string; state: string }> }>(`${base}/v1/dossiers/${dossierId}`, force)).json.deliveries.find((d) => d.partner === PARTNER);
  if (!delivery?.matchPacketId) return;
  say('\nBlind matching: Riverside Homes (a housing association) was sent blinded keys only, no names.');
  const stateDir = await mkdtemp(path.join(os.tmpdir(), 'cordon-demo-blind-'));
  try {
    const secretKeyArmored = await readFile(path.join(ROOT, `test/fixtures/keys/${PARTNER}.sec.asc`), 'utf8');
    const client = await BlindPartner.open({ gateway: base, token, secretKeyArmored, stateDir, keyTypes: ['name-dob', 'address-family'], log: (l) => say(`  ${l}`) });
    await client.publish(parseRecords(TENANTS, 'tenants.csv'));
    for (const a of await client.answerPending()) if (a.outcome === 'refused') say(`  refused ${a.packet} (${a.reason})`);
    let row: Record<string, string> | undefined;
    for (let i = 0; i < 100 && !(row && !Object.values(row).includes('pending')); i++) {
      await new Promise((r) => setTimeout(r, 100));
      row = (await call<{ matches?: Record<string, Record<string, string>> }>(`${base}/v1/dossiers/${dossierId}`, force)).json.matches?.[PARTNER];
    }
    say(`  the gateway's own result, per subject: ${JSON.stringify(row ?? {})}`);
    let followUp: { id: string } | undefined;
    for (let i = 0; i < 100 && !followUp; i++) {
      followUp = (await call<{ packets: Array<{ id: string; type: string }> }>(`${base}/v1/packets`, token)).json.packets.find((p) => p.type === 'packet');
      if (!followUp) await new Promise((r) => setTimeout(r, 100));
    }
    if (!followUp) {
      say('  no follow-up disclosure (no hit)');
      return;
    }
    const armored = await call(`${base}/v1/packets/${followUp.id}`, token);
    const gatewayPublic = await (await fetch(`${base}/v1/keys/gateway`)).text();
    const { data } = await openpgpKeys.decryptAndVerify(armored.text, await openpgpKeys.parseArmoredPrivateKey(secretKeyArmored), [await openpgpKeys.parseArmoredPublicKey(gatewayPublic)]);
    const names = (JSON.parse(data) as { dossier: { subjects: Array<{ name?: { given?: string; family?: string } }> } }).dossier.subjects.map((s) => `${s.name?.given} ${s.name?.family}`);
    say(`  follow-up disclosure ${followUp.id}: ${names.join(', ')} only; nothing about anyone it does not house`);
  } finally {
    await rm(stateDir, { recursive: true, force: true });
  }
}
