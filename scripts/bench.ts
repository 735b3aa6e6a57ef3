/**
 * `npm run bench -- [--quick] [--only stage,…] [--fsync everysec|always]`: measures the gateway against
 * the limits in DESIGN.md ("Performance"), every baseline in the same process and run, in one table:
 *
 *   redact    redaction (apply the compiled plan, serialise) vs JSON.stringify of the input   ≤ 1.0×
 *   decide    a warm policy decision per (partner, dossier)                                   ≤ 0.25 ms
 *   openpgp   the gateway's encrypt+sign vs a bare openpgp.js loop with the same keys          ≤ 1.2×
 *   ceiling   decide + redact + encrypt+sign, all partners in parallel, no HTTP/queue/Redis   (reference)
 *   threads   experiment, only with --only threads: the ceiling with openpgp on worker threads
 *   e2e       HTTP POST → queue → worker → packets stored and audited, vs the ceiling        ≥ 0.8×
 *             then time to delivery (202 → last packet filed), p50/p99 at half that rate
 *   e2e-split the same with api and worker as two processes (CORDON_ROLE)                     (information)
 *   profile   CPU profiles (--cpu-prof) of the api and worker processes under the e2e load: stages
 *             with their share and ms per dossier (the cost model)                            (information)
 *   door      ingest's steps one by one: schema validation, sealing, the rate-limit script      (information)
 *   ingest    POST /v1/dossiers max rate vs a bare express.json echo (≥ 0.8×), p99 at 50%  ≤ 10 ms
 *   soak      on request only: worker RSS over a steady 10-minute stream                     ≤ +10%
 *   blind     on request only: one M dossier vs --blind-records partner records (default 100,000), each
 *             side's cost first run and cached, vs the plain match request                 (information)
 *
 * The blind-match sample partner is measured in its own stage only: the other stages run on the
 * sample set without it, so their figures stay comparable with earlier runs.
 *
 * Each figure is the median of several rounds after a warm-up, with the range over the rounds. The
 * table is also written to bench-results/<ISO time>.json for comparison across commits. Figures are
 * only comparable on the same machine under the same load: run it on a quiet machine.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { setup, ROOT } from './bench/setup.js';
import { ceilingStage, decideStage, openpgpStage, redactionStage, type Budget, type CeilingRound } from './bench/inprocess.js';
import { endToEndStage, ingestStage, sourceToken } from './bench/http.js';
import { LoadGenerator } from './bench/loadgen.js';
import { soakStage } from './bench/soak.js';
import { threadsStage } from './bench/threads.js';
import { doorStage } from './bench/door.js';
import { profileStage, profileTable, type ProfileReport } from './bench/profile.js';
import { blindStage } from './bench/blind.js';
import { benchRedis, type Fsync } from './bench/redis.js';
import { table, writeResults, type Row } from './bench/report.js';
import { loadConfig } from '../gateway/config/env.js';

const STAGES = ['redact', 'decide', 'openpgp', 'ceiling', 'threads', 'e2e', 'e2e-split', 'profile', 'door', 'ingest', 'soak', 'blind'] as const;
type Stage = (typeof STAGES)[number];

function parseArgs(argv: string[]): { quick: boolean; only: Set<Stage>; fsync: Fsync; soakSeconds: number; soakRate: number; blindRecords?: number } {
  let quick = false;
  let blindRecords: number | undefined;
  let fsync: Fsync = 'everysec';
  let soakSeconds = 600;
  let soakRate = 5;
  // On request only: the worker-thread experiment, the long soak and blind matching (minutes for its setup).
  let only = new Set<Stage>(STAGES.filter((s) => s !== 'threads' && s !== 'soak' && s !== 'blind'));
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') quick = true;
    else if (a === '--blind-records') {
      blindRecords = Number(argv[++i]);
      if (!Number.isInteger(blindRecords) || blindRecords < 1) throw new Error('--blind-records takes a positive integer');
    }
    else if (a === '--soak-seconds' || a === '--soak-rate') {
      const v = Number(argv[++i]);
      if (!(v > 0)) throw new Error(`${a} takes a positive number`);
      if (a === '--soak-seconds') soakSeconds = v;
      else soakRate = v;
    } else if (a === '--fsync' || a.startsWith('--fsync=')) {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v !== 'always' && v !== 'everysec') throw new Error('--fsync takes always or everysec');
      fsync = v;
    }    else if (a === '--only' || a.startsWith('--only=')) {
      const list = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i] ?? '';
      const names = list.split(',').filter(Boolean);
      const unknown = names.filter((n) => !(STAGES as readonly string[]).includes(n));
      if (unknown.length) throw new Error(`unknown stage ${unknown.join(', ')}; stages: ${STAGES.join(', ')}`);
      only = new Set(names as Stage[]);
    } else if (a === '--help' || a === '-h') {
      console.log(`usage: npm run bench -- [--quick] [--only ${STAGES.join(',')}] [--fsync everysec|always] [--soak-seconds 600] [--soak-rate 5] [--blind-records 100000]`);
      process.exit(0);
    } else throw new Error(`unknown argument ${a} (try --help)`);
  }
  // --quick (about 30 s) leaves out the informational split-process run unless it is asked for by name.
  if (quick && !argv.some((a) => a.startsWith('--only'))) only.delete('e2e-split');
  return { quick, only, fsync, soakSeconds, soakRate, ...(blindRecords ? { blindRecords } : {}) };
}

async function main(): Promise<void> {
  const { quick, only, fsync, soakSeconds, soakRate, blindRecords } = parseArgs(process.argv.slice(2));
  const startedAt = new Date().toISOString();
  const t0 = Date.now();
  const budget: Budget = { quick, rounds: quick ? 3 : 5 };
  const workerConcurrency = loadConfig({}, ROOT).workerConcurrency;
  const rows: Row[] = [];
  const progress = (msg: string) => process.stderr.write(`bench: ${msg} (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);

  const env = await setup();
  if (only.has('redact')) {
    progress('redaction vs JSON.stringify');
    rows.push(...(await redactionStage(env, budget)));
  }
  if (only.has('decide')) {
    progress('policy decisions');
    rows.push(...(await decideStage(env, budget)));
  }
  if (only.has('openpgp')) {
    progress('encrypt+sign vs bare openpgp.js');
    rows.push(...(await openpgpStage(env, budget)));
  }
  let ceiling: CeilingRound | undefined;
  if (only.has('ceiling') || only.has('e2e') || only.has('e2e-split')) {
    progress('in-process ceiling');
    const c = await ceilingStage(env, budget, workerConcurrency);
    ceiling = c.round;
    rows.push(c.row);
  }

  if (only.has('threads')) {
    progress('experiment: openpgp in worker threads');
    rows.push(...(await threadsStage(env, budget, workerConcurrency)));
  }

  if (only.has('blind')) {
    progress('blind matching');
    rows.push(...(await blindStage(env, blindRecords ?? (quick ? 10_000 : 100_000), budget.rounds, progress)));
  }

  let redisDescription: string | undefined;
  let profile: ProfileReport | undefined;
  if (only.has('e2e') || only.has('e2e-split') || only.has('profile') || only.has('door') || only.has('ingest') || only.has('soak')) {
    const redis = await benchRedis(fsync);
    redisDescription = redis.description;
    const load = new LoadGenerator();
    try {
      const httpEnv = { redisUrl: redis.url, load, token: await sourceToken(), workerConcurrency, policyDir: env.policyDir };
      if (only.has('e2e')) {
        progress('end to end over HTTP');
        rows.push(...(await endToEndStage(httpEnv, budget, ceiling!, 'in-process')));
      }
      if (only.has('e2e-split')) {
        progress('end to end, api and worker processes');
        rows.push(...(await endToEndStage(httpEnv, budget, ceiling!, 'split')));
      }
      if (only.has('profile')) {
        progress('CPU profiles of the api and worker processes under the end-to-end load');
        profile = await profileStage(httpEnv, budget);
      }
      if (only.has('door')) {
        progress('ingest steps one by one');
        rows.push(...(await doorStage(redis.url, budget)));
      }
      if (only.has('ingest')) {
        progress('ingest vs express echo, p99 at half rate');
        rows.push(...(await ingestStage(httpEnv, budget)));
      }
      if (only.has('soak')) {
        progress(`memory soak, ${soakSeconds} s at ${soakRate} dossiers/s`);
        rows.push(...(await soakStage(httpEnv, soakSeconds, soakRate)));
      }
    } finally {
      await load.close();
      await redis.stop();
    }
  }

  await rm(env.stateDir, { recursive: true, force: true });
  const seconds = (Date.now() - t0) / 1000;
  console.log(`\nCordon bench ${quick ? '(quick) ' : ''}— ${startedAt}, ${seconds.toFixed(0)} s, ${budget.rounds} rounds per figure (median, min–max)`);
  if (redisDescription) console.log(`Redis: ${redisDescription}`);
  console.log('');
  console.log(table(rows));
  const over = rows.filter((r) => r.ok === false);
  if (profile) {
    console.log(`\nWhere the CPU goes: --cpu-prof of the api and worker processes, ${profile.dossiers} M dossiers end to end (main thread sampled; a stage is the innermost gateway module or library on the stack)\n`);
    console.log(profileTable(profile));
  }
  console.log(`\n${rows.filter((r) => r.ok).length} targets met, ${over.length} over${over.length ? ': ' + over.map((r) => `${r.stage} (${r.size})`).join('; ') : ''}.`);
  const file = await writeResults(ROOT, rows, {
    startedAt,
    quick,
    seconds,
    rounds: budget.rounds,
    workerConcurrency,
    redis: redisDescription,
    ...(profile ? { profile: profileJson(profile) } : {}),
  });
  console.log(`Written to ${path.relative(process.cwd(), file)}`);
}

/** The profile as the results file keeps it: ms per dossier by stage and process. */
function profileJson(p: ProfileReport) {
  return {
    dossiers: p.dossiers,
    cpuPerDossier: p.cpuPerDossier,
    mainThreadCpuPerDossier: p.mainCpuPerDossier,
    processes: Object.fromEntries(
      Object.entries(p.processes).map(([name, x]) => [
        name,
        {
          // Shares of the main thread's samples (ms per dossier = share × mainThreadCpuPerDossier).
          stages: Object.fromEntries([...x.stages].sort((a, b) => b[1] - a[1]).map(([s, ms]) => [s, ms / x.mainMs])),
          functions: x.functions.map((f) => ({ name: f.name, share: f.ms / x.mainMs })),
        },
      ]),
    ),
  };
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(`bench: ${err.stack ?? err.message}`);
    process.exit(1);
  },
);
