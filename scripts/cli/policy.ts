/**
 * `cordon policy lint|test|preview|diff`: the governance team's tools on a policy directory. All of them
 * work offline on files (no gateway, no Redis); `POST /v1/preview` is the same preview on the live set.
 */
import { execFile, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, readFile, realpath, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseRecipientKey } from '../../gateway/crypto/openpgp.js';
import { GatewayError } from '../../gateway/errors/index.js';
import type { Dossier } from '../../gateway/dossier/types.js';
import { validateDossier } from '../../gateway/dossier/validate.js';
import { Decider } from '../../gateway/policy/decide.js';
import { diffSets, isUnchanged, type PartnerDiff } from '../../gateway/governance/diff.js';
import { findingPlace, lintPolicies, type LintFinding } from '../../gateway/governance/lint.js';
import { loadPolicyTests } from '../../gateway/governance/policy-tests.js';
import { loadPolicySet } from '../../gateway/policy/load.js';
import { buildPreview, type Preview } from '../../gateway/governance/preview.js';
import { coverage, runPolicyTests } from '../../gateway/governance/testing.js';
import type { PolicySet, TraceEntry } from '../../gateway/policy/types.js';
import { signatureLines, signatureReport, signerOptions, type SignatureReport } from './policy-sign.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const EXAMPLE_DOSSIERS = ['examples/dossier-full.json', 'examples/dossier-minimal.json'];

const out = (s = '') => process.stdout.write(s + '\n');

function parseNow(now: string | undefined): Date {
  if (now === undefined) return new Date();
  const d = new Date(/^\d{4}-\d{2}-\d{2}$/.test(now) ? `${now}T12:00:00Z` : now);
  if (Number.isNaN(d.getTime())) throw new GatewayError('config_invalid', `--now ${JSON.stringify(now)} is not a date (YYYY-MM-DD or an ISO date-time)`);
  return d;
}

/** Keys are checked now, or at --now when that is later (will the key still be valid then?). */
function keyTime(now: Date): Date {
  return now.getTime() > Date.now() ? now : new Date();
}

function fail(message: string): never {
  process.exitCode = 1;
  throw new GatewayError('config_invalid', message);
}

// ---- lint --------------------------------------------------------------------------------------

export async function policyLint(o: { policies: string; now?: string; signers?: string; quorum?: string; json?: boolean }): Promise<void> {
  const signers = await signerOptions(o);
  const result = await lintPolicies(o.policies, {
    now: parseNow(o.now),
    checkKey: async (armored, fingerprint, now) => parseRecipientKey(armored, fingerprint, keyTime(now)),
  });
  // Who signed this revision: shown, not an error (a set is linted before it is signed).
  const signatures = result.revision !== undefined ? await signatureReport(o.policies, await loadPolicySet(o.policies), signers).catch(() => undefined) : undefined;
  if (o.json) {
    out(JSON.stringify({ ...result, ...(signatures ? { signatures } : {}) }, null, 2));
  } else {
    const place = (f: LintFinding) => findingPlace(o.policies, f);
    const width = Math.min(60, Math.max(0, ...result.findings.map((f) => place(f).length)));
    for (const f of result.findings) {
      out(`${place(f).padEnd(width)}  ${f.severity.padEnd(7)}  ${f.location ? `${f.location}: ` : ''}${f.message}`);
    }
    if (result.findings.length > 0) out();
    const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;
    const loaded =
      result.revision !== undefined
        ? `revision ${result.revision}, ${plural(result.partners, 'partner')}, ${plural(result.sources, 'source')}, ${plural(result.tests, 'test')}`
        : 'the policy set does not load';
    out(`${result.errors > 0 ? 'FAILED' : 'ok'}: ${o.policies}: ${loaded}; ${plural(result.errors, 'error')}, ${plural(result.warnings, 'warning')}`);
    if (signatures) for (const l of signatureLines(signatures)) out(l);
  }
  if (result.errors > 0) process.exitCode = 1;
}

// ---- test --------------------------------------------------------------------------------------

async function loadSetOrExplain(dir: string, what: string): Promise<PolicySet> {
  try {
    return await loadPolicySet(dir);
  } catch (err) {
    if (err instanceof GatewayError && err.code === 'policy_invalid') {
      process.stderr.write(`cordon: ${what}: ${err.message} (run \`cordon policy lint --policies ${dir}\` for lines)\n`);
      for (const d of err.details ?? []) process.stderr.write(`  ${d.path ? d.path + ': ' : ''}${d.message}\n`);
      process.exitCode = 1;
      throw new GatewayError('policy_invalid', `${what} does not load`);
    }
    throw err;
  }
}

export async function policyTest(o: { policies: string; json?: boolean }): Promise<void> {
  const set = await loadSetOrExplain(o.policies, o.policies);
  const tests = await loadPolicyTests(o.policies);
  const results = await runPolicyTests(new Decider(set), tests);
  const cov = coverage(set.partners.values(), results);
  const failed = results.filter((r) => !r.passed);
  if (o.json) {
    out(JSON.stringify({ revision: set.revision, results: results.map(({ output: _o, ...r }) => r), coverage: cov }, null, 2));
  } else {
    out(`Policy tests in ${path.join(o.policies, 'tests')} against revision ${set.revision}\n`);
    for (const r of results) {
      out(`${r.passed ? 'PASS' : 'FAIL'}  ${r.file}  ${r.partner}: ${r.name}`);
      for (const f of r.failures) out(`        - ${f}`);
    }
    if (results.length === 0) out('(no tests)');
    out('\nCoverage: rules that fired in at least one test, per partner\n');
    const w = Math.max(...cov.map((c) => c.partner.length), 7);
    for (const c of cov) {
      const rules = c.rules.length === 0 ? 'no rules' : `${c.fired.length}/${c.rules.length} rules ${String(Math.round((100 * c.fired.length) / c.rules.length)).padStart(3)}%`;
      const never = c.rules.filter((n) => !c.fired.includes(n));
      const tests = `${c.tests} test${c.tests === 1 ? '' : 's'}`;
      out(`  ${c.partner.padEnd(w)}  ${rules.padEnd(18)}  ${tests.padEnd(8)}${never.length ? `  never fired: ${never.join(', ')}` : ''}`.trimEnd());
    }
    out(`\n${results.length} tests: ${results.length - failed.length} passed, ${failed.length} failed`);
  }
  if (failed.length > 0) process.exitCode = 1;
}

// ---- preview -----------------------------------------------------------------------------------

async function readDossier(file: string): Promise<Dossier> {
  let body: unknown;
  try {
    body = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    fail(`${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return validateDossier(body);
  } catch (err) {
    if (err instanceof GatewayError) {
      process.exitCode = 1;
      throw new GatewayError(err.code, `${file}: ${err.message}`, err.details);
    }
    throw err;
  }
}

function subjectLabel(t: TraceEntry, preview: Preview): string {
  const ref = preview.refs.find((r) => r.subjectIndex === t.subjectIndex)?.ref;
  return `subject #${t.subjectIndex ?? '?'}${t.subject ? ` ${t.subject}` : ''}${ref ? ` → ${ref}` : ' (not shared)'}`;
}

function printTrace(preview: Preview): void {
  const rows = preview.trace;
  const w1 = Math.min(40, Math.max(4, ...rows.map((t) => t.rule.length)));
  const w2 = Math.min(28, Math.max(9, ...rows.map((t) => t.op.length)));
  let group = '';
  for (const t of rows) {
    const g = t.scope === 'dossier' ? 'dossier' : subjectLabel(t, preview);
    if (g !== group) {
      out(`  ${g}`);
      group = g;
    }
    out(`    ${t.rule.padEnd(w1)}  ${t.op.padEnd(w2)}  ${t.path}${t.note ? `   (${t.note})` : ''}`);
  }
}

export async function policyPreview(o: { policies: string; dossier: string; partner: string; now?: string; json?: boolean }): Promise<void> {
  const set = await loadSetOrExplain(o.policies, o.policies);
  const dossier = await readDossier(o.dossier);
  if (!set.partners.has(o.partner)) fail(`no partner ${JSON.stringify(o.partner)} in ${o.policies} (partners: ${[...set.partners.keys()].join(', ')})`);
  const now = parseNow(o.now);
  const key = set.partners.get(o.partner)!.partner.key;
  let keyProblem: string | undefined;
  if (key.armored === undefined) keyProblem = `key file ${key.file} is missing`;
  else await parseRecipientKey(key.armored, key.fingerprint, keyTime(now)).catch((err: Error) => (keyProblem = err.message));
  const preview = await buildPreview({ set, decider: new Decider(set), dossier, partner: o.partner, now, ...(keyProblem ? { keyProblem } : {}) });
  if (o.json) {
    out(JSON.stringify(preview, null, 2));
    return;
  }
  out(`Preview: what ${o.partner} would receive of ${o.dossier}`);
  out(`policy revision ${preview.policy.revision}, agreement ${preview.agreement.reference} (review by ${preview.agreement.reviewBy}), at ${now.toISOString()}\n`);
  out('Recipients of this dossier (requests.checks, statutory conditions):');
  for (const r of preview.recipients) {
    const why = r.why
      ? [r.why.requested ? `requested: ${r.why.requested.checks.join(', ')} → ${r.why.requested.kinds.join(', ')}` : '', r.why.statutory ? `statutory: ${r.why.statutory.name} (${r.why.statutory.reason})` : ''].filter(Boolean).join('; ')
      : (r.reason ?? '');
    out(`  ${r.partner === o.partner ? '*' : ' '} ${r.partner.padEnd(24)} ${r.sent.padEnd(13)} ${why}`);
  }
  out();
  if (preview.sent.sent === 'not_requested' || preview.sent.sent === 'deferred') {
    out(`NOT SENT: ${o.partner} is ${preview.sent.sent} (${preview.sent.reason ?? ''}); below is what it would receive if it were\n`);
  }
  if (preview.blocked) out(`BLOCKED: ${preview.blocked.reason}: ${preview.blocked.message}\n`);
  else if (preview.match) {
    out(`Step 1, the match request (identifiers only; ${o.partner} answers hit or no trace per subject):`);
    out(JSON.stringify(preview.match.plaintext, null, 2));
    out();
    const when = preview.match.followUp === 'approval' ? 'once an officer of the force approves it' : 'at once';
    out(`Step 2, the disclosure that follows ${when}, for the subjects answered hit only (shown for all):`);
    out(JSON.stringify(preview.plaintext, null, 2));
    out();
  } else {
    out('Plaintext (inside the encrypted packet):');
    out(JSON.stringify(preview.plaintext, null, 2));
    out();
  }
  if (preview.trace.length > 0) {
    out('Decision trace (rule → operation → path):');
    printTrace(preview);
    out();
  }
  for (const n of preview.notes) out(`note: ${n}`);
}

// ---- diff --------------------------------------------------------------------------------------

const run = promisify(execFile);

/** `git archive <rev>` of the policy directory into a temporary directory. */
async function checkoutRev(rev: string, policies: string): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const abs = await realpath(policies).catch(() => fail(`${policies} does not exist`));
  const top = (await run('git', ['-C', abs, 'rev-parse', '--show-toplevel']).catch(() => fail(`${policies} is not inside a git repository`))).stdout.trim();
  const rel = path.relative(await realpath(top), abs).split(path.sep).join('/') || '.';
  await run('git', ['-C', top, 'rev-parse', '--verify', '--quiet', `${rev}^{commit}`]).catch(() => fail(`${JSON.stringify(rev)} is not a git revision`));
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'cordon-policy-rev-'));
  // Also on an early exit (output piped into `head`…): never leave a copy of the policies behind.
  const onExit = () => rmSync(tmp, { recursive: true, force: true });
  process.once('exit', onExit);
  const cleanup = async () => {
    process.off('exit', onExit);
    await rm(tmp, { recursive: true, force: true });
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const git = spawn('git', ['-C', top, 'archive', '--format=tar', rev, '--', rel], { stdio: ['ignore', 'pipe', 'pipe'] });
      const tar = spawn('tar', ['-x', '-C', tmp], { stdio: ['pipe', 'ignore', 'pipe'] });
      let errors = '';
      git.stderr.on('data', (d) => (errors += d));
      tar.stderr.on('data', (d) => (errors += d));
      git.stdout.pipe(tar.stdin);
      let pending = 2;
      const done = (code: number | null) => {
        if (code !== 0) reject(new Error(errors.trim() || `git archive ${rev} failed`));
        else if (--pending === 0) resolve();
      };
      git.on('close', done);
      tar.on('close', done);
      git.on('error', reject);
      tar.on('error', reject);
    });
  } catch (err) {
    await cleanup();
    fail(`cannot read ${rel} at ${rev}: ${(err as Error).message}`);
  }
  return { dir: path.join(tmp, rel), cleanup };
}

function cell(s: string, w: number): string {
  return s.length > w ? s.slice(0, w - 1) + '…' : s.padEnd(w);
}

function printPartnerDiff(d: PartnerDiff): void {
  if (isUnchanged(d)) {
    out(`  ${d.partner}: no change`);
    return;
  }
  out(`  ${d.partner}:`);
  const w0 = Math.max(34, ...d.paths.map((c) => c.path.length));
  const w = 22;
  out(`      ${''.padEnd(w0)}  ${cell('from', w)}  to`);
  if (d.delivery) out(`    ! ${cell('delivery', w0)}  ${cell(d.delivery.from, w)}  ${d.delivery.to}`);
  if (d.subjects) out(`    ! ${cell('subjects shared', w0)}  ${cell(d.subjects.from.join(', ') || '(none)', w)}  ${d.subjects.to.join(', ') || '(none)'}`);
  // When one side shares nothing at all, the whole list says no more than the delivery line.
  if (d.delivery && (d.from.paths.size === 0 || d.to.paths.size === 0) && d.paths.length > 0) {
    const gained = d.from.paths.size === 0;
    out(`    ${gained ? '+' : '-'} ${cell(`every path (${d.paths.length})`, w0)}  ${cell(gained ? '·' : 'shared', w)}  ${gained ? 'shared' : '·'}`);
    return;
  }
  for (const c of d.paths) {
    const mark = c.change === 'gained' ? '+' : c.change === 'lost' ? '-' : '~';
    out(`    ${mark} ${cell(c.path, w0)}  ${cell(c.from ?? '·', w)}  ${c.to ?? '·'}`);
  }
}

export async function policyDiff(o: { policies: string; from?: string; fromRev?: string; to?: string; dossier?: string[]; now?: string; signers?: string; quorum?: string; json?: boolean }): Promise<void> {
  if ((o.from === undefined) === (o.fromRev === undefined)) fail('name exactly one of --from DIR or --from-rev GITREV');
  const signers = await signerOptions(o);
  const toDir = o.to ?? o.policies;
  let fromDir = o.from!;
  let cleanup: (() => Promise<void>) | undefined;
  if (o.fromRev !== undefined) {
    const c = await checkoutRev(o.fromRev, o.policies);
    fromDir = c.dir;
    cleanup = c.cleanup;
  }
  try {
    const fromLabel = o.fromRev !== undefined ? `${o.fromRev}:${path.relative(process.cwd(), o.policies) || '.'}` : fromDir;
    const from = await loadSetOrExplain(fromDir, `--from ${fromLabel}`);
    const to = await loadSetOrExplain(toDir, `--to ${toDir}`);
    const signed: { from: SignatureReport; to: SignatureReport } = { from: await signatureReport(fromDir, from, signers), to: await signatureReport(toDir, to, signers) };
    const now = parseNow(o.now);
    const files = o.dossier && o.dossier.length > 0 ? o.dossier : EXAMPLE_DOSSIERS.map((f) => path.join(ROOT, f));
    const report: Array<{ dossier: string; partners: PartnerDiff[] }> = [];
    for (const file of files) report.push({ dossier: file, partners: await diffSets(from, to, await readDossier(file), now) });
    if (o.json) {
      const plain = (v: PartnerDiff['from']) => ({ ...v, paths: Object.fromEntries(v.paths) });
      out(JSON.stringify({ from: { dir: fromLabel, revision: from.revision, signatures: signed.from }, to: { dir: toDir, revision: to.revision, signatures: signed.to }, dossiers: report.map((r) => ({ ...r, partners: r.partners.map((p) => ({ ...p, from: plain(p.from), to: plain(p.to) })) })) }, null, 2));
      return;
    }
    out(`Policy diff at ${now.toISOString()}`);
    out(`  from  ${from.revision}  ${fromLabel}`);
    for (const l of signatureLines(signed.from)) out(`        ${l}`);
    out(`  to    ${to.revision}  ${toDir}`);
    for (const l of signatureLines(signed.to)) out(`        ${l}`);
    if (from.revision === to.revision) out('  (the same revision: nothing can differ)');
    out('  + gained   - lost   ~ operation changed   ! delivery or subjects changed   · not shared');
    for (const r of report) {
      out(`\n${path.relative(process.cwd(), r.dossier) || r.dossier}`);
      for (const d of r.partners) printPartnerDiff(d);
    }
    const changed = report.reduce((n, r) => n + r.partners.filter((p) => !isUnchanged(p)).length, 0);
    out(`\n${changed === 0 ? 'No partner sees anything different.' : `${changed} partner view${changed === 1 ? '' : 's'} changed.`}`);
  } finally {
    await cleanup?.();
  }
}
