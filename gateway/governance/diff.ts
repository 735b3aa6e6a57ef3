/**
 * What changes for each partner between two policy sets, on given dossiers: the paths (with their
 * operations) each partner gains or loses, the subjects it receives, and whether its delivery is
 * blocked. For `cordon policy diff`. Pure: decides and redacts exactly as the fan-out does, with fixed
 * placeholder refs and pseudonym keys.
 */
import type { Dossier } from '../dossier/types.js';
import { redact } from '../redact/redact.js';
import { Decider } from '../policy/decide.js';
import { previewPseudonymKey, previewRef } from './preview.js';
import type { PolicySet } from '../policy/types.js';

/** What one partner receives of one dossier under one set. */
interface PartnerView {
  /** No policy for this partner in the set. */
  absent?: boolean;
  blocked?: string;
  /** Path → operations (`keep`, `generalise:year`, …; several when subjects differ). */
  paths: Map<string, string>;
  /** The input ids of the subjects shared. */
  subjects: string[];
}

interface PathChange {
  path: string;
  from?: string;
  to?: string;
  change: 'gained' | 'lost' | 'changed';
}

export interface PartnerDiff {
  partner: string;
  from: PartnerView;
  to: PartnerView;
  delivery?: { from: string; to: string };
  subjects?: { from: string[]; to: string[] };
  paths: PathChange[];
}

export async function partnerView(set: PolicySet, decider: Decider, dossier: Dossier, partner: string, now: Date): Promise<PartnerView> {
  if (!set.partners.has(partner)) return { absent: true, paths: new Map(), subjects: [] };
  const decision = await decider.decide(partner, dossier, now);
  if (decision.block) return { blocked: decision.block.reason, paths: new Map(), subjects: [] };
  const refs = new Map(dossier.subjects.map((s, i) => [s.id, previewRef(i)]));
  const { disclosed } = redact(dossier, decision.plan, { refs, pseudonymKey: previewPseudonymKey(partner) });
  const paths = new Map<string, string>();
  for (const { path, op } of disclosed) {
    const prior = paths.get(path);
    paths.set(path, prior === undefined ? op : [...new Set([...prior.split(', '), op])].sort().join(', '));
  }
  const subjects = dossier.subjects.filter((_, i) => decision.plan.subjects[i] != null).map((s) => s.id);
  return { paths, subjects };
}

function delivery(v: PartnerView): string {
  if (v.absent) return 'no policy';
  if (v.blocked) return `blocked (${v.blocked})`;
  return 'shared';
}

export function comparePartner(partner: string, from: PartnerView, to: PartnerView): PartnerDiff {
  const out: PartnerDiff = { partner, from, to, paths: [] };
  if (delivery(from) !== delivery(to)) out.delivery = { from: delivery(from), to: delivery(to) };
  if (from.subjects.join('\u0000') !== to.subjects.join('\u0000')) out.subjects = { from: from.subjects, to: to.subjects };
  const all = [...new Set([...from.paths.keys(), ...to.paths.keys()])].sort();
  for (const path of all) {
    const a = from.paths.get(path);
    const b = to.paths.get(path);
    if (a === b) continue;
    const c: PathChange = { path, change: a === undefined ? 'gained' : b === undefined ? 'lost' : 'changed' };
    if (a !== undefined) c.from = a;
    if (b !== undefined) c.to = b;
    out.paths.push(c);
  }
  return out;
}

export function isUnchanged(d: PartnerDiff): boolean {
  return d.delivery === undefined && d.subjects === undefined && d.paths.length === 0;
}

/** Every partner of either set, on one dossier. */
export async function diffSets(from: PolicySet, to: PolicySet, dossier: Dossier, now: Date): Promise<PartnerDiff[]> {
  const a = new Decider(from);
  const b = new Decider(to);
  const partners = [...new Set([...from.partners.keys(), ...to.partners.keys()])].sort();
  const out: PartnerDiff[] = [];
  for (const p of partners) {
    out.push(comparePartner(p, await partnerView(from, a, dossier, p, now), await partnerView(to, b, dossier, p, now)));
  }
  return out;
}
