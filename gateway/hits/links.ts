/**
 * Links: values that connect two subjects. Pure functions only (no I/O): the dossier's own data and
 * the partners' hits are turned into normalised link items, and items that share a value across
 * different subjects become links, each with its evidence.
 *
 * What counts as the same thing (see normalise.ts for the normal forms):
 * - `address`: the same normalised postcode AND the same normalised line 1 (`22 Cedar Road, CV6 5HX`
 *   and `22 CEDAR RD, cv65hx` are one address; `14 Cedar Road` in the same postcode is not).
 * - `postcode`: addresses in the same full postcode unit (a street or part of one, ~15 homes), listed
 *   when the subjects there are not all at one address: a weaker lead than `address`. Hits that name a
 *   postcode without a line 1 only ever link by postcode.
 * - `vehicle`: the same VRM; `phone`: the same E.164 number; `business`: the same company number.
 *
 * A link connects at least two different subjects, and at least one of them belongs to the dossier
 * the bundle is for; the others may be subjects of other dossiers from the same source.
 */
import type { Dossier, HitKind } from '../dossier/types.js';
import { addressKey, normaliseCompanyNumber, normalisePhone, normalisePostcode, normaliseVrm } from './normalise.js';

export type ItemKind = 'address' | 'postcode' | 'vehicle' | 'phone' | 'business';
export type LinkKind = ItemKind;

export interface SubjectKey {
  dossier: string;
  subject: string;
}

export type Evidence =
  | { from: 'dossier'; dossier: string; subject: string; path: string }
  | { from: 'hit'; dossier: string; subject: string; partner: string; hitKind: HitKind; field: string; partnerRecordRef?: string };

/** One normalised value held by one subject, and where it was seen. */
export interface LinkItem {
  kind: ItemKind;
  /** Normal form: an `addressKey` for addresses, the normalised value otherwise. */
  value: string;
  /** For addresses: the normalised postcode (an address also counts towards its postcode). */
  postcode?: string;
  subject: SubjectKey;
  evidence: Evidence;
}

export interface LinkEvidence {
  /** Present only for subjects of other dossiers. */
  dossier?: string;
  subject: string;
  /** `dossier` (the source's own data) or the partner whose hit it was. */
  source: string;
  path?: string;
  hit?: HitKind;
  partnerRecordRef?: string;
}

export interface Link {
  kind: LinkKind;
  value: string;
  /** Subject ids of the bundle's dossier. */
  subjects: string[];
  /** Subjects of other dossiers from the same source. */
  otherDossiers?: Array<{ dossier: string; reference?: string; subject: string }>;
  evidence: LinkEvidence[];
}

/** A hit as far as links care: the dossier subject it was mapped to, and its flat detail. */
export interface HitForLinks {
  subject: string;
  partner: string;
  kind: HitKind;
  detail: Record<string, string | number | boolean | null>;
  partnerRecordRef?: string;
}

// ---- extraction ---------------------------------------------------------------------------------

export function dossierItems(dossierId: string, dossier: Pick<Dossier, 'subjects'>): LinkItem[] {
  const items: LinkItem[] = [];
  dossier.subjects.forEach((s, i) => {
    const subject = { dossier: dossierId, subject: s.id };
    const ev = (path: string): Evidence => ({ from: 'dossier', dossier: dossierId, subject: s.id, path });
    s.addresses?.forEach((a, j) => {
      const item = addressItem(a.line1, a.postcode, subject, ev(`/subjects/${i}/addresses/${j}`));
      if (item) items.push(item);
    });
    s.vehicles?.forEach((v, j) => {
      const vrm = normaliseVrm(v.vrm);
      if (vrm) items.push({ kind: 'vehicle', value: vrm, subject, evidence: ev(`/subjects/${i}/vehicles/${j}/vrm`) });
    });
    s.phones?.forEach((p, j) => {
      const phone = normalisePhone(p);
      if (phone) items.push({ kind: 'phone', value: phone, subject, evidence: ev(`/subjects/${i}/phones/${j}`) });
    });
    s.businesses?.forEach((b, j) => {
      const number = normaliseCompanyNumber(b.companyNumber);
      if (number) items.push({ kind: 'business', value: number, subject, evidence: ev(`/subjects/${i}/businesses/${j}/companyNumber`) });
    });
  });
  return items;
}

/**
 * A dossier's own link item as the store keeps it: `[kind, value, subject id, path]`. The dossier id
 * is the record's and an address's postcode is the first part of its value, so neither is repeated
 * in every item (a 20-subject dossier's index is a third of its size written out in full).
 */
export type PackedItem = [kind: ItemKind, value: string, subject: string, path: string];

/** Packs the items `dossierItems` made (anything else is refused: only dossier evidence packs). */
export function packDossierItems(dossierId: string, items: readonly LinkItem[]): PackedItem[] {
  return items.map((i) => {
    const e = i.evidence;
    if (e.from !== 'dossier' || e.dossier !== dossierId || i.subject.dossier !== dossierId || e.subject !== i.subject.subject) {
      throw new Error(`only a dossier's own link items pack (${i.kind} of ${i.subject.dossier})`);
    }
    if (i.kind === 'address' && i.postcode !== i.value.slice(0, i.value.indexOf('|'))) throw new Error('an address item whose postcode is not its value\'s');
    return [i.kind, i.value, e.subject, e.path];
  });
}

/** The link items of a dossier as stored: packed, or written out in full (as stored before packing). */
export function unpackItems(dossierId: string, stored: ReadonlyArray<PackedItem | LinkItem>): LinkItem[] {
  return stored.map((s) => {
    if (!Array.isArray(s)) return s;
    const [kind, value, subject, path] = s;
    return {
      kind,
      value,
      ...(kind === 'address' ? { postcode: value.slice(0, value.indexOf('|')) } : {}),
      subject: { dossier: dossierId, subject },
      evidence: { from: 'dossier', dossier: dossierId, subject, path },
    };
  });
}

/** Field names (case-insensitive) read from a hit's flat detail. */
const HIT_FIELDS = Object.freeze({
  line1: ['line1', 'addressLine1', 'address_line1'],
  postcode: ['postcode', 'postCode', 'post_code'],
  vehicle: ['vrm', 'registration', 'registrationMark', 'registration_mark'],
  phone: ['phone', 'telephone', 'mobile', 'phoneNumber', 'phone_number'],
  business: ['companyNumber', 'company_number', 'companyNo'],
});

function field(detail: HitForLinks['detail'], names: readonly string[]): { name: string; value: string } | undefined {
  const wanted = new Set(names.map((n) => n.toLowerCase()));
  for (const [name, value] of Object.entries(detail)) {
    if (wanted.has(name.toLowerCase()) && typeof value === 'string') return { name, value };
  }
  return undefined;
}

export function hitItems(dossierId: string, hit: HitForLinks): LinkItem[] {
  const items: LinkItem[] = [];
  const subject = { dossier: dossierId, subject: hit.subject };
  const ev = (name: string): Evidence => ({
    from: 'hit',
    dossier: dossierId,
    subject: hit.subject,
    partner: hit.partner,
    hitKind: hit.kind,
    field: `detail.${name}`,
    ...(hit.partnerRecordRef !== undefined ? { partnerRecordRef: hit.partnerRecordRef } : {}),
  });
  const line1 = field(hit.detail, HIT_FIELDS.line1);
  const postcode = field(hit.detail, HIT_FIELDS.postcode);
  if (postcode) {
    const item = line1 ? addressItem(line1.value, postcode.value, subject, ev(`${line1.name}, detail.${postcode.name}`)) : undefined;
    if (item) items.push(item);
    else {
      const pc = normalisePostcode(postcode.value);
      if (pc) items.push({ kind: 'postcode', value: pc, subject, evidence: ev(postcode.name) });
    }
  }
  const vrm = field(hit.detail, HIT_FIELDS.vehicle);
  const v = vrm && normaliseVrm(vrm.value);
  if (vrm && v) items.push({ kind: 'vehicle', value: v, subject, evidence: ev(vrm.name) });
  const phone = field(hit.detail, HIT_FIELDS.phone);
  const p = phone && normalisePhone(phone.value);
  if (phone && p) items.push({ kind: 'phone', value: p, subject, evidence: ev(phone.name) });
  const company = field(hit.detail, HIT_FIELDS.business);
  const c = company && normaliseCompanyNumber(company.value);
  if (company && c) items.push({ kind: 'business', value: c, subject, evidence: ev(company.name) });
  return items;
}

function addressItem(line1: unknown, postcode: unknown, subject: SubjectKey, evidence: Evidence): LinkItem | undefined {
  const key = addressKey(line1, postcode);
  if (key) return { kind: 'address', value: key, postcode: normalisePostcode(postcode)!, subject, evidence };
  const pc = normalisePostcode(postcode);
  return pc ? { kind: 'postcode', value: pc, subject, evidence } : undefined;
}

/**
 * The values an item can be matched on across dossiers: an address also matches by its postcode.
 * These (kind, value) pairs are what gets HMAC'd into the per-source index.
 */
export function matchTokens(item: LinkItem): Array<{ kind: ItemKind; value: string }> {
  const out: Array<{ kind: ItemKind; value: string }> = [{ kind: item.kind, value: item.value }];
  if (item.kind === 'address' && item.postcode) out.push({ kind: 'postcode', value: item.postcode });
  return out;
}

// ---- finding links ------------------------------------------------------------------------------

const KIND_ORDER: readonly LinkKind[] = ['address', 'vehicle', 'phone', 'business', 'postcode'];

function display(kind: LinkKind, value: string): string {
  if (kind !== 'address') return value;
  const [postcode, line1] = value.split('|') as [string, string];
  return `${line1}, ${postcode}`;
}

const subjectId = (s: SubjectKey) => `${s.dossier}\u0000${s.subject}`;

/**
 * Groups items by (kind, value) and returns every group that connects two or more different subjects,
 * at least one of them in `dossierId`. Addresses also group by postcode, as `postcode` links, when the
 * subjects in that postcode are not all at one and the same address. Deterministic order: by kind
 * (address, vehicle, phone, business, postcode), then value.
 */
export function findLinks(items: readonly LinkItem[], dossierId: string, references: ReadonlyMap<string, string> = new Map()): Link[] {
  const groups = new Map<string, { kind: LinkKind; value: string; items: LinkItem[] }>();
  const add = (kind: LinkKind, value: string, item: LinkItem) => {
    const key = `${kind}\u0000${value}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { kind, value, items: [] }));
    g.items.push(item);
  };
  for (const item of items) {
    for (const token of matchTokens(item)) add(token.kind, token.value, item);
  }

  const links: Link[] = [];
  for (const g of groups.values()) {
    const subjects = new Map<string, SubjectKey>();
    for (const item of g.items) subjects.set(subjectId(item.subject), item.subject);
    if (subjects.size < 2) continue;
    const local = [...subjects.values()].filter((s) => s.dossier === dossierId);
    if (local.length === 0) continue;
    if (g.kind === 'postcode') {
      // Only worth saying when the subjects are not all at one address (then `address` says it).
      const addresses = new Set(g.items.map((i) => (i.kind === 'address' ? i.value : `postcode-only\u0000${subjectId(i.subject)}`)));
      if (addresses.size < 2) continue;
    }
    const others = [...subjects.values()].filter((s) => s.dossier !== dossierId);
    const evidence = dedupe(g.items.map((i) => toEvidence(i.evidence, dossierId)));
    links.push({
      kind: g.kind,
      value: display(g.kind, g.value),
      subjects: sortIds(local.map((s) => s.subject)),
      ...(others.length
        ? {
            otherDossiers: others
              .map((s) => ({ dossier: s.dossier, ...(references.has(s.dossier) ? { reference: references.get(s.dossier)! } : {}), subject: s.subject }))
              .sort((a, b) => a.dossier.localeCompare(b.dossier) || compareIds(a.subject, b.subject)),
          }
        : {}),
      evidence,
    });
  }
  return links.sort((a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) || a.value.localeCompare(b.value));
}

function toEvidence(e: Evidence, dossierId: string): LinkEvidence {
  const base = { ...(e.dossier !== dossierId ? { dossier: e.dossier } : {}), subject: e.subject };
  if (e.from === 'dossier') return { ...base, source: 'dossier', path: e.path };
  return {
    ...base,
    source: e.partner,
    hit: e.hitKind,
    path: e.field,
    ...(e.partnerRecordRef !== undefined ? { partnerRecordRef: e.partnerRecordRef } : {}),
  };
}

function dedupe(evidence: LinkEvidence[]): LinkEvidence[] {
  const seen = new Set<string>();
  return evidence.filter((e) => {
    const key = JSON.stringify(e);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Subject ids in natural order (S2 before S10). */
export function compareIds(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

function sortIds(ids: string[]): string[] {
  return [...new Set(ids)].sort(compareIds);
}
