/**
 * `cordon policy lint`: everything the loader refuses (schema, unknown paths, operations that do not
 * fit the field, unknown facts…) plus what loads but is almost certainly wrong or about to go wrong:
 *
 *  errors    an agreement past its review date (sharing under it has stopped), a legal basis that
 *            does not hold (legal-bases.ts: a citation the catalogue does not know, an exemption cited
 *            as a basis, a gateway that does not cover the recipient's kind, DPA 2018 Part 3 for a
 *            recipient that is not a competent authority, no gateway at all), a partner or source
 *            without a usable key (missing, wrong fingerprint, expired, revoked), a rule that can never
 *            fire (its conditions contradict each other, or hold only for dossiers the agreement
 *            refuses), a policy test naming a partner that does not exist, a handling-condition code
 *            an agreement honours (or a peer enforces) that gateway.yaml's vocabulary does not define;
 *  warnings  an agreement due for review within 90 days or not yet in force, `dataItems` and `fields`
 *            that disagree (data-items.ts), a key expiring within 30 days, a rule that changes nothing
 *            (its `set` only touches paths the base allowlist already strips, or asks for nothing
 *            stricter than the base), a partner no policy test covers, a rule that says
 *            `unknown: ignore` (it does not fire when a fact it reads is unknown), a `match` allowlist
 *            an immediate agreement never uses or naming an identifier `fields` does not grant.
 * Peer gateways' agreements (peers/*.yaml) are checked like partners': review date, legal basis (a
 * police force, a competent authority) and data items.
 *
 * Every finding carries the file and, where the file says it, a line and column. Reads the policy
 * directory (through the loader) and nothing else; key checks are injected (crypto/ owns openpgp).
 */
import { checkRequestTable } from './request-checks.js';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { GatewayError, type ErrorDetail } from '../errors/index.js';
import { stableJson } from '../policy/condition.js';
import { agreementStatus, REVIEW_WARN_DAYS } from '../policy/agreement.js';
import { applyGateway, applyRules } from '../policy/decide.js';
import { isAfterMatch } from '../policy/match.js';
import { gatewayFor } from '../policy/non-competent.js';
import { collectPolicySet } from '../policy/load.js';
import { loadPolicyTests } from './policy-tests.js';
import { explicitPosition, parseLocation, splitProblemPath, YamlLocator } from '../policy/locate.js';
import { isAncestor } from '../policy/paths.js';
import { basePlan, normalise, toOps } from '../policy/plan.js';
import { canHold } from '../policy/satisfiable.js';
import { compareDataItems } from './data-items.js';
import { assessLegalBasis, type Recipient } from './legal-bases.js';
import type { PolicyTest } from './testing.js';
import type { Agreement, Classification, GatewayRules, KeyRef, Operation, PartnerPolicy, PeerPolicy, PolicySet, Rule } from '../policy/types.js';

type Severity = 'error' | 'warning';

export interface LintFinding {
  severity: Severity;
  /** Relative to the policy directory (`partners/dvla.yaml`), or the directory itself. */
  file: string;
  line?: number;
  column?: number;
  /** Where in the file, in the loader's notation (`fields."subjects[].foo"`, `rules[0].conditions`). */
  location?: string;
  message: string;
}

interface LintResult {
  dir: string;
  /** Whether the gateway would load the set (no errors from the loader). */
  loads: boolean;
  /** The revision of the set, when it loads. */
  revision?: string;
  partners: number;
  sources: number;
  tests: number;
  findings: LintFinding[];
  errors: number;
  warnings: number;
}

/** Checks a partner's or source's key; resolves to its expiry (null: never), rejects with the reason. */
type KeyCheck = (armored: string, fingerprint: string, now: Date) => Promise<{ expiresAt: Date | null }>;

interface LintOptions {
  now?: Date;
  /** Without it keys are only checked for presence. */
  checkKey?: KeyCheck;
  /** How long before a key expiry to warn; default 30 days. */
  warnDays?: number;
  /**
   * How long before a review date to warn; default REVIEW_WARN_DAYS (90, policy/agreement.ts), the
   * threshold of the partnership toolkit's `review_due` too.
   */
  reviewWarnDays?: number;
}

const DAY_MS = 24 * 3600 * 1000;
const CLASSIFICATIONS: Classification[] = ['OFFICIAL', 'OFFICIAL-SENSITIVE'];

class Findings {
  readonly list: LintFinding[] = [];
  add(severity: Severity, file: string, location: string, message: string): void {
    const f: LintFinding = { severity, file, message };
    if (location !== '') f.location = location;
    this.list.push(f);
  }
  fromDetails(severity: Severity, details: ErrorDetail[] | undefined, fallback: string): void {
    for (const d of details ?? []) {
      const { file, docIndex, location } = splitProblemPath(d.path ?? fallback);
      // A test inside a file of several: its index leads the location (`[1].expect`).
      const where = docIndex === undefined ? location : `[${docIndex}]${location === '' || location.startsWith('line ') ? '' : `.${location}`}`;
      const f: LintFinding = { severity, file, message: d.message };
      if (where !== '') f.location = where;
      this.list.push(f);
    }
  }
}

// ---- agreements and keys -----------------------------------------------------------------------

function checkAgreement(p: { file: string; id: string; agreement: Agreement }, now: Date, warnDays: number, out: Findings): void {
  const a = p.agreement;
  const status = agreementStatus(a, now);
  if (status.state === 'not_in_force' && status.unreadable) return; // the loader reports malformed dates
  if (status.state === 'expired') {
    out.add('error', p.file, 'agreement.reviewBy', `agreement ${a.reference} was due for review by ${a.reviewBy}: sharing with ${p.id} has stopped until it is renewed`);
  } else if (status.daysLeft <= warnDays) {
    // Whole days left, counting the review day itself: on 21 November a review by 21 December is 30 days away.
    const days = status.daysLeft;
    out.add('warning', p.file, 'agreement.reviewBy', `agreement ${a.reference} is due for review by ${a.reviewBy} (${days} day${days === 1 ? '' : 's'} left): sharing stops after that date`);
  }
  if (status.state === 'not_in_force') {
    out.add('warning', p.file, 'agreement.inForceFrom', `agreement ${a.reference} is not in force until ${a.inForceFrom}: nothing is shared with ${p.id} before then`);
  }
}

/** The legal basis against the catalogue, and the data items against the fields granted. */
function checkBasisAndItems(file: string, agreement: Agreement, fields: Record<string, Operation>, recipient: Recipient, out: Findings): void {
  for (const problem of assessLegalBasis(agreement.legalBasis, recipient).problems) {
    out.add(problem.severity, file, 'agreement.legalBasis', `agreement ${agreement.reference} ${problem.message}`);
  }
  for (const f of compareDataItems(agreement.dataItems, fields)) out.add('warning', file, f.location, f.message);
}

async function checkKey(file: string, whose: string, key: KeyRef, where: string, o: Required<Pick<LintOptions, 'now' | 'warnDays'>> & LintOptions, out: Findings): Promise<void> {
  if (key.armored === undefined) {
    out.add('error', file, `${where}.file`, `key file ${key.file} is missing: ${whose}`);
    return;
  }
  if (o.checkKey === undefined) return;
  try {
    const { expiresAt } = await o.checkKey(key.armored, key.fingerprint, o.now);
    if (expiresAt !== null && expiresAt.getTime() - o.now.getTime() <= o.warnDays * DAY_MS) {
      out.add('warning', file, `${where}.file`, `key ${key.file} expires on ${expiresAt.toISOString().slice(0, 10)}: import a renewed key before then`);
    }
  } catch (err) {
    out.add('error', file, `${where}.fingerprint`, `key ${key.file} cannot be used: ${(err as Error).message}: ${whose}`);
  }
}

// ---- rules -------------------------------------------------------------------------------------

function opsOf(fields: PartnerPolicy['fields'], gateway: GatewayRules, rules: Rule[]): Map<string, string> {
  const plan = basePlan(fields);
  applyGateway(plan, gateway);
  applyRules(plan, rules);
  applyGateway(plan, gateway);
  // What is emitted: strip entries emit nothing (a strip that hides paths below it removes them here).
  return new Map(
    Object.entries(toOps(normalise(plan)))
      .filter(([, op]) => op.op !== 'strip')
      .map(([p, op]) => [p, stableJson(op)]),
  );
}

function sameOps(a: Map<string, string>, b: Map<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

function checkRules(p: PartnerPolicy, gateway: GatewayRules, out: Findings): void {
  const ceiling = CLASSIFICATIONS.indexOf(p.agreement.highestClassification);
  const accepted = { classification: CLASSIFICATIONS.slice(0, ceiling + 1), handlingCode: [...p.agreement.handlingCodes] };
  const base = opsOf(p.fields, gateway, []);
  const emitted = [...base.keys()];
  p.rules.forEach((rule, i) => {
    const where = `rules[${i}]`;
    if (!canHold(rule.conditions)) {
      out.add('error', p.file, `${where}.conditions`, `rule ${JSON.stringify(rule.name)} can never fire: its conditions contradict each other, so what it ${ruleIntent(rule)} never happens`);
      return;
    }
    if (!canHold(rule.conditions, accepted)) {
      out.add(
        'error',
        p.file,
        `${where}.conditions`,
        `rule ${JSON.stringify(rule.name)} can never fire: its conditions hold only for dossiers agreement ${p.agreement.reference} refuses (it accepts ${accepted.classification.join(', ')}; handling ${accepted.handlingCode.join(', ')})`,
      );
      return;
    }
    if (rule.then.exclude === true) return;
    const set = Object.keys(rule.then.set ?? {});
    if (sameOps(base, opsOf(p.fields, gateway, [rule]))) {
      const touches = set.some((s) => emitted.some((q) => q === s || isAncestor(s, q) || isAncestor(q, s)));
      out.add(
        'warning',
        p.file,
        `${where}.then`,
        touches
          ? `rule ${JSON.stringify(rule.name)} changes nothing: it asks for nothing stricter than the base allowlist already gives`
          : `rule ${JSON.stringify(rule.name)} changes nothing: it only touches paths the base allowlist already strips (${set.join(', ')})`,
      );
    }
  });
}

/**
 * Every rule that opts out of firing on unknown facts: the opt-out is allowed (in words a reviewer can
 * see), and lint makes sure a reviewer does see it.
 */
/** Handling-condition codes an agreement honours (or a peer enforces) must be in gateway.yaml's vocabulary. */
function checkConditionCodes(file: string, where: string, codes: readonly string[] | undefined, gateway: GatewayRules, out: Findings): void {
  const vocabulary = gateway.handlingConditions ?? {};
  for (const code of codes ?? []) {
    if (Object.hasOwn(vocabulary, code)) continue;
    const known = Object.keys(vocabulary);
    out.add('error', file, where, `handling condition ${JSON.stringify(code)} is not in gateway.yaml handlingConditions (${known.length > 0 ? known.join(', ') : 'none defined'}): it is honoured by nobody`);
  }
}

function checkUnknownIgnored(p: PartnerPolicy, out: Findings): void {
  p.rules.forEach((rule, i) => {
    if (rule.unknown !== 'ignore') return;
    out.add(
      'warning',
      p.file,
      `rules[${i}].unknown`,
      `rule ${JSON.stringify(rule.name)} says unknown: ignore: when a fact it reads is unknown (no date of birth, no nationality…) it does not fire, so what it ${ruleIntent(rule)} does not happen for that subject`,
    );
  });
}

function ruleIntent(rule: Rule): string {
  if (rule.then.exclude === true) return 'excludes';
  return `sets (${Object.keys(rule.then.set ?? {}).join(', ')})`;
}

// ---- tests -------------------------------------------------------------------------------------

function checkTests(set: PolicySet, tests: PolicyTest[], broken: ReadonlySet<string>, out: Findings): void {
  const covered = new Set<string>();
  for (const t of tests) {
    if (!set.partners.has(t.partner)) {
      if (broken.has(`partners/${t.partner}.yaml`) || broken.has(`partners/${t.partner}.yml`)) continue; // its own problems are reported
      const { file, docIndex } = splitProblemPath(t.file);
      out.add('error', file, docIndex === undefined ? 'partner' : `[${docIndex}].partner`, `no partner ${JSON.stringify(t.partner)} in the policy set`);
      continue;
    }
    covered.add(t.partner);
  }
  for (const p of set.partners.values()) {
    if (!covered.has(p.partner.id)) out.add('warning', p.file, '', `no policy test (tests/*.yaml) covers partner ${p.partner.id}`);
  }
}

/**
 * A match allowlist only an after-match agreement uses, and an identifier the base allowlist does not
 * grant is never in a match request (the match step narrows the full policy, it never widens it).
 */
function checkMatchUse(p: Pick<PartnerPolicy, 'file' | 'agreement' | 'fields' | 'match'>, out: Findings): void {
  if (!p.match) return;
  if (!isAfterMatch(p.agreement)) out.add('warning', p.file, 'match', `agreement ${p.agreement.reference} discloses immediately: the match allowlist is not used`);
  p.match.forEach((m, i) => {
    const op = p.fields[m];
    if (op === undefined || op.op === 'strip') out.add('warning', p.file, `match[${i}]`, `${m} is not granted by fields: it is never in a match request`);
  });
}

// ---- positions ---------------------------------------------------------------------------------

async function addPositions(dir: string, findings: LintFinding[]): Promise<void> {
  const locators = new Map<string, YamlLocator | null>();
  for (const f of findings) {
    const file = f.file;
    if (!/\.ya?ml$/.test(file)) continue;
    const explicit = f.location !== undefined ? explicitPosition(f.location) : undefined;
    if (explicit) {
      f.line = explicit.line;
      f.column = explicit.column;
      delete f.location;
      continue;
    }
    let locator = locators.get(file);
    if (locator === undefined) {
      locator = await readFile(path.join(dir, file), 'utf8').then(
        (text) => new YamlLocator(text),
        () => null,
      );
      locators.set(file, locator);
    }
    if (locator === null) continue;
    const segments = f.location === undefined ? [] : parseLocation(f.location);
    const pos = locator.locate(segments ?? []);
    if (pos) {
      f.line = pos.line;
      f.column = pos.column;
    }
  }
}

/**
 * A peer file without a `hits:` block relays the minimum (kind and subject), which is safe but rarely
 * what was meant: say so. One that keeps partners' detail and record refs for every kind is flagged too,
 * so that a reviewer sees everything partners report would cross the border as reported.
 */
function checkPeerHits(p: PeerPolicy, out: Findings): void {
  if (!p.hits.declared) {
    out.add('warning', p.file, 'hits', `no hits policy: partners' hits relayed to ${p.peer.id} carry kind and subject only (no detail, no record refs); add a hits block saying what may cross`);
  } else if (p.hits.kinds === undefined && p.hits.detail === 'keep' && p.hits.partnerRecordRef === 'keep') {
    out.add('warning', p.file, 'hits', `every kind of partners' hits crosses to ${p.peer.id} with its detail and record refs as reported: list the kinds that may cross, or generalise or drop the detail`);
  }
}

// ---- the whole lint ----------------------------------------------------------------------------

export async function lintPolicies(dir: string, options: LintOptions = {}): Promise<LintResult> {
  const o = { ...options, now: options.now ?? new Date(), warnDays: options.warnDays ?? 30, reviewWarnDays: options.reviewWarnDays ?? REVIEW_WARN_DAYS };
  const out = new Findings();
  // What loads is checked even when other files do not (the gateway would refuse the whole set).
  let set: PolicySet | undefined;
  let loads = false;
  const broken = new Set<string>();
  try {
    const collected = await collectPolicySet(dir, o.now);
    set = collected.set;
    loads = collected.problems.length === 0;
    out.fromDetails('error', collected.problems, dir);
    for (const d of collected.problems) broken.add(splitProblemPath(d.path ?? '').file);
  } catch (err) {
    if (!(err instanceof GatewayError) || err.code !== 'policy_invalid') throw err;
    out.fromDetails('error', err.details, dir);
  }
  let tests: PolicyTest[] = [];
  try {
    tests = await loadPolicyTests(dir);
  } catch (err) {
    if (!(err instanceof GatewayError) || err.code !== 'policy_invalid') throw err;
    out.fromDetails('error', err.details, 'tests/');
  }
  if (set !== undefined) {
    for (const p of set.partners.values()) {
      checkAgreement({ file: p.file, id: p.partner.id, agreement: p.agreement }, o.now, o.reviewWarnDays, out);
      checkBasisAndItems(p.file, p.agreement, p.fields, { kind: p.partner.kind, competentAuthority: p.partner.competentAuthority === true }, out);
      await checkKey(p.file, `every delivery to ${p.partner.id} is blocked`, p.partner.key, 'partner.key', o, out);
      // Rules are judged against the base allowlist and the gateway constraints: only when both loaded whole.
      if (!broken.has(p.file) && !broken.has('gateway.yaml')) checkRules(p, gatewayFor(set.gateway, p.partner.competentAuthority), out);
      checkUnknownIgnored(p, out);
      checkConditionCodes(p.file, 'agreement.conditionsHonoured', p.agreement.conditionsHonoured, set.gateway, out);
      checkMatchUse(p, out);
    }
    for (const s of set.sources.values()) {
      await checkKey(s.file, `hits for ${s.source.id} cannot be encrypted to it`, s.source.key, 'source.key', o, out);
    }
    for (const p of set.peerPolicies?.values() ?? []) {
      checkAgreement({ file: p.file, id: p.peer.id, agreement: p.agreement }, o.now, o.reviewWarnDays, out);
      checkBasisAndItems(p.file, p.agreement, p.fields, { kind: 'police-force', competentAuthority: true }, out);
      checkConditionCodes(p.file, 'agreement.conditionsHonoured', p.agreement.conditionsHonoured, set.gateway, out);
      checkConditionCodes(p.file, 'peer.enforcesConditions', p.peer.enforcesConditions, set.gateway, out);
      checkPeerHits(p, out);
      checkMatchUse(p, out);
    }
    if (!broken.has('gateway.yaml')) for (const f of checkRequestTable(set)) out.add(f.severity, f.file, f.location, f.message);
    checkTests(set, tests, broken, out);
  }
  await addPositions(path.resolve(dir), out.list);
  const order = (f: LintFinding) => `${f.file}\u0000${String(f.line ?? 0).padStart(6, '0')}\u0000${String(f.column ?? 0).padStart(4, '0')}`;
  const findings = out.list.map((f, i) => ({ f, i })).sort((a, b) => (order(a.f) < order(b.f) ? -1 : order(a.f) > order(b.f) ? 1 : a.i - b.i)).map(({ f }) => f);
  const errors = findings.filter((f) => f.severity === 'error').length;
  const result: LintResult = {
    dir,
    loads,
    partners: set?.partners.size ?? 0,
    sources: set?.sources.size ?? 0,
    tests: tests.length,
    findings,
    errors,
    warnings: findings.length - errors,
  };
  if (set !== undefined && loads) result.revision = set.revision;
  return result;
}

/** `partners/dvla.yaml:12:3` (the file joined to the directory as given, so that editors can open it). */
export function findingPlace(dir: string, f: LintFinding): string {
  const file = path.join(dir, f.file);
  return f.line === undefined ? file : `${file}:${f.line}${f.column === undefined ? '' : `:${f.column}`}`;
}
