/**
 * Does an agreement say what its policy grants? `agreement.dataItems` is the list both parties signed
 * ("names and aliases", "known addresses"); `fields` is what the gateway actually discloses. They are
 * written by different people at different times and drift apart: a data item listed but never granted
 * (the agreement promises what the partner never gets, or the policy forgot it), or a field granted that
 * no data item covers (the gateway discloses what nobody signed for, the worse of the two), or a field
 * granted whole where the agreement promises less ("year of birth" and the full date kept). Pure.
 *
 * Data items are free text, so they are read through a small vocabulary of field families, each with
 * the words that name it in an agreement and the dossier paths it covers. Administrative fields (the
 * dossier's reference, originator unit, dates, classification, handling, purpose, requested checks) are
 * not personal data items and are not compared.
 */
import type { Operation } from '../policy/types.js';

export interface FieldFamily {
  id: string;
  /** How a message names it. */
  label: string;
  /** Words that name it in a data item. */
  words: RegExp;
  /** Policy paths (prefixes) that belong to it. */
  paths: string[];
  /**
   * A narrower form an item may name ("year of birth", "postcodes of known addresses"), and whether a
   * granted path and operation stays within it: an agreement that promises the narrow form is broken by
   * a field that grants the whole.
   */
  narrow?: { words: RegExp; what: string; within: (path: string, op: Operation) => boolean };
}

const subject = (...p: string[]) => p.map((x) => `subjects[].${x}`);

/** In order: a family whose words match takes them out of the item before the next looks (the group's name is not a person's). */
const FIELD_FAMILIES: readonly FieldFamily[] = [
  { id: 'group', label: "the group's details", words: /\b(?:the )?group(?:'s)?\s+(?:name|details|crime types|areas|ocgm)[^;]*|\b(?:name|details|crime types|areas) of the group\b/i, paths: ['group'] },
  { id: 'role', label: "each person's role", words: /\broles? in the (?:group|dossier)\b(?:\s*\([^)]*\))?|\bcategor(?:y|ies) of (?:person|subject)s?\b/i, paths: subject('role') },
  { id: 'aliases', label: 'aliases', words: /\baliases\b/i, paths: subject('name.aliases') },
  { id: 'names', label: 'names', words: /\bnames?\b/i, paths: subject('name.given', 'name.family') },
  {
    id: 'dateOfBirth',
    label: 'dates of birth',
    words: /\b(?:dates?|years?) of birth\b|\bages?\b/i,
    paths: subject('dateOfBirth'),
    narrow: { words: /\byears? of birth\b|\bage bands?\b/i, what: 'the year of birth or an age band', within: (_p, op) => op.op === 'generalise' },
  },
  { id: 'gender', label: 'gender', words: /\bgender\b|\bsex\b/i, paths: subject('gender') },
  { id: 'nationality', label: 'nationality', words: /\bnationalit/i, paths: subject('nationality') },
  { id: 'niNumber', label: 'National Insurance numbers', words: /\bnational insurance\b/i, paths: subject('identifiers.niNumber') },
  { id: 'passport', label: 'passport numbers', words: /\bpassport/i, paths: subject('identifiers.passport') },
  { id: 'drivingLicence', label: 'driving licence numbers', words: /\bdriving licen[cs]e|\bdriver records?\b/i, paths: subject('identifiers.drivingLicence') },
  { id: 'pnc', label: 'PNC ids', words: /\bPNC\b|\bpolice national computer\b/i, paths: subject('identifiers.pnc') },
  {
    id: 'addresses',
    label: 'addresses',
    words: /\baddress|\bpostcodes?\b/i,
    paths: subject('addresses'),
    narrow: {
      words: /^\s*(?:the\s+)?(?:postcodes?|towns?)(?:\s+only|\s+of\b.*)?\s*$/i,
      what: 'postcodes or towns',
      within: (p, op) => /\.(?:postcode|town|type)$/.test(p) || (op.op === 'generalise' && ['postcode', 'town', 'district', 'area', 'sector'].includes(op.to)),
    },
  },
  { id: 'vehicles', label: 'vehicles', words: /\bvehicles?\b|\bregistration marks?\b/i, paths: subject('vehicles') },
  { id: 'phones', label: 'phone numbers', words: /\b(?:tele)?phones?\b/i, paths: subject('phones') },
  { id: 'emails', label: 'e-mail addresses', words: /\be-?mails?\b/i, paths: subject('emails') },
  { id: 'bankAccounts', label: 'bank accounts', words: /\bbank/i, paths: subject('bankAccounts') },
  { id: 'businesses', label: 'businesses', words: /\bbusinesses\b|\bcompan(?:y|ies)\b|\bdirectorships?\b/i, paths: subject('businesses') },
  { id: 'benefits', label: 'benefits', words: /\bbenefits?\b/i, paths: subject('benefits') },
  { id: 'associates', label: 'associates', words: /\bassociat/i, paths: subject('associates') },
  { id: 'enforcementHistory', label: 'enforcement history', words: /\benforcement history\b|\bconvictions?\b/i, paths: subject('enforcementHistory') },
  { id: 'intelligence', label: 'intelligence', words: /\bintelligence\b/i, paths: subject('intelligence') },
  { id: 'vulnerabilities', label: 'vulnerabilities', words: /\bvulnerab/i, paths: subject('vulnerabilities') },
  { id: 'locations', label: "the group's locations", words: /\blocations?\b|\bpremises\b/i, paths: ['locations'] },
];

function belongs(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(`${prefix}.`) || path.startsWith(`${prefix}[]`);
}

/** The families a data item names. */
export function familiesOfItem(item: string): FieldFamily[] {
  let rest = item;
  const out: FieldFamily[] = [];
  for (const f of FIELD_FAMILIES) {
    const m = f.words.exec(rest);
    if (m === null) continue;
    out.push(f);
    rest = rest.slice(0, m.index) + ' ' + rest.slice(m.index + m[0].length);
  }
  return out;
}

/** The family a granted path belongs to, or undefined for administrative fields. */
export function familyOfPath(path: string): FieldFamily | undefined {
  return FIELD_FAMILIES.find((f) => f.paths.some((p) => belongs(path, p)));
}

export interface DataItemFinding {
  /** Where, in the loader's notation: `agreement.dataItems[2]` or `fields."subjects[].phones[]"`. */
  location: string;
  message: string;
}

/** Compares `agreement.dataItems` with the paths `fields` grants (every operation but strip grants something). */
export function compareDataItems(dataItems: readonly string[], fields: Readonly<Record<string, Operation>>): DataItemFinding[] {
  const findings: DataItemFinding[] = [];
  const granted = new Map<string, string[]>();
  for (const [path, op] of Object.entries(fields)) {
    if (op.op === 'strip') continue;
    const f = familyOfPath(path);
    if (f === undefined) continue;
    granted.set(f.id, [...(granted.get(f.id) ?? []), path]);
  }
  const listed = new Set<string>();
  /** Families every item names only in their narrow form, with the first such item's index. */
  const narrowOnly = new Map<string, number>();
  const whole = new Set<string>();
  dataItems.forEach((item, i) => {
    const families = familiesOfItem(item);
    if (families.length === 0) {
      findings.push({ location: `agreement.dataItems[${i}]`, message: `data item ${JSON.stringify(item)} names no field lint knows (${FIELD_FAMILIES.map((f) => f.label).join(', ')}): it cannot be checked against fields` });
    }
    for (const f of families) {
      listed.add(f.id);
      if (f.narrow?.words.test(item)) {
        if (!narrowOnly.has(f.id)) narrowOnly.set(f.id, i);
      } else whole.add(f.id);
      if (!granted.has(f.id)) {
        findings.push({ location: `agreement.dataItems[${i}]`, message: `data item ${JSON.stringify(item)} lists ${f.label}, which fields do not grant (no ${f.paths.join(' or ')}): grant it or take it out of the agreement` });
      }
    }
  });
  for (const [id, i] of narrowOnly) {
    const f = FIELD_FAMILIES.find((x) => x.id === id)!;
    const wider = whole.has(id) ? [] : (granted.get(id) ?? []).filter((p) => !f.narrow!.within(p, fields[p]!));
    if (wider.length > 0) {
      findings.push({ location: `fields.${JSON.stringify(wider[0])}`, message: `fields grant more of ${f.label} (${wider.map((p) => `${p}: ${fields[p]!.op}`).join(', ')}) than data item ${JSON.stringify(dataItems[i])} lists (${f.narrow!.what}): generalise it or widen the agreement` });
    }
  }
  for (const [id, paths] of granted) {
    if (listed.has(id)) continue;
    const f = FIELD_FAMILIES.find((x) => x.id === id)!;
    findings.push({ location: `fields.${JSON.stringify(paths[0])}`, message: `fields grant ${f.label} (${paths.join(', ')}), which agreement.dataItems does not list: add it to the agreement or stop granting it` });
  }
  return findings;
}
