/**
 * Policy notation in plain English, for the information-sharing agreement document (isa.ts): dossier
 * paths ("subjects[].vehicles[].vrm" → "vehicle registration mark"), operations ("generalise: year" →
 * "reduced to the year") and rule conditions ("isAdult equal true" → "known to be 18 or over"). Pure.
 *
 * The words are for the people who sign the agreement; the policy file stays the source of truth and
 * each sentence names the path it came from, so a reader can check one against the other.
 */
import type { Condition, Operation } from '../policy/types.js';

/** Leaf and container names a reader would not guess from the schema's camelCase. */
const NAME_WORDS: Readonly<Record<string, string>> = {
  vrm: 'registration mark',
  niNumber: 'National Insurance number',
  pnc: 'PNC id',
  drivingLicence: 'driving licence number',
  passport: 'passport number',
  dateOfBirth: 'date of birth',
  given: 'given name',
  family: 'family name',
  aliases: 'aliases',
  line1: 'address line 1',
  line2: 'address line 2',
  crimeTypes: 'crime types',
  threatBand: 'threat band',
  conditionCodes: 'handling-condition codes',
  handlingConditions: 'handling conditions',
  recordedAt: 'date recorded',
  createdAt: 'date the dossier was made',
  checks: 'checks requested',
  sourceType: 'source type',
};

/** Containers whose name reads better singular before a leaf ("vehicle make", "address postcode"). */
const SINGULAR: Readonly<Record<string, string>> = {
  subjects: 'subject',
  vehicles: 'vehicle',
  addresses: 'address',
  phones: 'phone',
  emails: 'e-mail',
  bankAccounts: 'bank account',
  businesses: 'business',
  benefits: 'benefit',
  associates: 'associate',
  intelligence: 'intelligence item',
  locations: 'group location',
  enforcementHistory: 'enforcement record',
  name: 'name',
  identifiers: '',
  originator: 'originator',
  handling: 'handling',
  group: "group's",
  requests: '',
  grading: 'grading',
};

function words(name: string): string {
  return NAME_WORDS[name] ?? name.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
}

/**
 * A dossier path in words: `subjects[].vehicles[].make` → "vehicle make", `subjects[].addresses[]` →
 * "addresses", `group.name` → "group's name". The leading `subjects[]` is implied (the data items
 * section is about people unless it says otherwise).
 */
export function pathWords(path: string): string {
  const parts = path.split('.').map((p) => ({ name: p.replace(/\[\]$/, ''), list: p.endsWith('[]') }));
  if (parts[0]?.name === 'subjects' && parts.length > 1) parts.shift();
  const last = parts[parts.length - 1]!;
  const leaf = last.name === 'name' && parts.length === 1 ? 'name' : words(last.name);
  const lead = parts
    .slice(0, -1)
    .map((p) => SINGULAR[p.name] ?? words(p.name))
    .filter((w) => w !== '' && !leaf.toLowerCase().startsWith(w.toLowerCase()));
  // "name given name" reads badly: the leaf already says which name.
  if (lead[lead.length - 1] === 'name' && /name$/.test(leaf)) lead.pop();
  return [...lead, leaf].join(' ');
}

/** How a field is treated, as a phrase after its name ("date of birth reduced to the year"). */
export function operationWords(op: Operation): string {
  switch (op.op) {
    case 'keep':
      return 'as recorded';
    case 'strip':
      return 'not disclosed';
    case 'replace':
      return `replaced by ${JSON.stringify(op.with)}`;
    case 'mask':
      return `masked, only the ${op.show} ${op.chars} character${op.chars === 1 ? '' : 's'} shown`;
    case 'pseudonymise':
      return 'replaced by a pseudonym (the same for this partner each time, never the value)';
    case 'count':
      return `only the number of them${op.where ? ` that ${conditionWords(op.where, 'item')}` : ''}`;
    case 'filter':
      return `only those where ${conditionWords(op.where, 'item')}`;
    case 'generalise':
      switch (op.to) {
        case 'year':
          return 'reduced to the year';
        case 'month':
          return 'reduced to the year and month';
        case 'decade':
          return 'reduced to the decade';
        case 'ageBand':
          return 'reduced to an age band';
        case 'sector':
        case 'district':
        case 'area':
          return `reduced to the postcode ${op.to}`;
        case 'postcode':
        case 'town':
          return `each reduced to its ${op.to}${op.where ? `, only those where ${conditionWords(op.where, 'item')}` : ''}`;
        case 'band':
          return `reduced to a band ${op.width} wide`;
      }
  }
  return 'treated as the policy says';
}

// ---- conditions -------------------------------------------------------------------------------

/** Boolean facts: what true means. */
const BOOLEAN_FACTS: Readonly<Record<string, [yes: string, no: string]>> = {
  isAdult: ['known to be 18 or over', 'not known to be an adult (under 18, or age unknown)'],
  isMinor: ['a child (under 18, or with a childhood vulnerability flag)', 'not known to be a child'],
  isVulnerable: ['recorded with a vulnerability', 'recorded with no vulnerability'],
  ageKnown: ['of known age', 'of unknown age'],
};

/** Other facts (subject, dossier and item facts) by name. */
const FACT_WORDS: Readonly<Record<string, string>> = {
  role: 'the role in the group',
  ageAtDossier: 'the age',
  vulnerabilities: 'the vulnerabilities recorded',
  nationality: 'the nationality',
  classification: "the dossier's classification",
  handlingCode: "the dossier's handling code",
  crimeTypes: "the group's crime types",
  threatBand: "the group's threat band",
  originatorForce: 'the originating force',
  subjectCount: 'the number of subjects',
  'grading.source': 'the source grading',
  'grading.intelligence': 'the intelligence grading',
  'grading.handling': 'the handling code',
  sourceType: 'the source type',
};

function list(values: readonly unknown[], join = 'or'): string {
  const v = values.map((x) => String(x));
  return v.length <= 1 ? (v[0] ?? 'nothing') : `${v.slice(0, -1).join(', ')} ${join} ${v[v.length - 1]}`;
}

function leafWords(fact: string, operator: string, value: unknown): string {
  const bool = BOOLEAN_FACTS[fact];
  if (bool && (operator === 'equal' || operator === 'notEqual') && typeof value === 'boolean') {
    return (operator === 'equal') === value ? `is ${bool[0]}` : `is ${bool[1]}`;
  }
  const name = FACT_WORDS[fact] ?? pathWords(fact);
  const v = Array.isArray(value) ? value : [value];
  switch (operator) {
    case 'equal':
      return `${name} is ${String(value)}`;
    case 'notEqual':
      return `${name} is not ${String(value)}`;
    case 'in':
      return `${name} is ${list(v)}`;
    case 'notIn':
      return `${name} is none of ${list(v, 'and')}`;
    case 'contains':
      return `${name} include ${String(value)}`;
    case 'doesNotContain':
      return `${name} do not include ${String(value)}`;
    case 'lessThan':
      return `${name} is under ${String(value)}`;
    case 'lessThanInclusive':
      return `${name} is ${String(value)} or less`;
    case 'greaterThan':
      return `${name} is over ${String(value)}`;
    case 'greaterThanInclusive':
      return `${name} is ${String(value)} or more`;
    default:
      return `${name} ${operator} ${JSON.stringify(value)}`;
  }
}

/**
 * A condition as a clause: "the role in the group is victim, witness or potential-victim". `who` is
 * what the clause is about, for the boolean facts that read as "is …" ("the subject is known to be…").
 */
export function conditionWords(cond: Condition, who: 'subject' | 'dossier' | 'item' = 'subject'): string {
  if ('all' in cond) return cond.all.map((c) => conditionWords(c, who)).join(' and ');
  if ('any' in cond) return cond.any.length === 1 ? conditionWords(cond.any[0]!, who) : `either ${cond.any.map((c) => conditionWords(c, who)).join(', or ')}`;
  if ('not' in cond) return `not (${conditionWords(cond.not, who)})`;
  const clause = leafWords(cond.fact, cond.operator, cond.value);
  return clause.startsWith('is ') ? `${who === 'subject' ? 'the subject' : who === 'dossier' ? 'the dossier' : 'the item'} ${clause}` : clause;
}

/** The facts a condition reads. */
export function conditionFacts(cond: Condition): string[] {
  if ('all' in cond) return cond.all.flatMap(conditionFacts);
  if ('any' in cond) return cond.any.flatMap(conditionFacts);
  if ('not' in cond) return conditionFacts(cond.not);
  return [cond.fact];
}
