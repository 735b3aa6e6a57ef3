/**
 * Loaded before every test file (vitest.config.ts `setupFiles`): a test whose gateway answered anything
 * the OpenAPI description does not allow fails, naming each response and what was wrong with it.
 * Responses made in a file's own hooks are reported at the end of the file.
 */
import { afterAll, afterEach } from 'vitest';
import { takeViolations } from './violations.js';

function failOnViolations(when: string): void {
  const found = takeViolations();
  if (found.length === 0) return;
  const counts = new Map<string, number>();
  for (const v of found) counts.set(v, (counts.get(v) ?? 0) + 1);
  const lines = [...counts].map(([v, n]) => (n > 1 ? `${v} (×${n})` : v));
  throw new Error(
    `${found.length} response(s) ${when} broke the OpenAPI description (schemas/openapi.yaml; fix the description, or the code if it is wrong):\n  - ${lines.join('\n  - ')}`,
  );
}

afterEach(() => failOnViolations('in this test'));
afterAll(() => failOnViolations("in this file's hooks"));
