/**
 * TypeScript mirrors of schemas/dossier.schema.json and schemas/hits.schema.json.
 * Values of these types only come out of validateDossier / validateHits (validate.ts).
 */

export type Classification = 'OFFICIAL' | 'OFFICIAL-SENSITIVE';
type HandlingCode = 'P' | 'C';

type SubjectRole =
  | 'principal'
  | 'member'
  | 'associate'
  | 'facilitator'
  | 'potential-victim'
  | 'victim'
  | 'witness'
  | 'other';

type Gender = 'male' | 'female' | 'non-binary' | 'other' | 'unknown';

type AddressType = 'home' | 'previous' | 'business' | 'work' | 'temporary' | 'correspondence' | 'other';

type VehicleRelationship = 'keeper' | 'user' | 'owner' | 'driver' | 'passenger' | 'other';

type SourceType =
  | 'CHIS'
  | 'partner-agency'
  | 'public'
  | 'officer'
  | 'neighbourhood-officer'
  | 'open-source'
  | 'technical'
  | 'undercover'
  | 'other';

export type Check =
  | 'addresses'
  | 'tenancies'
  | 'vehicles'
  | 'benefits'
  | 'businesses'
  | 'associates'
  | 'employment'
  | 'immigration'
  | 'safeguarding'
  | 'phones';

export interface Officer {
  id: string;
  name?: string;
  email?: string;
}

interface Originator {
  /** Source id of the force, e.g. `west-midlands`. */
  force: string;
  unit?: string;
  officer: Officer;
}

export interface Handling {
  code: HandlingCode;
  /** Required when code is C. */
  conditions?: string;
  /** Handling-condition codes (policies/gateway.yaml) binding the whole dossier (policy/handling.ts). */
  conditionCodes?: string[];
}

export interface Group {
  ocgmId: string;
  name?: string;
  threatBand?: 'A' | 'B' | 'C' | 'D' | 'E';
  crimeTypes?: string[];
  areas?: string[];
}

interface PersonName {
  given: string;
  family: string;
  aliases?: string[];
}

interface Identifiers {
  pnc?: string;
  niNumber?: string;
  drivingLicence?: string;
  passport?: string;
}

export interface Address {
  type: AddressType;
  line1: string;
  line2?: string;
  town: string;
  county?: string;
  postcode: string;
  from?: string; // YYYY-MM-DD
  to?: string; // YYYY-MM-DD
  /** The id of the intelligence item this came from: disclosed only where that item is. */
  derivedFrom?: string;
}

interface Vehicle {
  vrm: string;
  make?: string;
  model?: string;
  colour?: string;
  relationship?: VehicleRelationship;
  /** The id of the intelligence item this came from: disclosed only where that item is. */
  derivedFrom?: string;
}

interface BankAccount {
  sortCode: string;
  accountNumber: string;
  bank?: string;
}

interface Business {
  name: string;
  companyNumber?: string;
  role?: string;
  /** The id of the intelligence item this came from: disclosed only where that item is. */
  derivedFrom?: string;
}

interface Benefit {
  type: string;
  source?: string;
}

interface Association {
  /** The id of another subject in the same dossier. */
  subject: string;
  relationship: string;
}

interface EnforcementEvent {
  date: string; // YYYY-MM-DD
  type: string;
  offence?: string;
  outcome?: string;
}

/** UK 3x5x2 grading, as three named fields. */
interface Grading {
  /** 1 reliable, 2 untested, 3 not reliable. */
  source: 1 | 2 | 3;
  /** A known directly … E suspected false. */
  intelligence: 'A' | 'B' | 'C' | 'D' | 'E';
  handling: HandlingCode;
}

interface IntelligenceItem {
  id: string;
  recordedAt: string; // YYYY-MM-DD
  summary: string;
  grading: Grading;
  sourceType: SourceType;
  /** Required when grading.handling is C. */
  handlingConditions?: string;
  /** Handling-condition codes (policies/gateway.yaml): the item goes only to recipients honouring all (policy/handling.ts). */
  conditions?: string[];
}

export interface Subject {
  id: string;
  role: SubjectRole;
  name: PersonName;
  dateOfBirth?: string; // YYYY-MM-DD
  gender?: Gender;
  /** ISO 3166-1 alpha-2. */
  nationality?: string;
  identifiers?: Identifiers;
  addresses?: Address[];
  vehicles?: Vehicle[];
  phones?: string[];
  emails?: string[];
  bankAccounts?: BankAccount[];
  businesses?: Business[];
  benefits?: Benefit[];
  associates?: Association[];
  enforcementHistory?: EnforcementEvent[];
  intelligence?: IntelligenceItem[];
  vulnerabilities?: string[];
}

interface Location {
  type: string;
  line1: string;
  line2?: string;
  town: string;
  county?: string;
  postcode: string;
  notes?: string;
  /** The id of the intelligence item this came from: disclosed only where that item is. */
  derivedFrom?: string;
}

interface Requests {
  /** Without checks, only partners under a statutory condition receive the dossier (policy/recipients.ts). */
  checks?: Check[];
  peers?: string[];
  /** Narrows the recipients to these partners (each must also be reached by a requested check). */
  partners?: string[];
  /** Statutory deliveries held back, each with why and when the decision is reviewed. */
  defer?: Array<{ partner: string; reason: string; reviewBy: string }>;
}

export interface Dossier {
  schema: 'cordon.dossier/v1';
  reference: string;
  originator: Originator;
  createdAt: string; // RFC 3339 date-time
  classification: Classification;
  handling: Handling;
  purpose: string;
  group?: Group;
  subjects: Subject[];
  locations?: Location[];
  requests?: Requests;
}

export type HitKind =
  | 'address'
  | 'tenancy'
  | 'vehicle'
  | 'benefit-claim'
  | 'business'
  | 'associate'
  | 'employment'
  | 'immigration-status'
  | 'safeguarding'
  | 'phone'
  | 'other';

export type HitConfidence = 'confirmed' | 'probable' | 'possible';

export interface Hit {
  /** The opaque subject ref exactly as it appeared in the packet. */
  subject: string;
  kind: HitKind;
  /** Flat: scalar values only. */
  detail: Record<string, string | number | boolean | null>;
  matchedOn: string[];
  confidence: HitConfidence;
  partnerRecordRef?: string;
}

export interface HitsSubmission {
  schema: 'cordon.hits/v1';
  packet: string;
  hits: Hit[];
}
