/**
 * `cordon policy lint|test|preview|diff|sign` as a governance user runs them: a child process on real files,
 * exit codes and what is printed.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/gateway.js';
import { copyPolicies } from '../helpers/policies.js';

function cordon(...args: string[]) {
  const res = spawnSync(process.execPath, [path.join(ROOT, 'scripts/cordon.mjs'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

let copy: Awaited<ReturnType<typeof copyPolicies>>;
beforeAll(async () => {
  copy = await copyPolicies();
});
afterAll(async () => {
  await copy?.cleanup();
});

const SAMPLE = path.join(ROOT, 'policies');

describe('cordon policy lint', () => {
  it('passes the sample policies', () => {
    const res = cordon('policy', 'lint', '--policies', SAMPLE, '--now', '2026-11-21');
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^ok: .*revision [0-9a-f]{16}, 7 partners, 1 source, \d+ tests; 0 errors, 0 warnings$/m);
  });

  it('reports problems at file:line:column, fails on errors and not on warnings', async () => {
    const dvla = path.join(copy.dir, 'partners/dvla.yaml');
    const original = await readFile(dvla, 'utf8');
    const lines = original.split('\n');
    const colourLine = lines.findIndex((l) => l.includes('subjects[].vehicles[].colour: keep')) + 1;
    await writeFile(dvla, original.replace('  subjects[].vehicles[].colour: keep', '  subjects[].vehicles[].colour: keep\n  subjects[].vehicles[].shade: keep'));
    let res = cordon('policy', 'lint', '--policies', copy.dir, '--now', '2026-11-21');
    expect(res.code).toBe(1);
    expect(res.stdout).toContain(`${path.join(copy.dir, 'partners/dvla.yaml')}:${colourLine + 1}:3`);
    expect(res.stdout).toMatch(/error\s+fields\."subjects\[\]\.vehicles\[\]\.shade": no such field in the dossier schema/);
    expect(res.stdout).toMatch(/^FAILED: .*the policy set does not load; 1 error, 0 warnings$/m);

    // A review date 10 days ahead is a warning only.
    await writeFile(dvla, original.replace(/reviewBy: "[0-9-]+"/, 'reviewBy: "2026-12-01"'));
    res = cordon('policy', 'lint', '--policies', copy.dir, '--now', '2026-11-21');
    expect(res.code, res.stdout).toBe(0);
    expect(res.stdout).toMatch(/dvla\.yaml:\d+:3\s+warning\s+agreement\.reviewBy: agreement ISA-WMP-DVLA-2025-02 is due for review by 2026-12-01 \(10 days left\)/);

    // A missing key is an error.
    await writeFile(dvla, original);
    await rm(path.join(copy.dir, 'keys/dvla.asc'));
    res = cordon('policy', 'lint', '--policies', copy.dir, '--json');
    expect(res.code).toBe(1);
    const json = JSON.parse(res.stdout);
    expect(json.findings).toContainEqual(expect.objectContaining({ severity: 'error', file: 'partners/dvla.yaml', location: 'partner.key.file', line: 7, column: 5 }));
    await copy.cleanup();
    copy = await copyPolicies();
  });
});

describe('cordon policy test', () => {
  it('runs the sample tests with a coverage figure per partner', () => {
    const res = cordon('policy', 'test', '--policies', SAMPLE);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^PASS {2}tests\/dvla-full\.yaml {2}dvla: /m);
    for (const p of ['childrens-services', 'council-housing', 'dvla', 'dwp-benefits', 'hmrc', 'immigration-enforcement']) {
      expect(res.stdout).toMatch(new RegExp(`^  ${p}\\s+(\\d+)/\\1 rules 100%`, 'm'));
    }
    expect(res.stdout).toMatch(/^\d+ tests: \d+ passed, 0 failed$/m);
  });

  it('fails, saying why, when a policy change breaks a test, and shows rules no test makes fire', async () => {
    const dvla = path.join(copy.dir, 'partners/dvla.yaml');
    const original = await readFile(dvla, 'utf8');
    // Someone "simplifies" DVLA's policy: full addresses, and the victims rule removed.
    const edited = original
      .replace('subjects[].addresses[]: { op: generalise, to: postcode }', 'subjects[].addresses[].line1: keep\n  subjects[].addresses[].postcode: keep')
      .replace(/\n {2}- name: no-victims-or-witnesses[\s\S]*$/, '\n');
    await writeFile(dvla, edited);
    await writeFile(path.join(copy.dir, 'partners/hmrc.yaml'), (await readFile(path.join(copy.dir, 'partners/hmrc.yaml'), 'utf8')) + `
  - name: high-threat-only
    when: dossier
    conditions:
      all:
        - { fact: threatBand, operator: equal, value: A }
    then:
      set:
        group.name: strip
`);
    const res = cordon('policy', 'test', '--policies', copy.dir);
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(/^FAIL {2}tests\/dvla-full\.yaml {2}dvla: /m);
    expect(res.stdout).toContain('subjects[].addresses[].line1: expected to be absent');
    expect(res.stdout).toContain('/subjects/2: expected to be absent, but it is present');
    expect(res.stdout).toMatch(/^ {2}hmrc\s+2\/3 rules {2}67%.*never fired: high-threat-only$/m);
    // The victims rule's own test fails too: the witness and the victim reach DVLA.
    expect(res.stdout).toMatch(/^FAIL {2}tests\/victims-and-witnesses\.yaml\[1\] {2}dvla: /m);
    expect(res.stdout).toMatch(/^\d+ tests: \d+ passed, 2 failed$/m);
    await copy.cleanup();
    copy = await copyPolicies();
  });

  it('refuses to run on a set that does not load', async () => {
    await writeFile(path.join(copy.dir, 'partners/dvla.yaml'), 'partner: [');
    const res = cordon('policy', 'test', '--policies', copy.dir);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('partners/dvla.yaml');
    await copy.cleanup();
    copy = await copyPolicies();
  });
});

describe('cordon policy preview', () => {
  it('prints what the partner would receive and the decision trace', () => {
    const res = cordon('policy', 'preview', '--dossier', 'examples/dossier-full.json', '--partner', 'immigration-enforcement', '--policies', SAMPLE);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('"id": "ref_preview_1"');
    expect(res.stdout).toContain('"nationality": "GB"');
    expect(res.stdout).not.toContain('Popescu');
    expect(res.stdout).toMatch(/subject #2 S3 \(not shared\)\n\s+never-victims-or-witnesses\s+exclude\s+subjects\[\]/);
  });

  it('gives the API answer with --json, and says why for a blocked delivery', () => {
    const res = cordon('policy', 'preview', '--dossier', 'examples/dossier-minimal.json', '--partner', 'childrens-services', '--policies', SAMPLE, '--json');
    expect(res.code).toBe(0);
    const json = JSON.parse(res.stdout);
    expect(json.blocked.reason).toBe('no_shareable_subjects');
    expect(json.plaintext).toBeNull();
  });

  it('refuses an unknown partner and an invalid dossier with its paths', async () => {
    const unknown = cordon('policy', 'preview', '--dossier', 'examples/dossier-full.json', '--partner', 'mi5', '--policies', SAMPLE);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no partner "mi5"/);
    const bad = path.join(copy.dir, 'bad.json');
    const full = JSON.parse(await readFile(path.join(ROOT, 'examples/dossier-full.json'), 'utf8'));
    full.subjects[0].dateOfBirth = '12/04/1987';
    await writeFile(bad, JSON.stringify(full));
    const res = cordon('policy', 'preview', '--dossier', bad, '--partner', 'dvla', '--policies', SAMPLE);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('/subjects/0/dateOfBirth');
  });
});

describe('cordon policy diff', () => {
  it('shows the paths each partner gains or loses between two directories', async () => {
    const dvla = path.join(copy.dir, 'partners/dvla.yaml');
    await writeFile(
      dvla,
      (await readFile(dvla, 'utf8'))
        .replace('  subjects[].vehicles[].colour: keep\n', '')
        .replace('subjects[].addresses[]: { op: generalise, to: postcode }', 'subjects[].addresses[]: { op: generalise, to: town }'),
    );
    const hmrc = path.join(copy.dir, 'partners/hmrc.yaml');
    await writeFile(hmrc, (await readFile(hmrc, 'utf8')).replace(/reviewBy: "[0-9-]+"/, 'reviewBy: "2026-11-01"'));
    const res = cordon('policy', 'diff', '--from', SAMPLE, '--to', copy.dir, '--now', '2026-11-21');
    expect(res.code, res.stderr).toBe(0);
    const full = res.stdout.slice(res.stdout.indexOf('dossier-full.json'), res.stdout.indexOf('dossier-minimal.json'));
    expect(full).toMatch(/^ {2}dvla:$/m);
    expect(full).toMatch(/^ {4}- subjects\[\]\.addresses\[\]\.postcode\s+generalise:postcode\s+·$/m);
    expect(full).toMatch(/^ {4}\+ subjects\[\]\.addresses\[\]\.town\s+·\s+generalise:town$/m);
    expect(full).toMatch(/^ {4}- subjects\[\]\.vehicles\[\]\.colour\s+keep\s+·$/m);
    expect(full).toMatch(/^ {4}! delivery\s+shared\s+blocked \(agreement_expired\)$/m);
    expect(full).toMatch(/^ {4}! subjects shared\s+S1, S2\s+\(none\)$/m);
    expect(full).toMatch(/^ {4}- every path \(\d+\)\s+shared\s+·$/m);
    expect(full).toMatch(/^ {2}council-housing: no change$/m);
    expect(res.stdout).toMatch(/\d+ partner views? changed\./);
  });

  it('compares with the policies committed at a git revision', () => {
    const res = cordon('policy', 'diff', '--from-rev', 'HEAD', '--policies', SAMPLE, '--now', '2026-11-21');
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^ {2}from {2}[0-9a-f]{16} {2}HEAD:policies$/m);
    const bad = cordon('policy', 'diff', '--from-rev', 'no-such-rev', '--policies', SAMPLE);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/not a git revision/);
  });
});

describe('cordon policy sign, and who signed in lint and diff', () => {
  const KEYS = path.join(ROOT, 'test/fixtures/keys');
  const FPS = JSON.parse(readFileSync(path.join(KEYS, 'fingerprints.json'), 'utf8')) as Record<string, string>;

  it('signs the revision, co-signs the same manifest, starts a new sequence after an edit; lint and diff say who signed and whether the quorum is met', async () => {
    const own = await copyPolicies();
    const dir = own.dir;
    const signers = path.join(os.tmpdir(), `cordon-cli-signers-${process.pid}.asc`);
    await writeFile(signers, readFileSync(path.join(KEYS, 'governance.asc'), 'utf8') + readFileSync(path.join(KEYS, 'intruder.asc'), 'utf8'));
    try {
      let res = cordon('policy', 'lint', '--policies', dir, '--signers', signers);
      expect(res.code, res.stdout + res.stderr).toBe(0); // unsigned is shown, not an error: a set is linted before it is signed
      expect(res.stdout).toMatch(/^signatures: none, 0 valid of 1 required: quorum NOT met \(this revision would be refused\)$/m);

      res = cordon('policy', 'sign', '--policies', dir, '--key', path.join(KEYS, 'governance.sec.asc'));
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toMatch(new RegExp(`^signed revision ([0-9a-f]{16}) at sequence 1 as ${FPS.governance} \\(Governance Fixture`, 'm'));
      expect(readdirSync(path.join(dir, 'signatures')).sort()).toEqual([`1-${FPS.governance}.asc`, 'manifest.json']);

      res = cordon('policy', 'sign', '--policies', dir, '--key', path.join(KEYS, 'intruder.sec.asc'));
      expect(res.stdout).toMatch(/at sequence 1 as .*\n.*beside 1 other signature of this manifest/);
      res = cordon('policy', 'lint', '--policies', dir, '--signers', signers, '--quorum', '2');
      expect(res.stdout).toMatch(/^signatures: sequence 1, 2 valid of 2 required: quorum met$/m);
      expect(res.stdout).toContain(`  signed by ${FPS.governance} Governance Fixture (TEST KEY - not for real data) <governance@fixtures.cordon.test>`);
      expect(res.stdout).toContain(`  signed by ${FPS.intruder} Intruder Fixture`);
      // Without a signers file: who the signatures name, unverified.
      res = cordon('policy', 'lint', '--policies', dir);
      expect(res.stdout).toMatch(/^signatures: sequence 1, covers these files, signatures by key id [0-9A-F]{16}, [0-9A-F]{16} \(not verified: give --signers or CORDON_POLICY_SIGNERS\)$/m);

      // An edit voids the signatures; signing again starts sequence 2 and drops sequence 1's files.
      const dvla = path.join(dir, 'partners/dvla.yaml');
      await writeFile(dvla, (await readFile(dvla, 'utf8')).replace('  subjects[].vehicles[].colour: keep\n', ''));
      res = cordon('policy', 'diff', '--policies', dir, '--from', SAMPLE, '--signers', signers);
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toMatch(/^ {8}signatures: sequence 1, 2 valid of 1 required, but over other files: quorum NOT met \(this revision would be refused\)$/m);
      expect(res.stdout).toContain('  - partners/dvla.yaml changed since it was signed');
      res = cordon('policy', 'sign', '--policies', dir, '--key', path.join(KEYS, 'governance.sec.asc'));
      expect(res.stdout).toMatch(/at sequence 2 as /);
      expect(readdirSync(path.join(dir, 'signatures')).sort()).toEqual([`2-${FPS.governance}.asc`, 'manifest.json']);
      res = cordon('policy', 'diff', '--policies', dir, '--from', SAMPLE, '--signers', signers, '--json');
      const diff = JSON.parse(res.stdout);
      expect(diff.from.signatures).toMatchObject({ met: false, signers: [] });
      expect(diff.to.signatures).toMatchObject({ sequence: 2, covers: true, met: true, signers: [{ fingerprint: FPS.governance }] });

      // A sequence that does not grow is refused.
      res = cordon('policy', 'sign', '--policies', dir, '--key', path.join(KEYS, 'governance.sec.asc'), '--sequence', '1');
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/--sequence 1 must be above 2, the highest sequence already signed here/);
    } finally {
      await rm(signers, { force: true });
      await own.cleanup();
    }
  });
});
