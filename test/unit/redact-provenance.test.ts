/**
 * Provenance: an address, vehicle, business or location derived from an intelligence item (`derivedFrom`)
 * goes to a recipient only when that item does. Validation of the reference, redaction with hand-made
 * plans (every way an item can be withheld), the trace in the preview, and a property over random plans.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import path from 'node:path';
import { GatewayError } from '../../gateway/errors/index.js';
import { validateDossier } from '../../gateway/dossier/validate.js';
import type { Dossier } from '../../gateway/dossier/types.js';
import { compileProjection } from '../../gateway/redact/projection.js';
import { redact } from '../../gateway/redact/redact.js';
import { DERIVED_ARRAYS } from '../../gateway/redact/provenance.js';
import { Decider } from '../../gateway/policy/decide.js';
import { loadPolicySet } from '../../gateway/policy/load.js';
import { buildPreview } from '../../gateway/governance/preview.js';
import { asPartner } from '../../gateway/exchange/peers.js';
import type { Condition, Operation, PeerPolicy, Plan, PolicySet } from '../../gateway/policy/types.js';
import full from '../../examples/dossier-full.json' with { type: 'json' };

const NOW = new Date('2026-11-21T12:00:00Z');
const SAMPLE = path.resolve(import.meta.dirname, '../../policies');
const key = Buffer.alloc(32, 7);
const notChis: Condition = { all: [{ fact: 'sourceType', operator: 'notEqual', value: 'CHIS' }] };

/** The example dossier with an address, a vehicle and a business derived from the CHIS item INT-88121, a
 * second address from the partner-agency item INT-88377, and a location from Samuel Okafor's INT-90110. */
function derived(): Dossier {
  const d = structuredClone(full) as unknown as Dossier;
  const s1 = d.subjects[0]!;
  s1.addresses!.push(
    { type: 'home', line1: '41 Lythalls Lane', town: 'Coventry', postcode: 'CV6 6FN', derivedFrom: 'INT-88121' },
    { type: 'home', line1: '9 Cedar Road', town: 'Coventry', postcode: 'CV6 5HY', derivedFrom: 'INT-88377' },
  );
  s1.vehicles!.push({ vrm: 'TK21 SRV', derivedFrom: 'INT-88121' });
  s1.businesses!.push({ name: 'Foleshill Lettings Ltd', derivedFrom: 'INT-88121' });
  d.locations!.push({ type: 'storage', line1: 'Yard 3, Canal Basin', town: 'Coventry', postcode: 'CV1 4LY', derivedFrom: 'INT-90110' });
  return d;
}

function failure(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (err) {
    if (err instanceof GatewayError) return err;
    throw err;
  }
  throw new Error('expected a GatewayError');
}

describe('derivedFrom in the dossier schema and validation', () => {
  it('accepts a derivedFrom naming an intelligence item of the dossier, on any subject', () => {
    const d = derived();
    d.subjects[1]!.vehicles![0]!.derivedFrom = 'INT-88377'; // another subject's item
    expect(validateDossier(d)).toBe(d);
    expect([...DERIVED_ARRAYS].sort()).toEqual(['locations[]', 'subjects[].addresses[]', 'subjects[].businesses[]', 'subjects[].vehicles[]']);
  });

  it('refuses a derivedFrom naming no intelligence item of the dossier, with its path', () => {
    const d = derived();
    d.subjects[0]!.addresses![1]!.derivedFrom = 'INT-00000';
    d.subjects[1]!.businesses = [{ name: 'X Ltd', derivedFrom: 'INT-404' }];
    d.locations![1]!.derivedFrom = 'S1';
    const err = failure(() => validateDossier(d));
    expect(err.code).toBe('schema_violation');
    expect(err.details).toEqual([
      { path: '/subjects/0/addresses/1/derivedFrom', message: 'must be the id of an intelligence item in this dossier', keyword: 'intelligenceRef' },
      { path: '/subjects/1/businesses/0/derivedFrom', message: 'must be the id of an intelligence item in this dossier', keyword: 'intelligenceRef' },
      { path: '/locations/1/derivedFrom', message: 'must be the id of an intelligence item in this dossier', keyword: 'intelligenceRef' },
    ]);
  });

  it('refuses a malformed or oversized derivedFrom, and accepts the technical and undercover source types', () => {
    const d = derived();
    d.subjects[0]!.vehicles![0]!.derivedFrom = 'INT 1';
    d.subjects[0]!.vehicles![1]!.derivedFrom = 'I'.repeat(65);
    const paths = new Set(failure(() => validateDossier(d)).details!.map((x) => x.path));
    expect([...paths]).toEqual(['/subjects/0/vehicles/0/derivedFrom', '/subjects/0/vehicles/1/derivedFrom']);
    const e = derived();
    e.subjects[1]!.intelligence![0]!.sourceType = 'undercover';
    e.subjects[2]!.intelligence![0]!.sourceType = 'technical';
    expect(() => validateDossier(e)).not.toThrow();
  });
});

/** Daniel Okafor (S1) with his intelligence filtered (not CHIS), his addresses, vehicles and businesses kept. */
function subjectOps(extra: Record<string, Operation> = {}): Record<string, Operation> {
  return {
    'subjects[].name.family': { op: 'keep' },
    'subjects[].addresses[].line1': { op: 'keep' },
    'subjects[].vehicles[].vrm': { op: 'keep' },
    'subjects[].businesses[].name': { op: 'keep' },
    'subjects[].intelligence[]': { op: 'filter', where: notChis },
    'subjects[].intelligence[].summary': { op: 'keep' },
    ...extra,
  };
}

function run(d: Dossier, plan: Plan) {
  const refs = new Map(d.subjects.map((s, i) => [s.id, `ref-${i + 1}`]));
  return redact(d, plan, { refs, pseudonymKey: key });
}

type Out = { subjects?: Array<Record<string, unknown>>; locations?: unknown[] };

describe('redact: what is derived from withheld intelligence is withheld', () => {
  it('withholds items derived from filtered intelligence, keeps those from disclosed intelligence, and says why', () => {
    const d = derived();
    const { dossier, withheld, disclosed } = run(d, { dossier: {}, subjects: [subjectOps(), null, null, null] });
    const s = (dossier as Out).subjects![0]!;
    expect(s.addresses).toEqual([{ line1: '14 Cedar Road' }, { line1: 'Unit 4, Holbrook Trading Estate' }, { line1: '9 Cedar Road' }]);
    expect(s.vehicles).toEqual([{ vrm: 'AB12 CDE' }, { vrm: 'KX19 LMN' }]);
    expect(s.businesses).toEqual([{ name: 'Cedar Hand Car Wash Ltd' }]);
    expect(withheld).toEqual([
      { path: 'subjects[0].addresses[2]', subjectIndex: 0, reason: 'derived from withheld intelligence INT-88121' },
      { path: 'subjects[0].vehicles[2]', subjectIndex: 0, reason: 'derived from withheld intelligence INT-88121' },
      { path: 'subjects[0].businesses[1]', subjectIndex: 0, reason: 'derived from withheld intelligence INT-88121' },
    ]);
    expect(JSON.stringify(dossier)).not.toContain('derivedFrom'); // not granted: default deny
    expect(disclosed.map((x) => x.path)).not.toContain('subjects[].intelligence[].derivedFrom');
  });

  it('withholds everything derived from intelligence when the recipient is given none (the DVLA case), whatever the operation', () => {
    const d = derived();
    const ops: Record<string, Operation> = {
      'subjects[].addresses[]': { op: 'generalise', to: 'postcode' },
      'subjects[].vehicles[].vrm': { op: 'keep' },
      'subjects[].businesses[]': { op: 'count' },
    };
    const { dossier, withheld } = run(d, { dossier: { 'locations[].postcode': { op: 'keep' } }, subjects: [ops, null, null, null] });
    const s = (dossier as Out).subjects![0]!;
    expect(s.addresses).toEqual([{ postcode: 'CV6 5HX' }, { postcode: 'CV6 4FL' }]);
    expect(s.vehicles).toEqual([{ vrm: 'AB12 CDE' }, { vrm: 'KX19 LMN' }]);
    expect(s.businesses).toBe(1);
    expect((dossier as Out).locations).toEqual([{ postcode: 'CV6 5PD' }]);
    expect(withheld.map((w) => w.path)).toEqual([
      'locations[1]',
      'subjects[0].addresses[2]',
      'subjects[0].addresses[3]',
      'subjects[0].vehicles[2]',
      'subjects[0].businesses[1]',
    ]);
    expect(withheld[0]).toEqual({ path: 'locations[1]', reason: 'derived from withheld intelligence INT-90110' });
  });

  it('withholds what is derived from the intelligence of an excluded subject, and discloses it when the subject is in', () => {
    const d = derived();
    const located = (plan: Plan) => (run(d, plan).dossier as Out).locations;
    const top = { 'locations[].line1': { op: 'keep' } as Operation };
    expect(located({ dossier: top, subjects: [subjectOps(), null, null, null] })).toEqual([{ line1: 'Garage 7, Lockhurst Lane' }]);
    expect(located({ dossier: top, subjects: [subjectOps(), subjectOps(), null, null] })).toEqual([{ line1: 'Garage 7, Lockhurst Lane' }, { line1: 'Yard 3, Canal Basin' }]);
  });

  it('withholds what is derived from intelligence the subject\'s plan strips, counts or replaces', () => {
    const d = derived();
    for (const op of [{ op: 'strip' }, { op: 'count' }, { op: 'replace', with: '[withheld]' }] as Operation[]) {
      const ops = subjectOps({ 'subjects[].intelligence[]': op });
      delete ops['subjects[].intelligence[].summary'];
      const s = (run(d, { dossier: {}, subjects: [ops, null, null, null] }).dossier as Out).subjects![0]!;
      expect(s.addresses, JSON.stringify(op)).toEqual([{ line1: '14 Cedar Road' }, { line1: 'Unit 4, Holbrook Trading Estate' }]);
    }
  });

  it('discloses the derivedFrom field only where a policy grants it', () => {
    const d = derived();
    const ops = subjectOps({ 'subjects[].addresses[].derivedFrom': { op: 'keep' }, 'subjects[].intelligence[].id': { op: 'keep' } });
    const { dossier, disclosed } = run(d, { dossier: {}, subjects: [ops, null, null, null] });
    const s = (dossier as Out).subjects![0]!;
    expect(s.addresses).toContainEqual({ line1: '9 Cedar Road', derivedFrom: 'INT-88377' });
    expect(disclosed).toContainEqual({ path: 'subjects[].addresses[].derivedFrom', op: 'keep' });
  });

  it('fails closed: an id also carried by a withheld item, or a projection without provenance, withholds', () => {
    const d = derived();
    // A second INT-88377, CHIS this time, on Samuel: which of the two the address came from cannot be told.
    d.subjects[1]!.intelligence!.push({ ...d.subjects[0]!.intelligence![1]!, sourceType: 'CHIS' });
    const s = (run(d, { dossier: {}, subjects: [subjectOps(), subjectOps(), null, null] }).dossier as Out).subjects![0]!;
    expect(s.addresses).not.toContainEqual({ line1: '9 Cedar Road' });

    const project = compileProjection({ 'locations[].line1': { op: 'keep' } });
    const out = project({ locations: [{ line1: 'a' }, { line1: 'b', derivedFrom: 'INT-1' }] }, { pseudonymKey: key, at: undefined, disclosed: new Map() });
    expect(out).toEqual({ locations: [{ line1: 'a' }] });
  });

  it('records no disclosure for an array whose only items are withheld', () => {
    const d = derived();
    d.subjects[0]!.vehicles = [{ vrm: 'TK21 SRV', derivedFrom: 'INT-88121' }];
    const { dossier, disclosed } = run(d, { dossier: {}, subjects: [subjectOps(), null, null, null] });
    expect((dossier as Out).subjects![0]!.vehicles).toBeUndefined();
    expect(disclosed.map((x) => x.path)).not.toContain('subjects[].vehicles[].vrm');
  });
});

describe('provenance with the sample policies', () => {
  let set: PolicySet;
  beforeAll(async () => {
    set = await loadPolicySet(SAMPLE, NOW);
  });

  it('the preview trace says what was withheld and why, under its own subject', async () => {
    const d = validateDossier(derived());
    const p = await buildPreview({ set, decider: new Decider(set), dossier: d, partner: 'dvla', now: NOW });
    const text = JSON.stringify(p.plaintext);
    expect(text).not.toContain('TK21 SRV');
    expect(text).not.toContain('CV6 6FN');
    expect(p.trace).toContainEqual({ rule: 'provenance', scope: 'subject', subject: 'S1', subjectIndex: 0, path: 'subjects[0].addresses[2]', op: 'withhold', note: 'derived from withheld intelligence INT-88121' });
    const i = p.trace.findIndex((t) => t.rule === 'provenance');
    expect(p.trace[i - 1]).toMatchObject({ scope: 'subject', subjectIndex: 0 });
  });

  it('no partner and no peer gets technical or undercover intelligence, nor what was derived from it', async () => {
    const d = derived();
    d.subjects[0]!.intelligence![1]!.sourceType = 'technical';
    d.subjects[1]!.intelligence![0]!.sourceType = 'undercover';
    // Peers are decided as the partners of a derived set sharing gateway.yaml (gateway/exchange/peers.ts).
    const peers: PolicySet = { ...set, partners: new Map([...(set.peerPolicies ?? new Map<string, PeerPolicy>())].map(([id, p]) => [id, asPartner(p)])) };
    expect(peers.partners.size).toBeGreaterThan(0);
    const delivered = new Set<string>();
    for (const [recipients, decider] of [
      [set.partners.keys(), new Decider(set)],
      [peers.partners.keys(), new Decider(peers)],
    ] as const) {
      for (const partner of recipients) {
        const decision = await decider.decide(partner, validateDossier(d), NOW);
        if (decision.block) continue;
        delivered.add(partner);
        const text = JSON.stringify(run(d, decision.plan).dossier);
        for (const v of ['Believed to control rentals', 'Collects debts', '9 Cedar Road', 'Yard 3, Canal Basin', 'CV6 5HY', 'CV1 4LY']) {
          expect(text, `${partner}: ${v}`).not.toContain(v);
        }
      }
    }
    expect([...peers.partners.keys(), 'council-housing', 'dvla'].filter((r) => !delivered.has(r))).toEqual([]);
  });
});

describe('provenance (property)', () => {
  const sourceTypes = ['CHIS', 'technical', 'public', 'officer'] as const;
  const intelOp = fc.constantFrom<Operation | undefined>(undefined, { op: 'strip' }, { op: 'count' }, { op: 'filter', where: notChis }, {
    op: 'filter',
    where: { all: [{ fact: 'grading.source', operator: 'lessThanInclusive', value: 1 }] },
  });
  const addressOp = fc.constantFrom<Operation | undefined>(undefined, { op: 'generalise', to: 'postcode' }, { op: 'filter', where: { all: [{ fact: 'type', operator: 'equal', value: 'home' }] } });
  const arb = fc.record({
    subjects: fc.array(
      fc.record({
        intel: fc.array(fc.record({ sourceType: fc.constantFrom(...sourceTypes), source: fc.constantFrom(1, 2) }), { maxLength: 3 }),
        addresses: fc.array(fc.option(fc.nat({ max: 11 }), { nil: undefined }), { maxLength: 4 }),
        included: fc.boolean(),
        intelOp,
        addressOp,
      }),
      { minLength: 1, maxLength: 4 },
    ),
    locations: fc.array(fc.option(fc.nat({ max: 11 }), { nil: undefined }), { maxLength: 3 }),
  });

  it('no disclosed item has a derivedFrom naming an intelligence item that is not disclosed', () => {
    fc.assert(
      fc.property(arb, (g) => {
        const ids = g.subjects.flatMap((s, i) => s.intel.map((_, k) => `INT-${i}-${k}`));
        const ref = (n: number | undefined) => (n === undefined || ids.length === 0 ? {} : { derivedFrom: ids[n % ids.length]! });
        const d = structuredClone(full) as unknown as Dossier;
        d.subjects = g.subjects.map((s, i) => ({
          id: `S${i}`,
          role: 'member',
          name: { given: 'G', family: `F${i}` },
          addresses: s.addresses.map((n, j) => ({ type: j % 2 === 0 ? 'home' : 'work', line1: `${i}-${j}`, town: 'Coventry', postcode: 'CV6 5HX', ...ref(n) })),
          intelligence: s.intel.map((x, k) => ({
            id: `INT-${i}-${k}`,
            recordedAt: '2026-01-01',
            summary: 'x',
            grading: { source: x.source as 1 | 2, intelligence: 'B', handling: 'P' },
            sourceType: x.sourceType,
          })),
        }));
        d.locations = g.locations.map((n, j) => ({ type: 'storage', line1: `L${j}`, town: 'Coventry', postcode: 'CV6 5PD', ...ref(n) }));
        validateDossier(d);
        const plan: Plan = {
          dossier: { 'locations[].line1': { op: 'keep' }, 'locations[].derivedFrom': { op: 'keep' } },
          subjects: g.subjects.map((s) => {
            if (!s.included) return null;
            const ops: Record<string, Operation> = { 'subjects[].addresses[].line1': { op: 'keep' }, 'subjects[].addresses[].derivedFrom': { op: 'keep' } };
            if (s.addressOp !== undefined) {
              ops['subjects[].addresses[]'] = s.addressOp;
              if (s.addressOp.op === 'generalise') {
                delete ops['subjects[].addresses[].line1'];
                delete ops['subjects[].addresses[].derivedFrom'];
              }
            }
            if (s.intelOp !== undefined) ops['subjects[].intelligence[]'] = s.intelOp;
            if (s.intelOp === undefined || s.intelOp.op === 'filter') ops['subjects[].intelligence[].id'] = { op: 'keep' };
            return ops;
          }),
        };
        const { dossier, withheld } = run(d, plan);
        const out = dossier as { subjects?: Array<{ addresses?: unknown[]; intelligence?: unknown }>; locations?: Array<{ derivedFrom?: string }> };
        const given = new Set((out.subjects ?? []).flatMap((s) => (Array.isArray(s.intelligence) ? (s.intelligence as Array<{ id: string }>).map((x) => x.id) : [])));
        const items = [...(out.subjects ?? []).flatMap((s) => (s.addresses ?? []) as Array<{ derivedFrom?: string }>), ...(out.locations ?? [])];
        for (const item of items) if (item.derivedFrom !== undefined) expect(given.has(item.derivedFrom), item.derivedFrom).toBe(true);
        // Every withheld item names an item not given, and nothing derived from a given item is withheld.
        for (const w of withheld) expect(given.has(w.reason.split(' ').pop()!)).toBe(false);
        // A generalised address carries no derivedFrom: count instead, item by item, what may go.
        for (const s of out.subjects ?? []) {
          const i = Number(String((s as { id?: string }).id).slice('ref-'.length)) - 1;
          const input = d.subjects[i]!;
          const op = g.subjects[i]!.addressOp;
          const allowed = (input.addresses ?? []).filter((a) => (a.derivedFrom === undefined || given.has(a.derivedFrom)) && (op?.op !== 'filter' || a.type === 'home'));
          expect((s.addresses ?? []).length).toBe(allowed.length);
        }
      }),
      { numRuns: 300 },
    );
  });
});
