/** `cordon policy isa` as governance runs it: a child process on real policy files, its output and exit code. */
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/gateway.js';
import { copyPolicies } from '../helpers/policies.js';

function cordon(...args: string[]) {
  const res = spawnSync(process.execPath, [path.join(ROOT, 'scripts/cordon.mjs'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

/** The text of one `## ` section of the Markdown document. */
function section(md: string, heading: string): string {
  const start = md.indexOf(`## ${heading}`);
  expect(start, heading).toBeGreaterThanOrEqual(0);
  const end = md.indexOf('\n## ', start + 3);
  return md.slice(start, end < 0 ? undefined : end);
}

let copy: Awaited<ReturnType<typeof copyPolicies>>;
beforeAll(async () => {
  copy = await copyPolicies();
});
afterAll(async () => {
  await copy?.cleanup();
});

describe('cordon policy isa', () => {
  it('prints the agreement with dvla', () => {
    const res = cordon('policy', 'isa', '--partner', 'dvla', '--policies', path.join(ROOT, 'policies'), '--now', '2026-11-21');
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^# Information Sharing Agreement ISA-WMP-DVLA-2025-02/);
    expect(section(res.stdout, '4. Data items')).toContain('vehicle colour as recorded');
    expect(res.stdout).toContain('## 11. Signatories');
  });

  it('changes the data items when dvla.yaml changes a field', async () => {
    const dvla = path.join(copy.dir, 'partners/dvla.yaml');
    const before = section(cordon('policy', 'isa', '--partner', 'dvla', '--policies', copy.dir).stdout, '4. Data items');
    const original = await readFile(dvla, 'utf8');
    await writeFile(dvla, original.replace('  subjects[].dateOfBirth: keep', '  subjects[].dateOfBirth: { op: generalise, to: year }'));
    const res = cordon('policy', 'isa', '--partner', 'dvla', '--policies', copy.dir);
    expect(res.code, res.stderr).toBe(0);
    const after = section(res.stdout, '4. Data items');
    expect(before).toContain('date of birth as recorded (`subjects[].dateOfBirth`)');
    expect(after).toContain('date of birth reduced to the year (`subjects[].dateOfBirth`)');
    expect(after).not.toEqual(before);
  });

  it('renders HTML without script', () => {
    const res = cordon('policy', 'isa', '--partner', 'hmrc', '--format', 'html', '--policies', path.join(ROOT, 'policies'));
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^<!doctype html>/);
    expect(res.stdout).not.toMatch(/<script/i);
    expect(res.stdout).toContain('date of birth reduced to the year');
  });

  it('fails clearly on an unknown partner or format', () => {
    let res = cordon('policy', 'isa', '--partner', 'nobody', '--policies', path.join(ROOT, 'policies'));
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toContain('no partner "nobody" in the policy set (partners: childrens-services, council-housing, dvla');
    res = cordon('policy', 'isa', '--partner', 'dvla', '--format', 'pdf', '--policies', path.join(ROOT, 'policies'));
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('--format "pdf": use md or html');
  });
});
