/**
 * The policy module: load a policy directory (the only I/O), decide per partner and dossier, and
 * the pieces the CLI and tests use. Pure after loading.
 */
export { loadPolicySet, loadPolicyTests, canonicalPath, revisionOf } from './load.js';
export { Decider, checkAgreement, type DeciderOptions } from './decide.js';
export { mostRestrictive, describeOp } from './restrictiveness.js';
export { dossierFacts, subjectFacts, type DossierFacts, type SubjectFacts } from './facts.js';
export { evaluateCondition } from './condition.js';
export { runPolicyTest, runPolicyTests, resolvePointer, valuesAt, type PolicyTest, type PolicyTestResult } from '../governance/testing.js';
export type * from './types.js';
