/**
 * The in-process stages: redaction against JSON.stringify, warm policy decisions, the gateway's
 * encrypt+sign against a bare openpgp.js loop, and the ceiling (decide + redact + encrypt+sign for every
 * partner in parallel, no HTTP, no queue, no Redis).
 */
import { randomBytes } from 'node:crypto';
import * as openpgp from 'openpgp';
import { encryptAndSign, type RecipientKey } from '../../gateway/crypto/openpgp.js';
import type { Dossier } from '../../gateway/dossier/types.js';
import type { Plan } from '../../gateway/policy/types.js';
import { redact } from '../../gateway/redact/redact.js';
import { makeDossiers, bytesOf, SIZES, type Size } from './dossiers.js';
import { row, type Row } from './report.js';
import { fanoutInProcess, packetPlaintext, pool, type Env } from './setup.js';
import { now, paired, single, summarise } from './stats.js';
import { CONFIG } from '../../gateway/crypto/openpgp.js';

export interface Budget {
  quick: boolean;
  /** Rounds per measurement (the median and range are over these). */
  rounds: number;
}

/** The baseline runs with the gateway's own openpgp settings. */
const OPENPGP_CONFIG = CONFIG;

interface Delivery {
  dossier: Dossier;
  partner: string;
  plan: Plan;
  refs: Map<string, string>;
  pseudonymKey: Buffer;
}

async function deliveriesOf(env: Env, dossiers: Dossier[]): Promise<Delivery[]> {
  const out: Delivery[] = [];
  for (const dossier of dossiers) {
    for (const partner of env.partners) {
      const decision = await env.live.decider.decide(partner, dossier);
      if (decision.block) continue;
      out.push({
        dossier,
        partner,
        plan: decision.plan,
        refs: new Map(dossier.subjects.map((s) => [s.id, 'ref_' + randomBytes(8).toString('hex')])),
        pseudonymKey: env.keyring.pseudonym(partner),
      });
    }
  }
  return out;
}

/** Redaction (apply the plan, serialise the output) per packet vs JSON.stringify of the input dossier. */
export async function redactionStage(env: Env, b: Budget): Promise<Row[]> {
  const rows: Row[] = [];
  for (const size of SIZES) {
    const dossiers = makeDossiers(size, b.quick ? 10 : 30, 1);
    const deliveries = await deliveriesOf(env, dossiers);
    // One input dossier per packet, so both sides serialise the same dossiers in the same proportions.
    const inputs = deliveries.map((d) => d.dossier);
    const iterations = { S: 3000, M: 600, L: 120 }[size] / (b.quick ? 3 : 1);
    const { baseline, candidate } = await paired(
      (i) => JSON.stringify(inputs[i % inputs.length]),
      (i) => {
        const d = deliveries[i % deliveries.length]!;
        return JSON.stringify(redact(d.dossier, d.plan, { refs: d.refs, pseudonymKey: d.pseudonymKey }).dossier);
      },
      { rounds: b.rounds * 2, iterations, warmup: iterations, sync: true },
    );
    rows.push(
      row({
        stage: 'redact + serialise, per packet',
        size: `${size} ${kb(dossiers)}`,
        unit: 'µs',
        value: micro(candidate),
        baseline: { label: 'JSON.stringify', value: micro(baseline) },
        target: { of: 'ratio', op: '<=', value: 1.0 },
      }),
    );
  }
  return rows;
}

/** Decider.decide per (partner, dossier), once warm (plans and rule outcomes cached). */
export async function decideStage(env: Env, b: Budget): Promise<Row[]> {
  const rows: Row[] = [];
  for (const size of SIZES) {
    const dossiers = makeDossiers(size, b.quick ? 10 : 30, 2);
    const pairs = dossiers.flatMap((d) => env.partners.map((p) => [p, d] as const));
    const at = new Date();
    const iterations = { S: 3000, M: 1200, L: 300 }[size] / (b.quick ? 3 : 1);
    const value = await single(
      (i) => {
        const [p, d] = pairs[i % pairs.length]!;
        return env.live.decider.decide(p, d, at);
      },
      { rounds: b.rounds * 2, iterations, warmup: pairs.length * 2 },
    );
    rows.push(
      row({ stage: 'policy decision (warm), per partner', size: `${size} ${kb(dossiers)}`, unit: 'ms', value, target: { of: 'value', op: '<=', value: 0.25 } }),
    );
  }
  return rows;
}

/** The gateway's encryptAndSign vs openpgp.encrypt with the same keys (parsed once) and config. */
export async function openpgpStage(env: Env, b: Budget): Promise<Row[]> {
  const rows: Row[] = [];
  const sizes: Size[] = b.quick ? ['M'] : ['S', 'M', 'L'];
  for (const size of sizes) {
    const dossiers = makeDossiers(size, 4, 3);
    const jobs: Array<{ plaintext: string; key: RecipientKey }> = [];
    for (const d of dossiers) {
      for (const p of env.partners) {
        const plaintext = await packetPlaintext(env, d, p);
        if (plaintext !== undefined) jobs.push({ plaintext, key: env.keys.get(p)! });
      }
    }
    const signingKeys = env.gatewayKey.privateKey;
    const iterations = { S: 150, M: 100, L: 30 }[size] / (b.quick ? 2 : 1);
    const { baseline, candidate } = await paired(
      async (i) => {
        const j = jobs[i % jobs.length]!;
        const date = new Date();
        const message = await openpgp.createMessage({ binary: Buffer.from(j.plaintext, 'utf8'), format: 'binary' });
        return openpgp.encrypt({ message, encryptionKeys: j.key.key, signingKeys, date, format: 'armored', config: OPENPGP_CONFIG });
      },
      (i) => {
        const j = jobs[i % jobs.length]!;
        return encryptAndSign(j.plaintext, j.key, env.gatewayKey);
      },
      { rounds: b.rounds, iterations, warmup: 20 },
    );
    const avg = jobs.reduce((n, j) => n + j.plaintext.length, 0) / jobs.length;
    rows.push(
      row({
        stage: 'encrypt+sign, per packet (one at a time)',
        size: `${size} ${(avg / 1024).toFixed(1)} KB pkt`,
        unit: 'ms',
        value: candidate,
        baseline: { label: 'bare openpgp.js', value: baseline },
        target: { of: 'ratio', op: '<=', value: 1.2 },
      }),
    );
  }
  return rows;
}

/** One round of the in-process ceiling: dossiers per second and CPU ms per dossier (all threads). */
export type CeilingRound = () => Promise<{ rate: number; cpuMs: number }>;

/**
 * The in-process ceiling: M dossiers through decide + redact + encrypt+sign for every partner in
 * parallel, `concurrency` dossiers at a time (the worker's default), no HTTP, no queue, no Redis.
 * Returns its row and a way to run more rounds of it (end to end alternates its rounds with these).
 */
export async function ceilingStage(env: Env, b: Budget, concurrency: number): Promise<{ row: Row; round: CeilingRound }> {
  const n = b.quick ? 40 : 120;
  const dossiers = makeDossiers('M', n, 4);
  await pool(dossiers.slice(0, 10), concurrency, (d) => fanoutInProcess(env, d)); // warm-up
  const round: CeilingRound = async () => {
    const cpu0 = process.cpuUsage();
    const t0 = now();
    await pool(dossiers, concurrency, (d) => fanoutInProcess(env, d));
    const rate = n / ((now() - t0) / 1000);
    const cpu = process.cpuUsage(cpu0);
    return { rate, cpuMs: (cpu.user + cpu.system) / 1000 / n };
  };
  const rounds = [];
  for (let r = 0; r < b.rounds; r++) rounds.push(await round());
  const cpuPerDossier = rounds.reduce((a, x) => a + x.cpuMs, 0) / rounds.length;
  return {
    round,
    row: row({
      stage: `in-process ceiling (${env.partners.length} partners in parallel, ${concurrency} dossiers at once)`,
      size: `M ${kb(dossiers)}`,
      unit: 'dossiers/s',
      value: summarise(rounds.map((x) => x.rate)),
      note: `decide + redact + encrypt+sign, no HTTP, no queue, no Redis; the reference for end to end. CPU per dossier: ${cpuPerDossier.toFixed(1)} ms (all threads)`,
    }),
  };
}

function kb(dossiers: Dossier[]): string {
  const avg = dossiers.reduce((n, d) => n + bytesOf(d), 0) / dossiers.length;
  return `${(avg / 1024).toFixed(1)} KB`;
}

function micro(s: ReturnType<typeof summarise>): ReturnType<typeof summarise> {
  return { median: s.median * 1000, min: s.min * 1000, max: s.max * 1000, rounds: s.rounds.map((x) => x * 1000) };
}
