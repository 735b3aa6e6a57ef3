/**
 * Property: for random VALID dossiers (random subsets of every schema field, random roles, ages,
 * gradings, handling codes and source types, empty arrays, and unique marker values in every text
 * field, stripped or not), for every sample partner, what the redactor emits is exactly what the
 * decision plan allows:
 *  - every path in the output is a non-strip path of the plan (or the field an address generalisation
 *    keeps), never under a stripped, counted or replaced container;
 *  - every marker value that comes out came from that very path of that very subject, through `keep`,
 *    from an array item that passes every filter of the plan: nothing moves, nothing leaks;
 *  - never an item of CHIS intelligence, never a dossier subject id;
 *  - never a subject who is not a known adult for dvla, dwp-benefits, hmrc and immigration-enforcement;
 *    never a victim, witness or vulnerable person for immigration-enforcement; only known children for
 *    childrens-services.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import path from 'node:path';
import type { Dossier, Subject } from '../../gateway/dossier/types.js';
import { validateDossier } from '../../gateway/dossier/validate.js';
import { evaluateCondition } from '../../gateway/policy/condition.js';
import { Decider } from '../../gateway/policy/decide.js';
import { subjectFacts } from '../../gateway/policy/facts.js';
import { loadPolicySet } from '../../gateway/policy/load.js';
import { canonicalPath } from '../../gateway/policy/schema-index.js';
import { ancestors } from '../../gateway/policy/paths.js';
import { isAddressOp, isTerminalOp } from '../../gateway/policy/plan.js';
import type { Condition, Operation, Plan, PolicySet } from '../../gateway/policy/types.js';
import { redact } from '../../gateway/redact/redact.js';

const NOW = new Date('2026-11-21T12:00:00Z');
const SAMPLE = path.resolve(import.meta.dirname, '../../policies');
const ADULTS_ONLY = new Set(['dvla', 'dwp-benefits', 'hmrc', 'immigration-enforcement']);

let set: PolicySet;
let decider: Decider;
beforeAll(async () => {
  set = await loadPolicySet(SAMPLE, NOW);
  decider = new Decider(set);
});

// ---- generator: a shape of choices, then a dossier built from it with unique markers ------------

const opt = <T,>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined, freq: 3 });
const day = (min: string, max: string) =>
  fc.date({ min: new Date(`${min}T00:00:00Z`), max: new Date(`${max}T00:00:00Z`), noInvalidDate: true }).map((x) => x.toISOString().slice(0, 10));
const postcode = fc.stringMatching(/^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$/);
const ROLES = ['principal', 'member', 'associate', 'facilitator', 'potential-victim', 'victim', 'witness', 'other'] as const;
const SOURCE_TYPES = ['CHIS', 'partner-agency', 'public', 'officer', 'neighbourhood-officer', 'open-source', 'technical', 'other'] as const;
const CHECKS = ['addresses', 'tenancies', 'vehicles', 'benefits', 'businesses', 'associates', 'employment', 'immigration', 'safeguarding', 'phones'] as const;

const subjectShape = fc.record({
  role: fc.constantFrom(...ROLES),
  // mostly adults, some children, some unknown (absent) and some born the day before or after an 18th birthday
  dob: opt(fc.oneof(day('1930-01-01', '2008-11-01'), day('2008-11-01', '2026-11-20'), fc.constantFrom('2008-11-20', '2008-11-21', '2008-11-22'))),
  gender: opt(fc.constantFrom('male', 'female', 'non-binary', 'other', 'unknown')),
  nationality: opt(fc.constantFrom('GB', 'RO', 'AL', 'VN', 'IE')),
  aliases: opt(fc.integer({ min: 0, max: 2 })),
  identifiers: opt(fc.record({ pnc: fc.boolean(), ni: fc.boolean(), dl: fc.boolean(), passport: fc.boolean() })),
  addresses: opt(
    fc.array(
      fc.record({
        type: fc.constantFrom('home', 'previous', 'business', 'work', 'temporary', 'correspondence', 'other'),
        line2: fc.boolean(),
        county: fc.boolean(),
        postcode,
        from: opt(day('2000-01-01', '2026-11-01')),
        to: opt(day('2000-01-01', '2026-11-01')),
      }),
      { maxLength: 3 },
    ),
  ),
  vehicles: opt(fc.array(fc.record({ make: fc.boolean(), model: fc.boolean(), colour: fc.boolean(), relationship: opt(fc.constantFrom('keeper', 'user', 'owner', 'driver', 'passenger', 'other')) }), { maxLength: 3 })),
  phones: opt(fc.integer({ min: 0, max: 2 })),
  emails: opt(fc.integer({ min: 0, max: 2 })),
  bankAccounts: opt(fc.array(fc.record({ bank: fc.boolean() }), { maxLength: 2 })),
  businesses: opt(fc.array(fc.record({ companyNumber: fc.boolean(), role: fc.boolean() }), { maxLength: 2 })),
  benefits: opt(fc.array(fc.record({ source: fc.boolean() }), { maxLength: 2 })),
  associates: opt(fc.array(fc.nat({ max: 9 }), { maxLength: 3 })),
  enforcement: opt(fc.array(fc.record({ date: day('2010-01-01', '2026-11-01'), offence: fc.boolean(), outcome: fc.boolean() }), { maxLength: 2 })),
  intelligence: opt(
    fc.array(
      fc.record({
        source: fc.constantFrom(1, 2, 3),
        grade: fc.constantFrom('A', 'B', 'C', 'D', 'E'),
        handling: fc.constantFrom('P', 'C'),
        sourceType: fc.constantFrom(...SOURCE_TYPES),
        recordedAt: day('2020-01-01', '2026-11-20'),
      }),
      { maxLength: 4 },
    ),
  ),
  vulnerabilities: opt(fc.uniqueArray(fc.constantFrom('debt-bondage', 'limited-english', 'child-criminal-exploitation', 'labour-exploitation', 'mental-health'), { maxLength: 3 })),
});

const dossierShape = fc.record({
  unit: fc.boolean(),
  officerName: fc.boolean(),
  officerEmail: fc.boolean(),
  createdAt: fc.date({ min: new Date('2026-05-01T00:00:00Z'), max: new Date('2026-11-21T11:00:00Z'), noInvalidDate: true }).map((x) => x.toISOString()),
  classification: fc.constantFrom('OFFICIAL', 'OFFICIAL-SENSITIVE'),
  handlingC: fc.boolean(),
  group: opt(
    fc.record({
      name: fc.boolean(),
      threatBand: opt(fc.constantFrom('A', 'B', 'C', 'D', 'E')),
      crimeTypes: opt(fc.uniqueArray(fc.constantFrom('drugs-supply', 'money-laundering', 'labour-exploitation', 'firearms-supply', 'fraud'), { maxLength: 3 })),
      areas: opt(fc.integer({ min: 0, max: 2 })),
    }),
  ),
  subjects: fc.array(subjectShape, { minLength: 1, maxLength: 5 }),
  locations: opt(fc.array(fc.record({ line2: fc.boolean(), county: fc.boolean(), notes: fc.boolean(), postcode }), { maxLength: 2 })),
  requests: opt(fc.record({ checks: fc.uniqueArray(fc.constantFrom(...CHECKS), { minLength: 1, maxLength: 4 }), peers: opt(fc.uniqueArray(fc.constantFrom('gmp', 'met'), { maxLength: 2 })) })),
});

type DossierShape = typeof dossierShape extends fc.Arbitrary<infer T> ? T : never;

/** Builds the dossier; every free-text and identifier value carries a unique marker. */
function build(g: DossierShape): Record<string, unknown> {
  let n = 0;
  const mk = () => `MK${String(++n).padStart(5, '0')}X`;
  const ni = () => `QQ9${String(++n).padStart(5, '0')}A`;
  const pnc = () => `26/9${String(++n).padStart(5, '0')}X`;
  const put = (o: Record<string, unknown>, k: string, v: unknown) => {
    if (v !== undefined) o[k] = v;
  };
  const times = (k: number | undefined, f: () => unknown) => (k === undefined ? undefined : Array.from({ length: k }, f));
  const ids = g.subjects.map(() => mk());
  const d: Record<string, unknown> = {
    schema: 'cordon.dossier/v1',
    reference: mk(),
    originator: { force: 'west-midlands', ...(g.unit ? { unit: mk() } : {}), officer: { id: mk(), ...(g.officerName ? { name: mk() } : {}), ...(g.officerEmail ? { email: `${mk().toLowerCase()}@example.police.uk` } : {}) } },
    createdAt: g.createdAt,
    classification: g.classification,
    handling: g.handlingC ? { code: 'C', conditions: mk() } : { code: 'P' },
    purpose: mk(),
  };
  if (g.group) {
    const grp: Record<string, unknown> = { ocgmId: mk() };
    if (g.group.name) grp.name = mk();
    put(grp, 'threatBand', g.group.threatBand);
    put(grp, 'crimeTypes', g.group.crimeTypes);
    put(grp, 'areas', times(g.group.areas, mk));
    d.group = grp;
  }
  d.subjects = g.subjects.map((s, i) => {
    const o: Record<string, unknown> = { id: ids[i], role: s.role, name: { given: mk(), family: mk(), ...(s.aliases !== undefined ? { aliases: times(s.aliases, mk) } : {}) } };
    put(o, 'dateOfBirth', s.dob);
    put(o, 'gender', s.gender);
    put(o, 'nationality', s.nationality);
    if (s.identifiers) {
      const id: Record<string, unknown> = {};
      if (s.identifiers.pnc) id.pnc = pnc();
      if (s.identifiers.ni) id.niNumber = ni();
      if (s.identifiers.dl) id.drivingLicence = mk();
      if (s.identifiers.passport) id.passport = mk();
      o.identifiers = id;
    }
    put(o, 'addresses', s.addresses?.map((a) => ({ type: a.type, line1: mk(), ...(a.line2 ? { line2: mk() } : {}), town: mk(), ...(a.county ? { county: mk() } : {}), postcode: a.postcode, ...(a.from ? { from: a.from } : {}), ...(a.to ? { to: a.to } : {}) })));
    put(o, 'vehicles', s.vehicles?.map((v) => ({ vrm: mk(), ...(v.make ? { make: mk() } : {}), ...(v.model ? { model: mk() } : {}), ...(v.colour ? { colour: mk() } : {}), ...(v.relationship ? { relationship: v.relationship } : {}) })));
    put(o, 'phones', times(s.phones, () => `07700 9${String(++n).padStart(5, '0')}`));
    put(o, 'emails', times(s.emails, () => `${mk().toLowerCase()}@example.com`));
    put(o, 'bankAccounts', s.bankAccounts?.map((b) => ({ sortCode: '12-34-56', accountNumber: '12345678', ...(b.bank ? { bank: mk() } : {}) })));
    put(o, 'businesses', s.businesses?.map((b) => ({ name: mk(), ...(b.companyNumber ? { companyNumber: mk() } : {}), ...(b.role ? { role: mk() } : {}) })));
    put(o, 'benefits', s.benefits?.map((b) => ({ type: mk(), ...(b.source ? { source: mk() } : {}) })));
    if (s.associates) {
      const others = [...new Set(s.associates.map((a) => a % g.subjects.length))].filter((a) => a !== i);
      o.associates = others.map((a) => ({ subject: ids[a], relationship: mk() }));
    }
    put(o, 'enforcementHistory', s.enforcement?.map((e) => ({ date: e.date, type: 'arrest', ...(e.offence ? { offence: mk() } : {}), ...(e.outcome ? { outcome: mk() } : {}) })));
    put(
      o,
      'intelligence',
      s.intelligence?.map((x) => ({
        id: mk(),
        recordedAt: x.recordedAt,
        summary: mk(),
        grading: { source: x.source, intelligence: x.grade, handling: x.handling },
        sourceType: x.sourceType,
        ...(x.handling === 'C' ? { handlingConditions: mk() } : {}),
      })),
    );
    put(o, 'vulnerabilities', s.vulnerabilities);
    return o;
  });
  put(d, 'locations', g.locations?.map((l) => ({ type: 'storage', line1: mk(), ...(l.line2 ? { line2: mk() } : {}), town: mk(), ...(l.county ? { county: mk() } : {}), postcode: l.postcode, ...(l.notes ? { notes: mk() } : {}) })));
  if (g.requests) d.requests = { checks: g.requests.checks, ...(g.requests.peers ? { peers: g.requests.peers } : {}) };
  return d;
}

// ---- where each marker came from ----------------------------------------------------------------

const MARKER = /MK\d{5}X|QQ9\d{5}A|26\/9\d{5}X|07700 9\d{5}/gi;

interface Origin {
  path: string;
  subject?: number;
  /** The enclosing array items, by array path (`subjects[].addresses[]` → that address). */
  items: Map<string, unknown>;
}

function origins(value: unknown, p: string, items: Map<string, unknown>, subject: number | undefined, out: Map<string, Origin>): void {
  if (typeof value === 'string') {
    for (const m of value.match(MARKER) ?? []) out.set(m.toUpperCase(), { path: p, items, ...(subject === undefined ? {} : { subject }) });
  } else if (Array.isArray(value)) {
    const ap = `${p}[]`;
    value.forEach((v, i) => {
      const sub = p === 'subjects' ? i : subject;
      const next = v !== null && typeof v === 'object' ? new Map(items).set(ap, v) : items;
      origins(v, ap, next, sub, out);
    });
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) origins(v, p === '' ? k : `${p}.${k}`, items, subject, out);
  }
}

/** Every emitted leaf with its policy path: scalars, arrays of scalars (at `x[]`) and counts. */
function leaves(value: unknown, p: string, out: Array<{ path: string; value: unknown }>): void {
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== 'object')) out.push({ path: `${p}[]`, value });
    else for (const v of value) leaves(v, `${p}[]`, out);
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) leaves(v, p === '' ? k : `${p}.${k}`, out);
  } else {
    out.push({ path: canonicalPath(p) ?? p, value });
  }
}

function whereOf(op: Operation | undefined): Condition | undefined {
  if (op === undefined) return undefined;
  if (op.op === 'filter') return op.where;
  if (op.op === 'count' || isAddressOp(op)) return op.where;
  return undefined;
}

/** The operation that emits the leaf at `p`, or why none does. */
function emitter(ops: Record<string, Operation>, p: string): { op?: Operation; viaAddress?: boolean; problem?: string } {
  for (const a of ancestors(p)) {
    const aop = ops[a];
    if (aop && isTerminalOp(aop)) return { problem: `${p} is under ${a}, which is ${aop.op}` };
    if (aop && isAddressOp(aop) && p !== `${a}.${aop.to}`) return { problem: `${p} is under ${a}, which keeps only ${aop.to}` };
  }
  const op = ops[p];
  if (op !== undefined) {
    if (op.op === 'strip') return { problem: `${p} is stripped` };
    if (op.op === 'filter' || isAddressOp(op)) return { problem: `${p} is a container (${op.op}) but a leaf came out` };
    return { op };
  }
  const parent = ancestors(p).at(-1);
  const pop = parent === undefined ? undefined : ops[parent];
  if (pop && isAddressOp(pop) && p === `${parent}.${pop.to}`) return { viaAddress: true };
  return { problem: `${p} is not in the plan` };
}

/**
 * Throws (through expect) when the output of one packet breaks the property; returns the number of
 * marker values that came out.
 */
function verifyPacket(partner: string, d: Dossier, from: Map<string, Origin>, plan: Plan, out: Record<string, unknown>): number {
  let markersOut = 0;
  const text = JSON.stringify(out);
  for (const id of d.subjects.map((s) => s.id)) expect(text, `${partner} got subject id ${id}`).not.toContain(id);

  const check = (ops: Record<string, Operation>, body: Record<string, unknown>, prefix: string, subject: number | undefined) => {
    const found: Array<{ path: string; value: unknown }> = [];
    leaves(body, prefix, found);
    for (const leaf of found) {
      if (leaf.path === 'schema' || leaf.path === 'subjects[].id') continue;
      const e = emitter(ops, leaf.path);
      expect(e.problem, `${partner}: ${e.problem}`).toBeUndefined();
      const values = Array.isArray(leaf.value) ? leaf.value : [leaf.value];
      for (const v of values) {
        if (typeof v !== 'string') continue;
        for (const m of v.match(MARKER) ?? []) {
          markersOut++;
          const o = from.get(m.toUpperCase());
          expect(o, `${partner}: ${m} came from nowhere`).toBeDefined();
          expect(o!.path, `${partner}: ${m} moved`).toBe(leaf.path);
          expect(o!.subject, `${partner}: ${m} moved between subjects`).toBe(subject);
          expect(e.viaAddress === true || e.op?.op === 'keep', `${partner}: ${m} came out whole through ${e.op?.op}`).toBe(true);
          for (const [arrayPath, item] of o!.items) {
            const where = whereOf(ops[arrayPath]);
            if (where) expect(evaluateCondition(where, item), `${partner}: ${m} from an item ${arrayPath} filters out`).toBe(true);
            if (arrayPath === 'subjects[].intelligence[]') expect((item as { sourceType: string }).sourceType, `${partner} got CHIS intelligence`).not.toBe('CHIS');
          }
        }
      }
    }
  };

  const { subjects: subjectsOut, ...top } = out as { subjects?: Array<Record<string, unknown>> };
  check(plan.dossier, top, '', undefined);
  for (const s of subjectsOut ?? []) {
    const i = Number(String(s.id).slice('ref_p'.length));
    const ops = plan.subjects[i];
    expect(ops, `${partner}: subject ${i} is excluded but came out`).toBeTruthy();
    const { id: _id, ...body } = s;
    check(ops!, body, 'subjects[]', i);
    // Intelligence: never more items than the non-CHIS ones of the input.
    const intel = (s.intelligence ?? []) as unknown[];
    const allowed = ((d.subjects[i] as Subject).intelligence ?? []).filter((x) => x.sourceType !== 'CHIS');
    expect(intel.length).toBeLessThanOrEqual(allowed.length);
    // The people each partner may receive.
    const facts = subjectFacts(d, d.subjects[i] as Subject);
    if (ADULTS_ONLY.has(partner)) expect(facts.isAdult, `${partner} got a subject who is not a known adult`).toBe(true);
    if (partner !== 'childrens-services') expect(['potential-victim', 'victim', 'witness'], `${partner} got a victim or witness`).not.toContain(facts.role);
    if (partner === 'immigration-enforcement') expect(facts.isVulnerable).toBe(false);
    if (partner === 'childrens-services') expect(facts.isMinor, 'childrens-services got a subject who is not a known child').toBe(true);
  }
  return markersOut;
}

// ---- the property -------------------------------------------------------------------------------

describe('sample policies on random valid dossiers (property)', () => {
  it('emit only what each plan allows, from where it allows it; never CHIS, subject ids or the wrong people', async () => {
    let dossiers = 0;
    let packets = 0;
    let markersOut = 0;
    await fc.assert(
      fc.asyncProperty(dossierShape, async (shape) => {
        const raw = build(shape);
        let d: Dossier;
        try {
          d = validateDossier(raw);
        } catch (err) {
          throw new Error(`the generator made an invalid dossier: ${JSON.stringify((err as { details?: unknown }).details)}`, { cause: err });
        }
        dossiers++;
        const from = new Map<string, Origin>();
        origins(d, '', new Map(), undefined, from);
        for (const partner of set.partners.keys()) {
          const decision = await decider.decide(partner, d, NOW);
          if (decision.block) {
            expect(decision.plan.subjects.every((s) => s === null) || decision.block.reason !== 'no_shareable_subjects').toBe(true);
            continue;
          }
          packets++;
          const refs = new Map(d.subjects.map((s, i) => [s.id, `ref_p${i}`]));
          const { dossier: out } = redact(d, decision.plan, { refs, pseudonymKey: Buffer.alloc(32, 7) });
          markersOut += verifyPacket(partner, d, from, decision.plan, out);
        }
      }),
      { numRuns: 300 },
    );
    expect(dossiers).toBe(300);
    expect(packets).toBeGreaterThan(300);
    expect(markersOut).toBeGreaterThan(1000);
  });

  it('would catch a leak: the check fails on output the plan does not allow', async () => {
    const adult = { role: 'principal' as const, dob: '1980-01-01', identifiers: { pnc: true, ni: true, dl: true, passport: true }, addresses: [{ type: 'home' as const, line2: true, county: true, postcode: 'CV6 5HX' }] };
    const shape = {
      unit: true,
      officerName: true,
      officerEmail: true,
      createdAt: '2026-11-20T09:00:00.000Z',
      classification: 'OFFICIAL' as const,
      handlingC: false,
      subjects: [
        {
          ...adult,
          intelligence: [
            { source: 1 as const, grade: 'A' as const, handling: 'P' as const, sourceType: 'CHIS' as const, recordedAt: '2026-01-01' },
            { source: 3 as const, grade: 'C' as const, handling: 'P' as const, sourceType: 'public' as const, recordedAt: '2026-01-01' },
            { source: 1 as const, grade: 'A' as const, handling: 'P' as const, sourceType: 'public' as const, recordedAt: '2026-01-01' },
          ],
        },
        { role: 'member' as const, dob: '2012-01-01' },
      ],
    } as unknown as DossierShape;
    const d = validateDossier(build(shape));
    const from = new Map<string, Origin>();
    origins(d, '', new Map(), undefined, from);
    const decision = await decider.decide('council-housing', d, NOW);
    expect(decision.block).toBeUndefined();
    const refs = new Map(d.subjects.map((s, i) => [s.id, `ref_p${i}`]));
    const share = (plan: Plan) => redact(d, plan, { refs, pseudonymKey: Buffer.alloc(32, 7) }).dossier;
    expect(verifyPacket('council-housing', d, from, decision.plan, share(decision.plan))).toBeGreaterThan(5);
    const leaks: Array<(o: Record<string, Operation>) => Record<string, Operation>> = [
      (o) => ({ ...o, 'subjects[].identifiers.pnc': { op: 'keep' } }),
      (o) => ({ ...o, 'subjects[].intelligence[]': { op: 'filter', where: { all: [{ fact: 'grading.source', operator: 'lessThanInclusive', value: 3 }] } } }),
      (o) => ({ ...o, 'subjects[].intelligence[]': { op: 'filter', where: { all: [{ fact: 'sourceType', operator: 'equal', value: 'CHIS' }] } } }),
      (o) => ({ ...o, 'subjects[].name.given': { op: 'mask', show: 'first', chars: 1 }, 'subjects[].name.family': { op: 'replace', with: 'x' }, 'subjects[].addresses[].line1': { op: 'pseudonymise' }, 'originator.unit': { op: 'keep' } }),
    ];
    for (const leak of leaks) {
      const leaky: Plan = { dossier: decision.plan.dossier, subjects: decision.plan.subjects.map((o) => (o ? leak(o) : o)) };
      expect(() => verifyPacket('council-housing', d, from, decision.plan, share(leaky))).toThrow();
    }
    // An excluded subject (the child) let through, and an officer's name let through.
    const child: Plan = { dossier: decision.plan.dossier, subjects: decision.plan.subjects.map((o, i) => o ?? decision.plan.subjects[i === 0 ? 1 : 0]!) };
    expect(() => verifyPacket('council-housing', d, from, decision.plan, share(child))).toThrow(/excluded|known adult|child/);
    const officer: Plan = { dossier: { ...decision.plan.dossier, 'originator.officer.name': { op: 'keep' } }, subjects: decision.plan.subjects };
    expect(() => verifyPacket('council-housing', d, from, decision.plan, share(officer))).toThrow();
  });
});
