/** Temporary copies of the sample policy directory, edited for one test, and a plain agreement for unit tests. */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import type { Agreement } from '../../gateway/policy/types.js';
import { ROOT } from './gateway.js';

/** An agreement in force on the unit tests' date (2026-11-21), for policies built in code. */
export const TEST_AGREEMENT: Readonly<Agreement> = {
  reference: 'ISA-T',
  parties: ['a', 'b'],
  purpose: 'p',
  legalBasis: 'l',
  dataItems: ['x'],
  owner: 'o',
  inForceFrom: '2025-01-01',
  reviewBy: '2027-01-31',
  retentionDays: 30,
  highestClassification: 'OFFICIAL-SENSITIVE',
  handlingCodes: ['P', 'C'],
};

export async function copyPolicies(): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cordon-policies-'));
  await cp(path.join(ROOT, 'policies'), dir, { recursive: true });
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Sets a value at a YAML path in a policy file, keeping the rest of the file as it is. */
export async function editYaml(file: string, at: (string | number)[], value: unknown): Promise<void> {
  const doc = YAML.parseDocument(await readFile(file, 'utf8'));
  doc.setIn(at, value);
  await writeFile(file, doc.toString());
}

/** `cordon policy sign --key <keyFile>` on `dir`, as governance runs it (a child process; the event loop stays free). */
export async function signPolicies(dir: string, keyFile: string, ...extra: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [path.join(ROOT, 'scripts/cordon.mjs'), 'policy', 'sign', '--policies', dir, '--key', keyFile, ...extra], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return stdout;
}
