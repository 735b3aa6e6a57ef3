/**
 * `cordon partner match --records FILE`: the partner's side of blind matching (docs/blind-matching.md).
 * Reads the partner's own records locally, publishes its setup message when they changed (progress on
 * stderr), then answers the blind-match requests in its mailbox within its own caps. Everything it
 * sends is signed with the partner's key and encrypted to the gateway; the records never leave.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { isKeyType, type KeyType } from '../../gateway/blind/keys.js';
import { BlindPartner, parseRecords } from '../../gateway/client/blind.js';

export interface PartnerMatchOptions {
  records: string;
  partner: string;
  url?: string;
  tokenFile?: string;
  key?: string;
  gatewayKey?: string;
  state: string;
  keyTypes?: string;
  maxElements: string;
  maxRequestsPerDay: string;
  answer: boolean;
}

export async function partnerMatch(o: PartnerMatchOptions, out: (line: string) => void = (l) => process.stdout.write(l + '\n')): Promise<void> {
  const env = process.env;
  const tokenFile = o.tokenFile ?? env.CORDON_TOKEN_FILE;
  const token = (tokenFile ? (await readFile(tokenFile, 'utf8')).trim() : undefined) || env.CORDON_TOKEN;
  if (!token) throw new Error('no token: set CORDON_TOKEN or give --token-file FILE');
  const gateway = o.url ?? env.CORDON_GATEWAY_URL ?? `http://127.0.0.1:${env.PORT || 8080}`;
  const keyFile = o.key ?? env.CORDON_KEY_FILE;
  if (!keyFile) throw new Error('no secret key: give --key FILE (or CORDON_KEY_FILE)');
  // Fail closed: the gateway's key is pinned, never fetched and trusted on first use.
  const gatewayKeyFile = o.gatewayKey ?? env.CORDON_GATEWAY_KEY;
  if (!gatewayKeyFile) throw new Error('no pinned gateway key: give --gateway-key FILE (or CORDON_GATEWAY_KEY), the key saved from GET /v1/keys/gateway and checked out of band');
  const keyTypes = o.keyTypes ? o.keyTypes.split(',').map((s) => s.trim()) : await agreedKeyTypes(gateway, token, o.partner);
  const bad = keyTypes.filter((t) => !isKeyType(t));
  if (bad.length || !keyTypes.length) throw new Error(`unknown or no key types: ${bad.join(', ') || '(none)'}`);
  const log = (line: string) => process.stderr.write(line + '\n');
  const client = await BlindPartner.open({
    gateway,
    token,
    secretKeyArmored: await readFile(keyFile, 'utf8'),
    gatewayKeyArmored: await readFile(gatewayKeyFile, 'utf8'),
    stateDir: o.state,
    keyTypes: keyTypes as KeyType[],
    maxElements: positive(o.maxElements, '--max-elements'),
    maxRequestsPerDay: positive(o.maxRequestsPerDay, '--max-requests-per-day'),
    log,
  });
  const records = parseRecords(await readFile(o.records, 'utf8'), o.records);
  log(`records: ${records.length} from ${o.records}; key types ${keyTypes.join(', ')}`);
  const published = await client.publish(records);
  out(`setup ${published.published ? 'published' : 'unchanged'}: ${published.digest} (${published.keys} keys, ${published.cached} from cache, ${(published.ms / 1000).toFixed(1)} s)`);
  if (!o.answer) return;
  const answered = await client.answerPending();
  for (const a of answered) out(`${a.outcome} ${a.packet}${a.reason ? ` (${a.reason})` : ''}`);
  if (!answered.length) out('no blind-match requests waiting');
}

/** The key types the partner's agreement names (GET /v1/partners, the partnership toolkit). */
async function agreedKeyTypes(gateway: string, token: string, partner: string): Promise<string[]> {
  const res = await fetch(new URL('/v1/partners', gateway), { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`the gateway did not list the partners: ${res.status}`);
  const body = (await res.json()) as { partners?: Array<{ id: string; agreement?: { blindKeys?: string[] } }> };
  const mine = body.partners?.find((p) => p.id === partner);
  if (!mine?.agreement?.blindKeys) throw new Error(`partner ${partner} has no blind-match agreement at ${gateway} (pass --key-types to override)`);
  return mine.agreement.blindKeys;
}

function positive(value: string, name: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer`);
  return n;
}

/** Registers `match` under the `partner` command group. */
export function registerPartnerMatch(partner: Command): void {
  partner
    .command('match')
    .description('blind matching: publish the setup message from your records (when they changed) and answer blind-match requests')
    .requiredOption('--records <file>', 'your records: CSV with a header row, or JSON Lines (given, family, dateOfBirth, niNumber, vrm, postcode, line1)')
    .requiredOption('--partner <id>', 'your partner id at the gateway', process.env.CORDON_PARTNER)
    .option('--key <file>', 'your armored OpenPGP secret key: decrypts packets, signs what is sent (CORDON_KEY_FILE)')
    .option('--url <url>', 'the gateway base URL (CORDON_GATEWAY_URL; default http://127.0.0.1:8080)')
    .option('--token-file <file>', 'a file holding the bearer token (CORDON_TOKEN_FILE, or the token itself in CORDON_TOKEN)')
    .option('--gateway-key <file>', "the gateway's pinned public key, saved from GET /v1/keys/gateway (CORDON_GATEWAY_KEY)")
    .option('--state <dir>', 'private state: the OPRF secret, the output cache, request counts', '.cordon-partner')
    .option('--key-types <list>', "key types, comma-separated (default: the agreement's blindKeys)")
    .option('--max-elements <n>', 'refuse requests larger than this', '256')
    .option('--max-requests-per-day <n>', 'refuse more requests than this per agreement per day', '50')
    .option('--no-answer', 'publish the setup message only')
    .option('--policies <dir>', 'policy directory (unused)')
    .action(async (o: PartnerMatchOptions) => partnerMatch(o));
}
