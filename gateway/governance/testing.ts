/**
 * Policy tests (policies/tests/*.yaml): a dossier in, and what must and must not come out for one
 * partner. Loaded by loadPolicyTests (load.ts, the I/O); run here, purely.
 *
 *   name: dvla never sees PNC ids
 *   dossier: example:dossier-full        # examples/<name>.json, or a .json path relative to the policy dir
 *   partner: dvla
 *   now: 2026-11-21T12:00:00Z            # optional (default: the time of the run)
 *   expect:
 *     blocked: no_shareable_subjects     # optional: the delivery must be blocked for this reason
 *     present:                           # JSON Pointer → value, or true (any value)
 *       /subjects/0/vehicles/0/vrm: AB12 CDE
 *       /packet/handling/code: C
 *     absent:                            # JSON Pointers, or policy paths (every match must be absent)
 *       - subjects[].identifiers.pnc
 *       - /packet/handling/conditions
 *     absentValues:                      # strings that must appear nowhere in the whole plaintext
 *       - DS Priya Raman
 *
 * The tests run over the whole plaintext the partner would decrypt, `{packet, dossier}`, built with the
 * fan-out's own header builder (pipeline/disclose.ts): pointers starting with `/packet/` address the
 * header, `/dossier/…` the redacted dossier, and any other pointer (and every policy path) the dossier
 * too; absentValues scans header and dossier. Subject refs in the output are `ref-1`, `ref-2`… by the
 * subject's position in the input dossier.
 *
 * With `step: match` (a partner under an after-match agreement) the test runs over the match request
 * instead, `{match, subjects: [{ref, …identifiers}]}` (policy/match.ts): pointers address it whole
 * (`/match/agreement/reference`, `/subjects/0/dateOfBirth`), policy paths its subjects.
 */
import { createHash } from 'node:crypto';
import type { Dossier } from '../dossier/types.js';
import { matchDocument, packetHeader } from '../pipeline/disclose.js';
import { isAfterMatch, matchPlan } from '../policy/match.js';
import { redact } from '../redact/redact.js';
import { stableJson } from '../policy/condition.js';
import type { Decider } from '../policy/decide.js';
import type { Block } from '../policy/types.js';
import { chooseRecipients } from '../policy/recipients.js';

type Sent = 'requested' | 'statutory' | 'not_requested' | 'deferred';

/** How the test's dossier reaches its partner, and why when it does not. */
function sentTo(decider: Decider, test: PolicyTest): { sent: Sent; reason?: string } {
  const choice = chooseRecipients(test.dossier, decider.policySet);
  const r = choice.recipients.find((x) => x.partner === test.partner);
  if (r) return { sent: r.why.statutory ? 'statutory' : 'requested' };
  const n = choice.notSent.find((x) => x.partner === test.partner);
  return { sent: n?.state ?? 'not_requested', reason: n?.reason ?? 'not a configured partner' };
}

interface PolicyTestExpect {
  /** How the dossier reaches the partner (policy/recipients.ts); without it, it must reach it. */
  sent?: Sent;
  blocked?: Block['reason'];
  present?: Record<string, unknown>;
  absent?: string[];
  absentValues?: string[];
}

export interface PolicyTest {
  /** Relative path of the test file. */
  file: string;
  name: string;
  description?: string;
  /** As written: `example:<name>` or a path relative to the policy directory. */
  dossierRef: string;
  dossier: Dossier;
  partner: string;
  now?: string;
  /** After-match partners: the match request (`match`) or the disclosure after a hit (`disclosure`, the default). */
  step?: 'match' | 'disclosure';
  expect: PolicyTestExpect;
}

export interface PolicyTestResult {
  file: string;
  name: string;
  partner: string;
  passed: boolean;
  failures: string[];
  /** The redacted dossier, when the delivery was not blocked. */
  output?: Record<string, unknown>;
  /** The whole plaintext (`{packet, dossier}`), when the delivery was not blocked. */
  plaintext?: { packet: unknown; dossier: Record<string, unknown> };
  /** The rules whose conditions held for this test's dossier (for coverage). */
  fired: string[];
}

/** The packet ref a policy test gives subject i. */
function testRef(i: number): string {
  return `ref-${i + 1}`;
}

/** RFC 6901. Undefined when the pointer does not resolve. */
function resolvePointer(doc: unknown, pointer: string): unknown {
  if (pointer === '') return doc;
  if (!pointer.startsWith('/')) return undefined;
  let cur: unknown = doc;
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur)) {
      if (!/^(0|[1-9][0-9]*)$/.test(seg)) return undefined;
      cur = cur[Number(seg)];
    } else if (cur !== null && typeof cur === 'object' && Object.hasOwn(cur, seg)) {
      cur = (cur as Record<string, unknown>)[seg];
    } else {
      return undefined;
    }
  }
  return cur;
}

/** Every value found at a policy path (`subjects[].identifiers.pnc`) in a document. */
export function valuesAt(doc: unknown, policyPath: string): unknown[] {
  let current: unknown[] = [doc];
  for (const seg of policyPath.split('.')) {
    const array = seg.endsWith('[]');
    const name = array ? seg.slice(0, -2) : seg;
    const next: unknown[] = [];
    for (const v of current) {
      if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.hasOwn(v, name)) continue;
      const child = (v as Record<string, unknown>)[name];
      if (array && Array.isArray(child)) next.push(...child);
      else if (!array) next.push(child);
    }
    current = next;
  }
  return current.filter((v) => v !== undefined);
}

export async function runPolicyTest(decider: Decider, test: PolicyTest, now: Date = new Date()): Promise<PolicyTestResult> {
  const failures: string[] = [];
  const at = test.now !== undefined ? new Date(test.now) : now;
  const result: PolicyTestResult = { file: test.file, name: test.name, partner: test.partner, passed: false, failures, fired: [] };
  let decision;
  try {
    const { sent, reason } = sentTo(decider, test);
    if (test.expect.sent !== undefined && test.expect.sent !== sent) failures.push(`expected the dossier to reach ${test.partner} as "${test.expect.sent}", but it is "${sent}"${reason ? ` (${reason})` : ''}`);
    if (sent === 'not_requested' || sent === 'deferred') {
      if (test.expect.sent === undefined) failures.push(`the dossier does not reach ${test.partner}: ${sent} (${reason}); give it the checks it needs, or expect sent: ${sent}`);
      if (test.expect.present !== undefined && Object.keys(test.expect.present).length > 0) failures.push('expected values to be present, but nothing is sent');
      result.passed = failures.length === 0;
      return result;
    }
    decision = await decider.decide(test.partner, test.dossier, at);
  } catch (err) {
    failures.push(`decide failed: ${(err as Error).message}`);
    return result;
  }
  result.fired = [...(decision.fired ?? [])];
  const { expect } = test;
  if (expect.blocked !== undefined) {
    if (decision.block?.reason !== expect.blocked) {
      failures.push(`expected the delivery to be blocked (${expect.blocked}), but it was ${decision.block ? `blocked (${decision.block.reason})` : 'not blocked'}`);
    }
  } else if (decision.block !== undefined) {
    failures.push(`the delivery was blocked: ${decision.block.reason} (${decision.block.message})`);
  }
  if (decision.block === undefined) {
    const subjects = Array.isArray(test.dossier.subjects) ? test.dossier.subjects : [];
    const refs = new Map(subjects.map((s, i) => [s.id, testRef(i)]));
    const pseudonymKey = createHash('sha256').update(`cordon policy test\u0000${test.partner}`).digest();
    const policy = decider.policyOf(test.partner);
    const match = test.step === 'match';
    if (match && (!policy || !isAfterMatch(policy.agreement))) failures.push(`step: match, but ${test.partner} is not asked first (its agreement discloses immediately)`);
    const plan = match ? matchPlan(decision.plan, policy?.match ?? []) : decision.plan;
    const { dossier: out } = redact(test.dossier, plan, { refs, pseudonymKey });
    result.output = out;
    const retention = (policy?.agreement.retentionDays ?? 0) * 24 * 3600 * 1000;
    const headerInput = policy && { id: 'pkt_test', recipient: test.partner, issuedAt: at, expiresAt: new Date(at.getTime() + retention), dossier: test.dossier, revision: decision.revision, policy };
    const whole = { packet: headerInput && packetHeader(headerInput, out), dossier: out };
    const matchDoc = match && headerInput ? matchDocument(headerInput, out) : undefined;
    result.plaintext = whole;
    const text = JSON.stringify(matchDoc ?? whole);
    const lookup = (pointer: string): unknown =>
      resolvePointer(matchDoc ?? (pointer.startsWith('/packet/') || pointer.startsWith('/dossier/') ? whole : out), pointer);
    const target = matchDoc ?? out;
    for (const [pointer, want] of Object.entries(expect.present ?? {})) {
      const got = lookup(pointer);
      if (got === undefined) failures.push(`${pointer}: expected to be present, but it is absent`);
      else if (want !== true && stableJson(got) !== stableJson(want)) {
        failures.push(`${pointer}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
      }
    }
    for (const absent of expect.absent ?? []) {
      if (absent.startsWith('/')) {
        if (lookup(absent) !== undefined) failures.push(`${absent}: expected to be absent, but it is present`);
      } else if (valuesAt(target, absent).length > 0) {
        failures.push(`${absent}: expected to be absent, but ${valuesAt(target, absent).length} value(s) are present`);
      }
    }
    for (const value of expect.absentValues ?? []) {
      if (text.includes(JSON.stringify(value).slice(1, -1))) failures.push(`the value ${JSON.stringify(value)} appears in the output`);
    }
  } else {
    if (expect.present !== undefined && Object.keys(expect.present).length > 0) {
      failures.push('expected values to be present, but nothing was shared');
    }
  }
  result.passed = failures.length === 0;
  return result;
}

export async function runPolicyTests(decider: Decider, tests: PolicyTest[], now: Date = new Date()): Promise<PolicyTestResult[]> {
  const out: PolicyTestResult[] = [];
  for (const t of tests) out.push(await runPolicyTest(decider, t, now));
  return out;
}

interface PartnerCoverage {
  partner: string;
  /** Every rule of the partner's policy, in policy order. */
  rules: string[];
  /** The rules that fired in at least one test. */
  fired: string[];
  tests: number;
  passed: number;
}

/**
 * Per partner of the set: how many of its rules fired (their conditions held) in at least one of its
 * tests. A rule no test makes fire is a protection nothing proves.
 */
export function coverage(partners: Iterable<{ partner: { id: string }; rules: Array<{ name: string }> }>, results: PolicyTestResult[]): PartnerCoverage[] {
  const out: PartnerCoverage[] = [];
  for (const p of partners) {
    const mine = results.filter((r) => r.partner === p.partner.id);
    const fired = new Set(mine.flatMap((r) => r.fired));
    const rules = p.rules.map((r) => r.name);
    out.push({ partner: p.partner.id, rules, fired: rules.filter((n) => fired.has(n)), tests: mine.length, passed: mine.filter((r) => r.passed).length });
  }
  return out;
}
