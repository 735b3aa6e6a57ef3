/**
 * gateway.yaml's nonCompetentFilter: intelligence graded 3 or D/E never reaches a recipient that is not
 * a competent authority, whatever its own filter says; alwaysFilter keeps grade E (suspected false) from
 * everyone, peers included. Run on the sample policies with the partners' own filters loosened, so that
 * only the gateway-wide constraints stand between the items and the recipient.
 */
import { mkdtemp, cp, readFile, writeFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { asPartner } from '../../gateway/exchange/peers.js';
import { valuesAt } from '../../gateway/governance/testing.js';
import { lintPolicies } from '../../gateway/governance/lint.js';
import { Decider } from '../../gateway/policy/decide.js';
import { collectPolicySet, loadPolicySet } from '../../gateway/policy/load.js';
import { gatewayFor } from '../../gateway/policy/non-competent.js';
import { redact } from '../../gateway/redact/redact.js';
import type { Dossier } from '../../gateway/dossier/types.js';
import type { Condition, GatewayRules, PartnerPolicy, PolicySet } from '../../gateway/policy/types.js';

const NOW = new Date('2026-11-21T12:00:00Z');
const SAMPLE = path.resolve(import.meta.dirname, '../../policies');
const INTEL = 'subjects[].intelligence[]';

let set: PolicySet;
let graded: Dossier;
beforeAll(async () => {
  set = await loadPolicySet(SAMPLE, NOW);
  graded = JSON.parse(await readFile(path.join(SAMPLE, 'tests/dossiers/graded-3-d-e.json'), 'utf8')) as Dossier;
  // Every item handling P, so that only the grades decide here (handling-C items have rules of their own).
  for (const subject of graded.subjects) for (const item of subject.intelligence ?? []) item.grading.handling = 'P';
});

/** The partner with its own intelligence filter loosened to "handling P or C" (any grade), and `competentAuthority` as given. */
function loosened(id: string, competentAuthority: boolean): PartnerPolicy {
  const p = structuredClone(set.partners.get(id)!);
  p.fields[INTEL] = { op: 'filter', where: { all: [{ fact: 'grading.handling', operator: 'in', value: ['P', 'C'] }] } };
  p.partner.competentAuthority = competentAuthority;
  return p;
}

/** The intelligence ids (grades) the recipient would receive of the graded dossier. */
async function received(recipients: Map<string, PartnerPolicy>, id: string): Promise<string[]> {
  const decider = new Decider({ ...set, revision: `edited-${id}`, partners: recipients });
  const decision = await decider.decide(id, graded, NOW);
  expect(decision.block).toBeUndefined();
  const refs = new Map(graded.subjects.map((s, i) => [s.id, `ref-${i}`]));
  const { dossier } = redact(graded, decision.plan, { refs, pseudonymKey: Buffer.alloc(32, 7) });
  const grades = valuesAt(dossier, 'subjects[].intelligence[].grading') as Array<{ source: number; intelligence: string }>;
  return grades.map((g) => `${g.source}${g.intelligence}`).sort();
}

describe('nonCompetentFilter', () => {
  it('loads from the sample gateway.yaml: source 1-2, assessed A-C', () => {
    expect(set.gateway.nonCompetentFilter).toEqual({
      [INTEL]: {
        all: [
          { fact: 'grading.source', operator: 'in', value: [1, 2] },
          { fact: 'grading.intelligence', operator: 'in', value: ['A', 'B', 'C'] },
        ],
      },
    });
  });

  it('keeps 3, D and E from a recipient that is not a competent authority, whatever its own filter says', async () => {
    const housing = loosened('council-housing', false);
    // Daniel: 1A, 1B (kept), 3A, 1D, 2E; Samuel: 2C (kept). The CHIS item never leaves (alwaysFilter).
    expect(await received(new Map([['council-housing', housing]]), 'council-housing')).toEqual(['1A', '1B', '2C']);
    const children = loosened('childrens-services', false);
    // Tyler: 2A, 2B (kept), 3B, 2D, 1E.
    expect(await received(new Map([['childrens-services', children]]), 'childrens-services')).toEqual(['2A', '2B']);
  });

  it('lets a competent authority have 3 and D under its own filter, never E', async () => {
    const housing = loosened('council-housing', true);
    expect(await received(new Map([['council-housing', housing]]), 'council-housing')).toEqual(['1A', '1B', '1D', '2C', '3A']);
  });

  it('treats a recipient whose file does not say competentAuthority as not one (fail closed)', async () => {
    const housing = loosened('council-housing', false);
    delete housing.partner.competentAuthority;
    expect(await received(new Map([['council-housing', housing]]), 'council-housing')).toEqual(['1A', '1B', '2C']);
  });

  it('peer forces are competent authorities: grade 3 and D cross, E does not', async () => {
    const peer = set.peerPolicies?.get('warwickshire');
    expect(peer).toBeDefined();
    const asRecipient = asPartner(peer!);
    expect(asRecipient.partner.competentAuthority).toBe(true);
    expect(await received(new Map([['warwickshire', asRecipient]]), 'warwickshire')).toEqual(['1A', '1A', '1B', '1D', '2A', '2B', '2C', '2D', '3A', '3B']);
  });
});

describe('gatewayFor', () => {
  const notChisLeaf: Condition = { fact: 'sourceType', operator: 'notEqual', value: 'CHIS' };
  const gradeLeaf: Condition = { fact: 'grading.source', operator: 'in', value: [1, 2] };
  const notChis: Condition = { all: [notChisLeaf] };
  const gradeOk: Condition = { all: [gradeLeaf] };
  const gw: GatewayRules = {
    neverShare: ['subjects[].identifiers.pnc'],
    alwaysFilter: { [INTEL]: structuredClone(notChis) },
    nonCompetentFilter: { [INTEL]: structuredClone(gradeOk), 'locations[]': { fact: 'type', operator: 'notEqual', value: 'safe-house' } },
  };

  it('is the gateway constraints unchanged for a competent authority', () => {
    expect(gatewayFor(gw, true)).toBe(gw);
    expect(gatewayFor({ neverShare: [], alwaysFilter: {} }, false)).toEqual({ neverShare: [], alwaysFilter: {} });
  });

  it('ANDs each condition into alwaysFilter (or adds it) for anyone else, leaving the gateway constraints as they were', () => {
    const before = structuredClone(gw);
    const r = gatewayFor(gw, false);
    expect(r.neverShare).toEqual(gw.neverShare);
    expect(r.alwaysFilter).toEqual({
      [INTEL]: { all: [gradeLeaf, notChisLeaf] },
      'locations[]': { fact: 'type', operator: 'notEqual', value: 'safe-house' },
    });
    expect(gatewayFor(gw, undefined).alwaysFilter).toEqual(r.alwaysFilter);
    expect(gw).toEqual(before);
  });
});

describe('loading nonCompetentFilter', () => {
  it('reports a path that is not an array of objects, an unknown path and an unknown fact, each at its place', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cordon-ncf-'));
    try {
      await cp(SAMPLE, dir, { recursive: true });
      const file = path.join(dir, 'gateway.yaml');
      const text = await readFile(file, 'utf8');
      await writeFile(
        file,
        text.replace(
          'nonCompetentFilter:\n',
          'nonCompetentFilter:\n  reference:\n    all: [{ fact: x, operator: equal, value: 1 }]\n  subjects[].nothing[]:\n    all: [{ fact: x, operator: equal, value: 1 }]\n  locations[]:\n    all: [{ fact: colour, operator: equal, value: red }]\n',
        ),
      );
      const { problems } = await collectPolicySet(dir, NOW);
      const ours = problems.filter((p) => p.path?.startsWith('gateway.yaml'));
      expect(ours.map((p) => p.path)).toEqual([
        expect.stringContaining('nonCompetentFilter.reference'),
        expect.stringContaining('nonCompetentFilter'),
        expect.stringContaining('nonCompetentFilter'),
      ]);
      expect(ours.map((p) => p.message)).toEqual([
        'filters apply to arrays of objects',
        'no such field in the dossier schema',
        expect.stringContaining('colour'),
      ]);
      const lint = await lintPolicies(dir, { now: NOW });
      expect(lint.findings.filter((f) => f.severity === 'error' && f.file === 'gateway.yaml')).toHaveLength(3);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
