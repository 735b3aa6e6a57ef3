/**
 * Loading the policy tests: `<dir>/tests/*.yaml` (see testing.ts for the format), each with its
 * dossier, either a file inside the policy directory or `example:<name>`, one of the example dossiers
 * shipped in examples/ at the repository root.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { GatewayError } from '../errors/index.js';
import { validateDossier } from '../dossier/validate.js';
import type { Dossier } from '../dossier/types.js';
import { listYaml, parseYaml, readText, type Loaded } from '../policy/files.js';
import { getValidators, Problems, schemaProblems } from '../policy/schema-check.js';
import type { PolicyTest } from './testing.js';

/** Where `example:<name>` dossiers of policy tests live. */
const EXAMPLE_DOSSIER_DIR = new URL('../../examples/', import.meta.url);

/**
 * Read `<dir>/tests/*.yaml` (see testing.ts for the format) with their dossiers. A missing tests
 * directory is no tests. Every problem is collected into one `policy_invalid` error.
 */
export async function loadPolicyTests(dir: string): Promise<PolicyTest[]> {
  const v = await getValidators();
  const root = path.resolve(dir);
  const problems = new Problems();
  const tests: PolicyTest[] = [];
  const scratch: Loaded[] = [];
  for (const name of (await listYaml(root, 'tests')) ?? []) {
    const rel = `tests/${name}`;
    const text = await readText(root, rel, scratch, problems);
    if (text === undefined) continue;
    const doc = parseYaml(rel, text, problems);
    if (doc === undefined) continue;
    const docs = Array.isArray(doc) ? doc : [doc];
    for (const [i, one] of docs.entries()) {
      const file = docs.length > 1 ? `${rel}[${i}]` : rel;
      if (!v.test(one)) {
        schemaProblems(file, v.test.errors, problems);
        continue;
      }
      const t = one as Omit<PolicyTest, 'file' | 'dossier' | 'dossierRef'> & { dossier: string };
      let dossierUrl: URL | string;
      if (t.dossier.startsWith('example:')) {
        dossierUrl = new URL(`${t.dossier.slice('example:'.length)}.json`, EXAMPLE_DOSSIER_DIR);
      } else {
        const abs = path.resolve(root, t.dossier);
        const r = path.relative(root, abs);
        if (r.startsWith('..') || path.isAbsolute(r)) {
          problems.add(file, 'dossier', 'must be inside the policy directory');
          continue;
        }
        dossierUrl = abs;
      }
      let dossier: Dossier;
      try {
        dossier = JSON.parse(await readFile(dossierUrl, 'utf8')) as Dossier;
      } catch (err) {
        problems.add(file, 'dossier', `cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        continue;
      }
      try {
        // A test on a dossier the gateway would refuse at the door proves nothing.
        dossier = validateDossier(dossier);
      } catch (err) {
        if (!(err instanceof GatewayError)) throw err;
        for (const d of err.details ?? [{ message: err.message }]) problems.add(file, 'dossier', `${t.dossier}${d.path ? d.path : ''}: ${d.message}`);
        continue;
      }
      const test: PolicyTest = { file, name: t.name, dossierRef: t.dossier, dossier, partner: t.partner, expect: t.expect };
      if (t.description !== undefined) test.description = t.description;
      if (t.now !== undefined) test.now = t.now;
      if (t.step !== undefined) test.step = t.step;
      tests.push(test);
    }
  }
  if (problems.list.length > 0) {
    const n = problems.list.length;
    throw new GatewayError('policy_invalid', `${n} problem${n === 1 ? '' : 's'} in the policy tests`, problems.list);
  }
  return tests;
}
