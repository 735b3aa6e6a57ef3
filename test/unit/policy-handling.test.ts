/**
 * Handling conditions (policy/handling.ts): the built-in intelligence filter, the dossier-level block,
 * the trace and `withheld`, the vocabulary checks of lint and the peer file checks of the loader; the
 * packet header built from the redacted dossier (pipeline/disclose.ts) and policy tests over the whole
 * plaintext (governance/testing.ts).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { evaluateCondition } from '../../gateway/policy/condition.js';
import { Decider } from '../../gateway/policy/decide.js';
import { checkHandlingConditions, handlingFilter, honoured } from '../../gateway/policy/handling.js';
import { collectPolicySet, loadPolicySet } from '../../gateway/policy/load.js';
import { redact } from '../../gateway/redact/redact.js';
import { packetHeader, packetPlaintext } from '../../gateway/pipeline/disclose.js';
import { lintPolicies } from '../../gateway/governance/lint.js';
import { loadPolicyTests } from '../../gateway/governance/policy-tests.js';
import { runPolicyTests } from '../../gateway/governance/testing.js';
import type { Dossier } from '../../gateway/dossier/types.js';
import type { Agreement, Condition, GatewayRules, Operation, PartnerPolicy, PolicySet } from '../../gateway/policy/types.js';
import full from '../../examples/dossier-full.json' with { type: 'json' };
import { TEST_AGREEMENT } from '../helpers/policies.js';

const NOW = new Date('2026-11-21T12:00:00Z');
const SAMPLE = path.resolve(import.meta.dirname, '../../policies');
const key = Buffer.alloc(32, 7);
const dossier = (): Dossier => structuredClone(full) as unknown as Dossier;

const notChis: Condition = { all: [{ fact: 'sourceType', operator: 'notEqual', value: 'CHIS' }] };
const GATEWAY: GatewayRules = {
  neverShare: [],
  alwaysFilter: { 'subjects[].intelligence[]': notChis },
  handlingConditions: {
    'safeguarding-only': { description: 'safeguarding' },
    'no-onward-disclosure': { description: 'no onward' },
    'law-enforcement-only': { description: 'law enforcement' },
  },
};

const FIELDS: Record<string, Operation> = {
  'handling.code': { op: 'keep' },
  'subjects[].name.family': { op: 'keep' },
  'subjects[].intelligence[].id': { op: 'keep' },
  'subjects[].intelligence[].conditions[]': { op: 'keep' },
};

function recipient(competentAuthority: boolean, conditionsHonoured: string[], fields: Record<string, Operation> = FIELDS): PartnerPolicy {
  const agreement: Agreement = { ...TEST_AGREEMENT, conditionsHonoured };
  return { file: 'partners/t.yaml', partner: { id: 't', name: 'Test', kind: 'x', key: { file: 'keys/t.asc', fingerprint: 'A'.repeat(40) }, checks: [], competentAuthority }, agreement, fields, rules: [] };
}

function setOf(p: PartnerPolicy, gateway: GatewayRules = GATEWAY): PolicySet {
  return { dir: '/x', revision: 'r1', loadedAt: NOW.toISOString(), gateway, partners: new Map([['t', p]]), sources: new Map() };
}

/** The example dossier with S1's items: INT-88121 (P, CHIS), INT-88377 (C, no codes), plus coded C items. */
function coded(): Dossier {
  const d = dossier();
  const intel = d.subjects[0]!.intelligence!;
  const item = (id: string, conditions: string[]) => ({ id, recordedAt: '2026-10-01', summary: `item ${id}`, grading: { source: 1, intelligence: 'A', handling: 'C' }, sourceType: 'officer', handlingConditions: 'Conditions', conditions });
  intel.push(item('INT-1', ['safeguarding-only']) as never, item('INT-2', ['no-onward-disclosure']) as never, item('INT-3', ['safeguarding-only', 'no-onward-disclosure']) as never, item('INT-4', ['made-up-code']) as never);
  return d;
}

async function idsFor(p: PartnerPolicy, d: Dossier = coded(), gateway?: GatewayRules): Promise<string[]> {
  const decision = await new Decider(setOf(p, gateway)).decide('t', d, NOW);
  expect(decision.block).toBeUndefined();
  const out = redact(d, decision.plan, { refs: new Map(d.subjects.map((s, i) => [s.id, `ref-${i}`])), pseudonymKey: key }).dossier;
  const s0 = (out.subjects as Array<{ intelligence?: Array<{ id: string }> }>)[0];
  return (s0?.intelligence ?? []).map((i) => i.id);
}

describe('the built-in operators', () => {
  it('allIn: every code in the list, none (absent or empty) counts as all; someIn needs one', () => {
    const all: Condition = { fact: 'conditions', operator: 'allIn', value: ['a', 'b'] };
    const some: Condition = { fact: 'conditions', operator: 'someIn', value: ['a', 'b'] };
    expect(evaluateCondition(all, {})).toBe(true);
    expect(evaluateCondition(all, { conditions: [] })).toBe(true);
    expect(evaluateCondition(all, { conditions: ['a', 'b'] })).toBe(true);
    expect(evaluateCondition(all, { conditions: ['a', 'c'] })).toBe(false);
    expect(evaluateCondition(all, { conditions: [{ x: 1 }] })).toBe(false); // malformed: never through
    expect(evaluateCondition(some, {})).toBe(false);
    expect(evaluateCondition(some, { conditions: [] })).toBe(false);
    expect(evaluateCondition(some, { conditions: ['c', 'b'] })).toBe(true);
  });
});

describe('the handling-condition filter', () => {
  it('gives a recipient that is not a competent authority P items and coded C items it honours, nothing else', async () => {
    expect(await idsFor(recipient(false, ['safeguarding-only']))).toEqual(['INT-1']);
    expect(await idsFor(recipient(false, ['safeguarding-only', 'no-onward-disclosure']))).toEqual(['INT-1', 'INT-2', 'INT-3']);
    expect(await idsFor(recipient(false, []))).toEqual([]);
  });

  it('gives a competent authority uncoded C items too, and coded ones only when it honours every code', async () => {
    expect(await idsFor(recipient(true, []))).toEqual(['INT-88377']);
    expect(await idsFor(recipient(true, ['no-onward-disclosure']))).toEqual(['INT-88377', 'INT-2']);
  });

  it('honours no code outside the vocabulary, whatever the agreement says', async () => {
    const p = recipient(true, ['safeguarding-only', 'no-onward-disclosure', 'made-up-code']);
    expect(honoured(p, GATEWAY)).toEqual(['no-onward-disclosure', 'safeguarding-only']);
    expect(await idsFor(p)).toEqual(['INT-88377', 'INT-1', 'INT-2', 'INT-3']);
    // Without a vocabulary, nothing coded goes anywhere.
    expect(await idsFor(p, coded(), { neverShare: [], alwaysFilter: GATEWAY.alwaysFilter })).toEqual(['INT-88377']);
  });

  it('binds codes on P items too, and withholds items without a handling code', () => {
    const where = handlingFilter(recipient(true, ['no-onward-disclosure']), GATEWAY);
    expect(evaluateCondition(where, { grading: { handling: 'P' } })).toBe(true);
    expect(evaluateCondition(where, { grading: { handling: 'P' }, conditions: ['safeguarding-only'] })).toBe(false);
    expect(evaluateCondition(where, { grading: {} })).toBe(false);
  });

  it('is ANDed with the gateway filter and the partner filter, and counts never count withheld items', async () => {
    const count = recipient(false, ['safeguarding-only'], { 'subjects[].intelligence[]': { op: 'count' } });
    const d = coded();
    const decision = await new Decider(setOf(count)).decide('t', d, NOW);
    const out = redact(d, decision.plan, { refs: new Map(d.subjects.map((s, i) => [s.id, `ref-${i}`])), pseudonymKey: key }).dossier;
    expect((out.subjects as Array<{ intelligence?: number }>)[0]?.intelligence).toBe(1); // INT-1 only: not CHIS, not uncoded C
    expect(decision.trace.find((t) => t.path === 'subjects[].intelligence[]' && t.scope === 'subject')?.rule).toBe('base + gateway + handling-conditions');
  });

  it('says in the trace and in `withheld` which items it withholds and why, by path', async () => {
    const d = coded();
    const decision = await new Decider(setOf(recipient(false, ['safeguarding-only']))).decide('t', d, NOW);
    const withheld = decision.withheld ?? [];
    expect(withheld.map((w) => w.path)).toEqual(['/subjects/0/intelligence/1', '/subjects/0/intelligence/3', '/subjects/0/intelligence/4', '/subjects/0/intelligence/5', '/subjects/3/intelligence/0']);
    expect(withheld[0]?.reason).toBe('handling C without condition codes: competent authorities only');
    expect(withheld[1]?.reason).toBe('handling conditions no-onward-disclosure not honoured under agreement ISA-T');
    expect(withheld[3]?.reason).toMatch(/made-up-code not honoured/);
    const entries = decision.trace.filter((t) => t.rule === 'handling-conditions' && t.op === 'withhold');
    expect(entries).toHaveLength(5);
    expect(entries[0]).toMatchObject({ subject: 'S1', subjectIndex: 0, path: 'subjects[].intelligence[]', note: expect.stringMatching(/^item 1 withheld: handling C without condition codes/) });
    expect(JSON.stringify(decision)).not.toContain('withheld"'); // not part of the decision's JSON
  });

  it('reports nothing where the plan discloses nothing of the items', async () => {
    const decision = await new Decider(setOf(recipient(false, [], { 'subjects[].name.family': { op: 'keep' } }))).decide('t', coded(), NOW);
    expect(decision.withheld).toEqual([]);
  });
});

describe('the dossier-level handling conditions', () => {
  const withCodes = (codes: string[] | undefined): Dossier => {
    const d = dossier();
    d.handling = { code: 'C', conditions: 'Safeguarding use only', ...(codes ? { conditionCodes: codes } : {}) };
    return d;
  };

  it('blocks a recipient whose agreement does not honour every code, with the reason', async () => {
    const decision = await new Decider(setOf(recipient(true, ['no-onward-disclosure']))).decide('t', withCodes(['safeguarding-only', 'no-onward-disclosure']), NOW);
    expect(decision.block).toEqual({ reason: 'handling_conditions_not_honoured', message: "The dossier's handling conditions safeguarding-only are not honoured under agreement ISA-T" });
    expect(decision.plan.subjects.every((s) => s === null)).toBe(true);
  });

  it('lets the dossier go when every code is honoured, and without codes checks only the handling code', async () => {
    const ok = recipient(false, ['safeguarding-only']);
    expect(checkHandlingConditions(ok, withCodes(['safeguarding-only']), GATEWAY)).toBeUndefined();
    expect(checkHandlingConditions(ok, withCodes(undefined), GATEWAY)).toBeUndefined();
    expect(checkHandlingConditions(recipient(false, []), withCodes(undefined), GATEWAY)).toBeUndefined();
    expect((await new Decider(setOf(ok)).decide('t', withCodes(['safeguarding-only']), NOW)).block).toBeUndefined();
    const onlyP = { ...ok, agreement: { ...ok.agreement, handlingCodes: ['P' as const] } };
    expect((await new Decider(setOf(onlyP)).decide('t', withCodes(['safeguarding-only']), NOW)).block?.reason).toBe('handling_not_accepted');
  });
});

describe('the packet header', () => {
  const h = { id: 'pkt_x', recipient: 't', issuedAt: NOW, expiresAt: NOW, dossier: { ...dossier(), handling: { code: 'C' as const, conditions: 'Secret text', conditionCodes: ['safeguarding-only'] } }, revision: 'r1', policy: { agreement: TEST_AGREEMENT } };

  it('carries the handling code always, the conditions only as the redacted dossier has them', () => {
    expect(packetHeader(h, {}).handling).toEqual({ code: 'C' });
    expect(packetHeader(h, { handling: { code: 'C' } }).handling).toEqual({ code: 'C' });
    expect(packetHeader(h, { handling: { code: 'C', conditions: 'Secret text' } }).handling).toEqual({ code: 'C', conditions: 'Secret text' });
    expect(packetHeader(h, { handling: { code: 'C', conditionCodes: ['safeguarding-only'] } }).handling).toEqual({ code: 'C', conditionCodes: ['safeguarding-only'] });
    expect(packetPlaintext(h, { handling: { code: 'C' } })).not.toContain('Secret text');
  });
});

describe('policy tests over the whole plaintext', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  async function copy(edit: Record<string, (t: string) => string>): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), 'cordon-handling-'));
    dirs.push(dir);
    await cp(SAMPLE, dir, { recursive: true });
    for (const [rel, fn] of Object.entries(edit)) await writeFile(path.join(dir, rel), fn(await readFile(path.join(dir, rel), 'utf8').catch(() => '')));
    return dir;
  }

  const HEADER_TEST = `name: DVLA never reads the dossier's conditions text, not even in the packet header
dossier: example:dossier-full
partner: dvla
now: "2026-11-21T12:00:00Z"
expect:
  present:
    /packet/handling/code: C
  absent:
    - /packet/handling/conditions
    - /dossier/handling/conditions
    - handling.conditions
  absentValues:
    - Not to be disclosed in proceedings without the originator's consent
`;

  it('proves a partner whose policy withholds handling.conditions gets no conditions text in its header', async () => {
    const dir = await copy({
      'partners/dvla.yaml': (t) => t.replace('  handling.conditions: keep\n', ''),
      'tests/dvla-header.yaml': () => HEADER_TEST,
    });
    const set = await loadPolicySet(dir);
    const results = await runPolicyTests(new Decider(set), (await loadPolicyTests(dir)).filter((t) => t.file === 'tests/dvla-header.yaml'));
    expect(results).toHaveLength(1);
    expect(results[0]?.failures).toEqual([]);
    expect((results[0]?.plaintext?.packet as { handling: unknown }).handling).toEqual({ code: 'C' });
  });

  it('fails the same test where the policy grants the text: header and body are both checked', async () => {
    const dir = await copy({ 'tests/dvla-header.yaml': () => HEADER_TEST });
    const set = await loadPolicySet(dir);
    const [r] = await runPolicyTests(new Decider(set), (await loadPolicyTests(dir)).filter((t) => t.file === 'tests/dvla-header.yaml'));
    expect(r?.failures).toEqual([
      '/packet/handling/conditions: expected to be absent, but it is present',
      '/dossier/handling/conditions: expected to be absent, but it is present',
      'handling.conditions: expected to be absent, but 1 value(s) are present',
      `the value "Not to be disclosed in proceedings without the originator's consent" appears in the output`,
    ]);
  });
});

describe('the vocabulary and the peer files', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  async function copy(edit: Record<string, (t: string) => string>): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), 'cordon-handling-'));
    dirs.push(dir);
    await cp(SAMPLE, dir, { recursive: true });
    for (const [rel, fn] of Object.entries(edit)) await writeFile(path.join(dir, rel), fn(await readFile(path.join(dir, rel), 'utf8')));
    return dir;
  }

  it('loads the sample vocabulary, the honoured codes and the peer\'s declaration', async () => {
    const set = await loadPolicySet(SAMPLE);
    expect(Object.keys(set.gateway.handlingConditions ?? {})).toEqual(['safeguarding-only', 'no-onward-disclosure', 'originator-consent-required', 'law-enforcement-only']);
    const honouring = [...set.partners.values()].filter((p) => p.agreement.conditionsHonoured?.includes('safeguarding-only')).map((p) => p.partner.id);
    expect(honouring).toEqual(['childrens-services']);
    expect(set.peerPolicies?.get('warwickshire')?.peer.enforcesConditions).toContain('safeguarding-only');
  });

  it('lint errors on an honoured or enforced code the vocabulary does not define', async () => {
    const dir = await copy({
      'partners/hmrc.yaml': (t) => t.replace('conditionsHonoured: [', 'conditionsHonoured: [tax-only, '),
      'peers/warwickshire.yaml': (t) => t.replace('enforcesConditions: [', 'enforcesConditions: [court-only, '),
    });
    const r = await lintPolicies(dir, { now: NOW, checkKey: async () => ({ expiresAt: null }) });
    const errors = r.findings.filter((f) => f.severity === 'error' && /handling condition/.test(f.message));
    expect(errors.map((f) => [f.file, f.location])).toEqual([
      ['partners/hmrc.yaml', 'agreement.conditionsHonoured'],
      ['peers/warwickshire.yaml', 'peer.enforcesConditions'],
    ]);
    expect(errors[0]?.message).toMatch(/"tax-only" is not in gateway.yaml handlingConditions/);
  });

  it('refuses a peer file that strips vulnerability flags, roles or condition codes', async () => {
    const dir = await copy({
      'peers/warwickshire.yaml': (t) =>
        t
          .replace('  subjects[].vulnerabilities[]: keep\n', '')
          .replace('  subjects[].intelligence[].conditions[]: keep\n', '')
          .replace('  subjects[].role: keep\n', '  subjects[].role: { op: replace, with: person }\n'),
    });
    const { problems } = await collectPolicySet(dir, NOW);
    const mine = problems.filter((p) => (p.path ?? '').startsWith('peers/warwickshire.yaml'));
    expect(mine.map((p) => p.path)).toEqual([
      'peers/warwickshire.yaml: fields."subjects[].role"',
      'peers/warwickshire.yaml: fields."subjects[].vulnerabilities[]"',
      'peers/warwickshire.yaml: fields."subjects[].intelligence[].conditions[]"',
    ]);
    expect(mine[1]?.message).toMatch(/a peer file must keep it: roles and vulnerability flags only tighten/);
  });

  it('refuses a peer rule that strips them', async () => {
    const dir = await copy({
      'peers/warwickshire.yaml': (t) => t.replace('    then:\n      exclude: true', '    then:\n      set:\n        subjects[].vulnerabilities[]: strip'),
    });
    const { problems } = await collectPolicySet(dir, NOW);
    expect(problems.filter((p) => (p.path ?? '').startsWith('peers/')).map((p) => `${p.path}: ${p.message}`)).toEqual([
      expect.stringMatching(/^peers\/warwickshire.yaml: rules \(no-witnesses\): sets strip on subjects\[\]\.vulnerabilities\[\], but a peer must receive/),
    ]);
  });
});
