/**
 * The blind-match stage (`--only blind`, docs/blind-matching.md): one M dossier (about 20 subjects)
 * against a partner holding `records` records (100,000 by default), the sample blind-match partner's
 * key types. Each side's cost, first run and cached, and the gateway's blind request compared with
 * the plain match request it replaces (the same identifiers, as plaintext): all in process, the
 * pipeline's own disclose step and the same encrypt+sign the fan-out does.
 */
import { diffieHellman, generateKeyPairSync } from 'node:crypto';
import { makeBlindRequest } from '../../gateway/blind/request.js';
import { matchKeys, recordFacts, type KeyType } from '../../gateway/blind/keys.js';
import { answerRequest, finishRequest, generateServerKey, makeSetup, openSetup, prfOutput } from '../../gateway/blind/psi.js';
import { encryptAndSign } from '../../gateway/crypto/openpgp.js';
import type { Dossier } from '../../gateway/dossier/types.js';
import { disclose, matchPlaintext } from '../../gateway/pipeline/disclose.js';
import { packetExpiry } from '../../gateway/retention/schedule.js';
import { makeDossiers, Rng } from './dossiers.js';
import { row, type Row } from './report.js';
import { summarise } from './stats.js';
import type { Env } from './setup.js';

const PARTNER = 'riverside-homes';
const FAMILIES = ['Okafor', 'Popescu', 'Brooks', 'Khan', 'Nowak', 'Walsh', 'Hussain', 'Evans', 'Kowalski', 'Patel', 'Doyle', 'Ionescu', 'Bennett', 'Ahmed', 'Smith', 'Jones', 'Taylor', 'Brown', 'Wilson', 'Davies'];
const GIVEN = ['Aisha', 'Ben', 'Chloe', 'Dev', 'Ella', 'Finn', 'Grace', 'Hari', 'Isla', 'Jack', 'Kira', 'Liam', 'Maya', 'Noah', 'Olga', 'Piotr'];

/** Synthetic tenants (seeded): a name, a full date of birth and an address each. */
function tenants(n: number, rng: Rng): Array<Record<string, unknown>> {
  const pick = <T>(xs: T[]): T => xs[Math.floor(rng.next() * xs.length)]!;
  return Array.from({ length: n }, (_, i) => ({
    given: pick(GIVEN),
    family: pick(FAMILIES) + (i % 97 === 0 ? '' : String.fromCharCode(65 + (i % 26))),
    dateOfBirth: `19${40 + Math.floor(rng.next() * 60)}-${String(1 + Math.floor(rng.next() * 12)).padStart(2, '0')}-${String(1 + Math.floor(rng.next() * 28)).padStart(2, '0')}`,
    line1: `${1 + (i % 300)} ${pick(['Cedar', 'Station', 'Holbrook', 'Burnaby', 'Foleshill'])} Road`,
    postcode: `CV${1 + (i % 7)} ${i % 10}${pick(['AB', 'HX', 'FS', 'PD', 'GA'])}`,
  }));
}

function ms(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

export async function blindStage(env: Env, records: number, rounds: number, progress: (m: string) => void): Promise<Row[]> {
  const policy = env.live.set.partners.get(PARTNER);
  if (!policy) throw new Error(`the sample set has no ${PARTNER}`);
  const types = (policy.agreement.blindKeys ?? []) as KeyType[];
  const dossier: Dossier = makeDossiers('M', 1, 7)[0]!;
  const held = tenants(records, new Rng(11));
  // The partner holds three of the dossier's subjects (as the records file would say them).
  type Loose = { name?: { given?: string; family?: string }; dateOfBirth?: string; addresses?: Array<{ line1?: string; postcode?: string }> };
  for (const s of (dossier.subjects as unknown as Loose[]).slice(0, 3)) {
    held.push({ given: s.name?.given, family: s.name?.family, dateOfBirth: s.dateOfBirth, line1: s.addresses?.[0]?.line1, postcode: s.addresses?.[0]?.postcode });
  }
  const inputs = held.flatMap((r) => matchKeys(recordFacts(r), types).map((k) => k.input));
  const server = generateServerKey();

  progress(`blind: partner setup, ${records.toLocaleString('en-GB')} records (${inputs.length.toLocaleString('en-GB')} keys), first run`);
  let t = process.hrtime.bigint();
  const outputs: Uint8Array[] = [];
  inputs.forEach((input, i) => {
    outputs.push(prfOutput(server, input).subarray(0, 8));
    if ((i + 1) % 20_000 === 0) progress(`blind: setup ${i + 1}/${inputs.length} keys`);
  });
  const setup = makeSetup(server.publicKey, outputs);
  const firstSetupMs = ms(t);
  const setupKb = (setup.set.length * 3) / 4 / 1024;
  // Cached: every key's output is in the client's cache; only the set is rebuilt.
  const cachedSetup: number[] = [];
  for (let r = 0; r < rounds; r++) {
    t = process.hrtime.bigint();
    makeSetup(server.publicKey, outputs);
    cachedSetup.push(ms(t));
  }

  progress('blind: gateway request vs plain match request, partner answer, gateway result');
  const now = new Date();
  const matchStep = async () =>
    disclose({
      dossierId: dossier.reference,
      source: 'bench',
      dossier,
      recipient: PARTNER,
      policy,
      match: policy.match ?? [],
      decide: () => env.live.decider.decide(PARTNER, dossier, now),
      key: async () => env.keys.get(PARTNER)!,
      pseudonymKey: env.keyring.pseudonym(PARTNER),
    });
  const header = { id: 'pkt_bench', recipient: PARTNER, issuedAt: now, expiresAt: packetExpiry(now, policy.agreement.retentionDays), dossier, revision: env.live.set.revision, policy };
  const plain: number[] = [];
  const blind: number[] = [];
  const answer: number[] = [];
  const finishFirst: number[] = [];
  const finishCached: number[] = [];
  let elements = 0;
  let hits = 0;
  let subjects = 0;
  for (let r = 0; r < rounds + 1; r++) {
    t = process.hrtime.bigint();
    const d1 = await matchStep();
    if ('block' in d1) throw new Error(`blocked: ${d1.block.reason}`);
    await encryptAndSign(matchPlaintext(header, d1.redacted), env.keys.get(PARTNER)!, env.gatewayKey);
    const plainMs = ms(t);
    t = process.hrtime.bigint();
    const d2 = await matchStep();
    if ('block' in d2) throw new Error(`blocked: ${d2.block.reason}`);
    const made = makeBlindRequest(d2.redacted, policy.agreement);
    if ('block' in made) throw new Error(made.block.message);
    await encryptAndSign(JSON.stringify({ blindMatch: header.id, request: made.request }), env.keys.get(PARTNER)!, env.gatewayKey);
    const blindMs = ms(t);
    t = process.hrtime.bigint();
    const a = answerRequest(server, 'pkt_bench', made.request, 1024);
    const answerMs = ms(t);
    t = process.hrtime.bigint();
    const opened = openSetup(setup);
    const res = finishRequest(made.state, a, opened);
    const first = ms(t);
    t = process.hrtime.bigint();
    finishRequest(made.state, a, opened);
    const cached = ms(t);
    if (!res.ok) throw new Error(res.reason);
    if (r === 0) continue; // warm-up
    plain.push(plainMs);
    blind.push(blindMs);
    answer.push(answerMs);
    finishFirst.push(first);
    finishCached.push(cached);
    elements = made.request.elements.length;
    subjects = made.asked.length;
    hits = [...res.hits.values()].filter((h) => h.includes('name-dob')).length;
  }

  // Per key: RFC 9497 Evaluate on ristretto255 (@noble/curves) vs one native X25519 exchange (node:crypto).
  const sample = inputs.slice(0, 500);
  t = process.hrtime.bigint();
  for (const input of sample) prfOutput(server, input);
  const perKey = ms(t) / sample.length;
  const a = generateKeyPairSync('x25519');
  const peers = Array.from({ length: 500 }, () => generateKeyPairSync('x25519').publicKey);
  t = process.hrtime.bigint();
  for (const p of peers) diffieHellman({ privateKey: a.privateKey, publicKey: p });
  const x25519 = ms(t) / peers.length;

  const size = `M, ${subjects} subj`;
  const once = (v: number) => summarise([v]);
  return [
    row({ stage: 'blind: partner setup, first run', size: `${records / 1000}k rec`, unit: 's', value: once(firstSetupMs / 1000), note: `${inputs.length} keys, ${setup.n} with padding, ${setupKb.toFixed(0)} KB set; ${(firstSetupMs / inputs.length).toFixed(2)} ms per key` }),
    row({ stage: 'blind: partner setup, cached outputs', size: `${records / 1000}k rec`, unit: 'ms', value: summarise(cachedSetup), note: 'the set rebuilt from cached outputs (some records changed: each changed record costs its keys); records unchanged: nothing is rebuilt or sent' }),
    row({ stage: 'blind: gateway request', size, unit: 'ms', value: summarise(blind), baseline: { label: 'plain match request', value: summarise(plain) }, note: `${elements} elements (padded), both encrypted+signed` }),
    row({ stage: 'blind: partner answer (evaluate + proof)', size: `${elements} el`, unit: 'ms', value: summarise(answer), note: 'plain match: a lookup in its own system' }),
    row({ stage: 'blind: gateway result, first (decode set)', size: `${elements} el`, unit: 'ms', value: summarise(finishFirst), note: `verify proof, unblind, test; ${hits} hits (the partner holds 3 subjects; victims and children are never asked)` }),
    row({ stage: 'blind: gateway result, set cached', size: `${elements} el`, unit: 'ms', value: summarise(finishCached) }),
    row({ stage: 'blind: per key, VOPRF evaluate', size: '1 key', unit: 'ms', value: once(perKey), baseline: { label: 'native X25519', value: once(x25519) }, note: 'ristretto255-SHA512 (@noble/curves) vs node:crypto X25519' }),
  ];
}
