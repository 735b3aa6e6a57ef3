/**
 * The information-sharing agreement as a document, built from the live policy set: one source of truth.
 * The sections follow the national ISA template (parties, purpose, legal basis, data items, handling,
 * retention, security, review, owner, signatories), and every statement about what is shared is derived
 * from what the gateway enforces (`fields`, `rules`, the gateway-wide constraints), not from the
 * agreement's own free text, which is quoted beside it. Change the policy and the document changes.
 *
 * Pure: the caller passes the set, the partner and `now`; isa-text.ts renders the model as Markdown or
 * HTML.
 */
import { GatewayError } from '../errors/index.js';
import { agreementStatus, REVIEW_WARN_DAYS } from '../policy/agreement.js';
import { SUBJECT_FACT_TYPES } from '../policy/facts.js';
import type { Condition, Operation, PartnerPolicy, PolicySet, Rule } from '../policy/types.js';
import { familyOfPath } from './data-items.js';
import { conditionFacts, conditionWords, operationWords, pathWords } from './isa-words.js';
import { citedBases, RECIPIENT_KINDS } from './legal-bases.js';

export interface IsaField {
  /** The policy path, so a reader can check the sentence against the policy file. */
  path: string;
  /** "vehicle registration mark as recorded". */
  text: string;
}

export interface IsaRule {
  name: string;
  description?: string;
  scope: 'subject' | 'dossier';
  /** "For each subject who is known to be 18 or over". */
  when: string;
  /** "left out of the packet entirely", "date of birth reduced to the year". */
  effects: string[];
}

export interface IsaDocument {
  schema: 'cordon.isa/v1';
  title: string;
  reference: string;
  generatedAt: string;
  partner: { id: string; name: string; kind: string; kindText?: string; competentAuthority: boolean; checks: string[] };
  status: { state: 'in_force' | 'review_due' | 'not_in_force' | 'expired'; text: string };
  /** The policy revision the document describes, and the partner file's own hash within it. */
  policy: { revision: string; file: string; sha256?: string };
  parties: string[];
  purpose: string;
  legalBasis: {
    text: string;
    provisions: Array<{ citation: string; role: string; note: string }>;
    statutory?: { name: string; reason: string; when: string };
  };
  dataItems: {
    /** As the parties wrote them in the agreement. */
    agreed: string[];
    /** What the policy discloses about each person, grouped by kind of data item. */
    subjects: Array<{ item: string; fields: IsaField[] }>;
    /** What it discloses about the dossier and the group. */
    dossier: IsaField[];
    rules: IsaRule[];
    /** Gateway-wide constraints that hold for this partner whatever its own policy says. */
    constraints: string[];
  };
  disclosure: {
    mode: 'immediate' | 'after-match';
    text: string;
    followUp?: 'automatic' | 'approval';
    matchIdentifiers: IsaField[];
    /** The request words (`requests.checks`) that reach this partner, and its check kinds. */
    requestedBy: string[];
    respondWithinDays?: number;
    signedHits: boolean;
  };
  handling: {
    highestClassification: string;
    handlingCodes: Array<{ code: string; text: string }>;
    conditionsHonoured: Array<{ code: string; description: string }>;
    conditionsNotHonoured: Array<{ code: string; description: string }>;
  };
  retention: { days: number; text: string };
  security: {
    statements: string[];
    partnerKey: { file: string; fingerprint: string };
    gatewayKey?: { fingerprint: string };
    sourceKeys: Array<{ id: string; name: string; file: string; fingerprint: string }>;
  };
  review: { inForceFrom: string; reviewBy: string };
  owner: string;
  signatories: Array<{ party: string }>;
}

export interface IsaOptions {
  now: Date;
  /** The gateway's signing key, when the caller knows it (the CLI reads it from the state directory). */
  gatewayKey?: { fingerprint: string };
}

const HANDLING_CODE_TEXT: Readonly<Record<string, string>> = {
  P: 'lawful sharing permitted (3x5x2 handling code P)',
  C: 'lawful sharing permitted with conditions (3x5x2 handling code C): the conditions travel with the item and the recipient must honour them',
};

const NULLABLE_FACTS = new Set(Object.entries(SUBJECT_FACT_TYPES).filter(([, t]) => t.endsWith('?')).map(([f]) => f));

function field(path: string, op: Operation): IsaField {
  // "intelligence: only those where …" reads better with a colon than run on.
  const sep = op.op === 'filter' || op.op === 'count' ? ': ' : ' ';
  return { path, text: `${pathWords(path)}${sep}${operationWords(op)}` };
}

function ruleWords(rule: Rule): IsaRule {
  const who = rule.when === 'subject' ? 'each subject where' : 'dossiers where';
  const clause = conditionWords(rule.conditions as Condition, rule.when);
  // A rule fires on a fact the dossier does not establish (rules only tighten) unless it says otherwise.
  const unknown = rule.unknown !== 'ignore' && conditionFacts(rule.conditions as Condition).some((f) => NULLABLE_FACTS.has(f)) && !/unknown|not known/.test(clause);
  const effects: string[] = [];
  if (rule.then.exclude) effects.push('the subject is left out of the packet entirely');
  for (const [path, op] of Object.entries(rule.then.set ?? {})) effects.push(field(path, op).text);
  return {
    name: rule.name,
    ...(rule.description ? { description: rule.description } : {}),
    scope: rule.when,
    when: `For ${who} ${clause}${unknown ? ' (or where the dossier does not establish it)' : ''}`,
    effects,
  };
}

function dataItems(set: PolicySet, p: PartnerPolicy): IsaDocument['dataItems'] {
  const families = new Map<string, IsaField[]>();
  const dossier: IsaField[] = [];
  const withheld: string[] = [];
  for (const [path, op] of Object.entries(p.fields)) {
    if (op.op === 'strip') {
      withheld.push(pathWords(path));
      continue;
    }
    const f = familyOfPath(path);
    if (f === undefined || f.id === 'group' || f.id === 'locations') dossier.push(field(path, op));
    else families.set(f.label, [...(families.get(f.label) ?? []), field(path, op)]);
  }
  const constraints: string[] = [];
  if (set.gateway.neverShare.length > 0) constraints.push(`Never disclosed to any recipient: ${set.gateway.neverShare.map(pathWords).join('; ')}.`);
  const filters: Array<[string, Condition]> = Object.entries(set.gateway.alwaysFilter);
  if (p.partner.competentAuthority !== true) filters.push(...Object.entries(set.gateway.nonCompetentFilter ?? {}));
  for (const [path, where] of filters) {
    // Only the filters on what this partner is granted at all.
    if (!Object.keys(p.fields).some((f) => f.startsWith(path))) continue;
    constraints.push(`${capital(pathWords(path))}: only those where ${conditionWords(where, 'item')}; whatever was learned from an item withheld is withheld with it.`);
  }
  if (withheld.length > 0) constraints.push(`Withheld by this policy: ${withheld.join('; ')}.`);
  constraints.push('Anything not listed above is not disclosed: the policy is an allowlist.');
  return {
    agreed: [...p.agreement.dataItems],
    subjects: [...families].map(([item, fields]) => ({ item, fields })),
    dossier,
    rules: p.rules.map(ruleWords),
    constraints,
  };
}

function capital(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function disclosure(set: PolicySet, p: PartnerPolicy): IsaDocument['disclosure'] {
  const a = p.agreement;
  const mode = a.disclosure ?? 'immediate';
  const requestedBy = Object.entries(set.gateway.requestChecks ?? {})
    .filter(([, kinds]) => kinds.some((k) => p.partner.checks.includes(k)))
    .map(([word, kinds]) => `${word} (${kinds.filter((k) => p.partner.checks.includes(k)).join(', ')})`);
  const matchIdentifiers = (p.match ?? []).filter((m) => p.fields[m] !== undefined || Object.keys(p.fields).some((f) => f.startsWith(m))).map((m) => ({ path: m, text: pathWords(m) }));
  const answer = a.respondWithinDays !== undefined ? ` within ${a.respondWithinDays} days` : '';
  const text =
    mode === 'after-match'
      ? `Match first, then disclose. The partner is first sent a match request holding only the identifiers listed below; it answers hit or no trace for each subject${answer}. ` +
        `Only the subjects it answers hit are then disclosed under this agreement, ${a.followUp === 'approval' ? 'once an officer of the force approves each follow-up' : 'at once'}; nothing more is sent about a subject answered no trace.`
      : `Immediate. The partner is sent what this agreement allows as soon as a dossier requesting one of its checks is accepted, and answers hit or no trace for each subject${answer}.`;
  return {
    mode,
    text,
    ...(mode === 'after-match' ? { followUp: a.followUp ?? 'automatic' } : {}),
    matchIdentifiers,
    requestedBy,
    ...(a.respondWithinDays !== undefined ? { respondWithinDays: a.respondWithinDays } : {}),
    signedHits: a.requireSignedHits === true,
  };
}

function statusOf(p: PartnerPolicy, now: Date): IsaDocument['status'] {
  const s = agreementStatus(p.agreement, now);
  const day = now.toISOString().slice(0, 10);
  if (s.state === 'expired') return { state: 'expired', text: `Past its review date (${p.agreement.reviewBy}) on ${day}: the gateway has stopped sharing under it.` };
  if (s.state === 'not_in_force') return { state: 'not_in_force', text: `Not in force on ${day}: in force from ${p.agreement.inForceFrom}.` };
  if (s.daysLeft <= REVIEW_WARN_DAYS) return { state: 'review_due', text: `In force on ${day}; due for review by ${p.agreement.reviewBy} (${s.daysLeft} days left). Sharing stops after that date.` };
  return { state: 'in_force', text: `In force on ${day}, from ${p.agreement.inForceFrom} until its review date ${p.agreement.reviewBy}.` };
}

/** The agreement between the gateway's force(s) and one partner, as the live policy set enforces it. */
export function buildIsa(set: PolicySet, partnerId: string, options: IsaOptions): IsaDocument {
  const p = set.partners.get(partnerId);
  if (p === undefined) {
    throw new GatewayError('not_found', `no partner ${JSON.stringify(partnerId)} in the policy set (partners: ${[...set.partners.keys()].join(', ')})`, [{ path: 'partner', message: 'unknown partner' }]);
  }
  const a = p.agreement;
  const honoured = new Set(a.conditionsHonoured ?? []);
  const conditions = Object.entries(set.gateway.handlingConditions ?? {}).map(([code, c]) => ({ code, description: c.description }));
  return {
    schema: 'cordon.isa/v1',
    title: `Information Sharing Agreement ${a.reference}: ${a.parties.join(' and ')}`,
    reference: a.reference,
    generatedAt: options.now.toISOString(),
    partner: {
      id: p.partner.id,
      name: p.partner.name,
      kind: p.partner.kind,
      ...(RECIPIENT_KINDS[p.partner.kind] ? { kindText: RECIPIENT_KINDS[p.partner.kind] } : {}),
      competentAuthority: p.partner.competentAuthority === true,
      checks: [...p.partner.checks],
    },
    status: statusOf(p, options.now),
    policy: { revision: set.revision, file: p.file, ...(set.files?.find((f) => f.rel === p.file) ? { sha256: set.files.find((f) => f.rel === p.file)!.sha256 } : {}) },
    parties: [...a.parties],
    purpose: a.purpose,
    legalBasis: {
      text: a.legalBasis,
      provisions: citedBases(a.legalBasis).map((e) => ({ citation: e.citation, role: e.role, note: e.note })),
      ...(p.statutory
        ? { statutory: { name: p.statutory.name, reason: p.statutory.reason, when: `Sent whatever the dossier requests when, for any subject, ${conditionWords(p.statutory.conditions as Condition)} (or where the dossier does not establish it).` } }
        : {}),
    },
    dataItems: dataItems(set, p),
    disclosure: disclosure(set, p),
    handling: {
      highestClassification: a.highestClassification,
      handlingCodes: a.handlingCodes.map((code) => ({ code, text: HANDLING_CODE_TEXT[code] ?? code })),
      conditionsHonoured: conditions.filter((c) => honoured.has(c.code)),
      conditionsNotHonoured: conditions.filter((c) => !honoured.has(c.code)),
    },
    retention: {
      days: a.retentionDays,
      text:
        `The partner keeps what it receives for no longer than ${a.retentionDays} days. The gateway erases each packet from the partner's mailbox when that period ends (or earlier, when its packet lifetime is shorter), ` +
        'and withdraws it at once when the force recalls the dossier; the partner deletes its copy on the recall notice.',
    },
    security: {
      statements: [
        `Every packet is encrypted to the partner's own OpenPGP key only, pinned by the fingerprint below, and signed with the gateway's key; a missing, expired or revoked key stops delivery and never falls back to another key.`,
        'The gateway stores nothing in plaintext: dossiers are sealed at rest and packets are held encrypted until the partner acknowledges them or they expire.',
        'Every disclosure is written first to the gateway\'s hash-chained audit trail (DPA 2018 s.62 logging): who received what, when, under which policy revision.',
        a.requireSignedHits === true
          ? "Hits and answers from the partner must be signed with its pinned key; unsigned ones are refused."
          : "Hits and answers from the partner are accepted over its authenticated connection; signed ones (with its pinned key) are marked as such in the force's bundle.",
      ],
      partnerKey: { file: p.partner.key.file, fingerprint: p.partner.key.fingerprint },
      ...(options.gatewayKey ? { gatewayKey: { fingerprint: options.gatewayKey.fingerprint } } : {}),
      sourceKeys: [...set.sources.values()].map((s) => ({ id: s.source.id, name: s.source.name, file: s.source.key.file, fingerprint: s.source.key.fingerprint })),
    },
    review: { inForceFrom: a.inForceFrom, reviewBy: a.reviewBy },
    owner: a.owner,
    signatories: a.parties.map((party) => ({ party })),
  };
}
