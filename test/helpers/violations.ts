/**
 * Responses of this test file that broke the OpenAPI description (recorded by test/helpers/openapi.ts),
 * not yet reported. Its own small module so that setup.ts, loaded for every test file, stays light.
 */
export const violations: string[] = [];

/** Takes the violations recorded so far. */
export function takeViolations(): string[] {
  return violations.splice(0, violations.length);
}
