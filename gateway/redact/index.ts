export { redact, type RedactContext, type RedactResult, type Disclosure } from './redact.js';
export { compileProjection, type Projection, type ProjectionEnv } from './projection.js';
export * as values from './values.js';
