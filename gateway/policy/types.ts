/**
 * The shapes of a loaded policy set. Files under policies/ are parsed and validated into these;
 * everything downstream (decide, redact, worker, http) works on these types only.
 */
import type { ErrorCode } from '../errors/index.js';

export type Classification = 'OFFICIAL' | 'OFFICIAL-SENSITIVE';
type HandlingCode = 'P' | 'C';

/** json-rules-engine condition syntax (all/any/not/fact/operator/value), also used by item filters. */
export type Condition =
  | { all: Condition[] }
  | { any: Condition[] }
  | { not: Condition }
  | { fact: string; operator: string; value: unknown };

/** One field operation as written in a policy file (a bare string is shorthand for `{ op }`). */
export type Operation =
  | { op: 'keep' }
  | { op: 'strip' }
  | { op: 'replace'; with: string }
  | { op: 'mask'; show: 'first' | 'last'; chars: number }
  | { op: 'pseudonymise' }
  | { op: 'generalise'; to: 'year' | 'month' | 'decade' | 'ageBand' }
  | { op: 'generalise'; to: 'sector' | 'district' | 'area' }
  /** On an array of address objects: each item becomes `{postcode}` or `{town}`; `where` filters items first. */
  | { op: 'generalise'; to: 'postcode' | 'town'; where?: Condition }
  | { op: 'generalise'; to: 'band'; width: number }
  /** Number of items (only those satisfying `where`, when present); a count of 0 is emitted as absent. */
  | { op: 'count'; where?: Condition }
  | { op: 'filter'; where: Condition };

export interface Agreement {
  reference: string;
  parties: string[];
  purpose: string;
  legalBasis: string;
  dataItems: string[];
  owner: string;
  inForceFrom: string; // YYYY-MM-DD
  reviewBy: string; // YYYY-MM-DD; sharing stops after this date
  retentionDays: number;
  highestClassification: Classification;
  handlingCodes: HandlingCode[];
  /**
   * The handling-condition codes (gateway.yaml `handlingConditions`) the recipient can honour: a
   * handling-C item or dossier with codes goes only to recipients that honour every one (policy/handling.ts).
   */
  conditionsHonoured?: string[];
  /**
   * Days the partner has to answer each subject it was sent (hit or no trace, hits/matches.ts) before the
   * force sees it `overdue`; absent, never overdue.
   */
  respondWithinDays?: number;
  /**
   * Hits and answers from the partner must be signed with its pinned key (OpenPGP): plain JSON is
   * refused with `signature_required`. Absent: false.
   */
  requireSignedHits?: boolean;
  /**
   * `immediate` (the default): the partner is sent the dossier as its policy allows. `after-match`: it
   * is first sent only identifiers to match on (the partner's `match` allowlist), and the rest only for
   * the subjects it answers `hit` (policy/match.ts).
   */
  disclosure?: 'immediate' | 'after-match';
  /** After a hit: disclose at once (`automatic`, the default) or once the force approves (`approval`). */
  followUp?: 'automatic' | 'approval';
}

export interface KeyRef {
  /** Path relative to the policy directory. */
  file: string;
  /** Pinned OpenPGP fingerprint, 40 (v4) or 64 (v6) upper-case hex characters. */
  fingerprint: string;
  /** The armored key read at load time, or undefined when the file is missing (delivery blocks). */
  armored?: string;
}

export interface Rule {
  name: string;
  /** Why the rule exists, in the policy author's words (shown in the agreement document). */
  description?: string;
  /** dossier: run once per dossier; subject: run once per subject with subject facts. */
  when: 'dossier' | 'subject';
  conditions: { all: Condition[] } | { any: Condition[] } | { not: Condition };
  /**
   * When a fact the conditions read is unknown (no date of birth, no vulnerabilities list…), the rule
   * fires (`fire`, the default: rules only tighten) or not (`ignore`, which lint warns about).
   */
  unknown?: 'fire' | 'ignore';
  then: {
    /** subject scope only: the subject is left out of the packet entirely. */
    exclude?: boolean;
    /** Operations that tighten the base allowlist (never widen: the most restrictive wins). */
    set?: Record<string, Operation>;
  };
}

export interface PartnerPolicy {
  /** Where it came from, for messages. */
  file: string;
  /**
   * `competentAuthority`: a body listed in DPA 2018 Sch. 7 processing for the law-enforcement purposes
   * (the partner file says so; the loader sets false when it does not). Optional only for recipients
   * built in code (a peer seen as a partner), where absent means false.
   */
  partner: { id: string; name: string; kind: string; key: KeyRef; checks: string[]; competentAuthority?: boolean };
  agreement: Agreement;
  /** Base allowlist: dossier path (e.g. `subjects[].addresses[].postcode`) → operation. */
  fields: Record<string, Operation>;
  rules: Rule[];
  /** The identifier paths a match request carries (after-match agreements; policy/match.ts). */
  match?: string[];
  /** A statutory duty under which the partner is sent a dossier whatever its request says (policy/recipients.ts). */
  statutory?: Statutory;
}

/** A statutory condition: sent when, for any subject, `conditions` (subject facts) hold or are unknown. */
export interface Statutory {
  name: string;
  /** The legal reason, shown with every delivery made under it. */
  reason: string;
  conditions: Rule['conditions'];
}

export interface SourceConfig {
  file: string;
  source: { id: string; name: string; key: KeyRef; webhook?: string };
}

/** Constraints that hold for every recipient whatever its own policy says. */
export interface GatewayRules {
  neverShare: string[];
  /** ANDed into alwaysFilter for recipients that are not competent authorities (non-competent.ts). */
  nonCompetentFilter?: Record<string, Condition>;
  alwaysFilter: Record<string, Condition>;
  /** The vocabulary of handling-condition codes, code → what it asks of a recipient (policy/handling.ts). */
  handlingConditions?: Record<string, { description: string }>;
  /**
   * A dossier's request words (`requests.checks`) → the partners' check kinds they reach
   * (policy/recipients.ts). Absent: no dossier reaches a partner except under a statutory condition.
   */
  requestChecks?: Record<string, string[]>;
}

/** A peer gateway file (`peers/<id>.yaml`): loaded raw (not validated here) and hashed into the revision. */
export interface PeerFile {
  file: string;
  data: unknown;
}

export interface PolicySet {
  dir: string;
  /** Content hash of every loaded file (sha256 hex, first 16 chars). */
  revision: string;
  /** Every file the set was loaded from (the revision's inputs), sorted, with the SHA-256 of its content: what a policy signature covers. */
  files?: ReadonlyArray<{ rel: string; sha256: string }>;
  loadedAt: string;
  gateway: GatewayRules;
  partners: Map<string, PartnerPolicy>;
  sources: Map<string, SourceConfig>;
  /** Raw `peers/*.yaml` documents by file id (the exchange module validates them). */
  peers?: Map<string, PeerFile>;
  /** The validated peer gateways (`peers/<id>.yaml`), redacted for like partners (gateway/exchange). */
  peerPolicies?: Map<string, PeerPolicy>;
}

/** Mutual TLS with a peer gateway: its server's CA (PEM, read at load) and its client certificate's SHA-256. */
interface PeerTls {
  caFile?: string;
  ca?: string;
  /** Upper-case hex pairs joined by ":" (as node's `fingerprint256`). */
  clientCertFingerprint?: string;
}

/**
 * What of this gateway's partners' hits may be relayed to a peer (`hits:` in its file; exchange/hits-policy.ts).
 * Filled in at load: what the file leaves out is the minimum (fail closed).
 */
export interface PeerHitsPolicy {
  /** Whether the file has a `hits:` block at all (lint warns when it does not). */
  declared: boolean;
  /** The hit kinds that may cross; undefined: every kind. */
  kinds?: string[];
  detail: 'keep' | 'drop' | 'generalise';
  partnerRecordRef: 'keep' | 'drop';
}

/** Another force's gateway: where it is, its pinned key, the agreement and what of a dossier it may receive. */
export interface PeerPolicy {
  file: string;
  /** A police force's gateway: always a competent authority (chief officers of police, DPA 2018 Sch. 7). */
  peer: { id: string; name: string; force: string; url: string; key: KeyRef; tls?: PeerTls; competentAuthority: true; enforcesConditions?: string[] };
  agreement: Agreement;
  fields: Record<string, Operation>;
  rules: Rule[];
  /** What of its partners' hits this gateway relays to the peer. */
  hits: PeerHitsPolicy;
  /** The identifier paths a match envelope carries (after-match agreements; exchange/match-out.ts). */
  match?: string[];
}

/** Why a delivery to one partner does not happen. */
export interface Block {
  reason: Extract<
    ErrorCode,
    | 'agreement_expired'
    | 'agreement_not_in_force'
    | 'classification_above_agreement'
    | 'handling_not_accepted'
    | 'handling_conditions_not_honoured'
    | 'recipient_key_invalid'
    | 'no_shareable_subjects'
  >;
  message: string;
}

/** One line of the decision trace: which rule (or `base`/`gateway`) set which operation on which path. */
export interface TraceEntry {
  rule: string;
  scope: 'dossier' | 'subject';
  /** The dossier's own id of the subject (the trace is for governance preview, never for the packet). */
  subject?: string;
  subjectIndex?: number;
  /** A policy path, or `subjects[]` for an exclusion or a subject note. */
  path: string;
  /**
   * `keep`, `strip`, `generalise:year`, `mask:last:3`, …, `exclude`, `note` (rule `facts`: how the
   * subject's facts were read, e.g. "treated as a minor: flag child-criminal-exploitation"), or
   * `withhold` (rule `handling-conditions`: an intelligence item its handling conditions keep back).
   */
  op: string;
  /**
   * Why the operation differs from what the rule asked for (e.g. a rule cannot widen the base allowlist),
   * or why the rule fired on facts the dossier does not establish ("excluded: age unknown (isMinor)").
   */
  note?: string;
}

/**
 * The outcome of deciding one dossier for one partner: either a block, or a plan the redactor applies.
 * `plan.subjects[i]` is null when subject i is excluded.
 */
export interface Decision {
  partner: string;
  revision: string;
  block?: Block;
  /** The operation maps inside are shared between decisions with the same outcome and frozen. */
  plan: Plan;
  /** Built on first read (an enumerable getter): the worker never pays for it, preview and JSON do. */
  trace: TraceEntry[];
  /**
   * The names of the rules whose conditions held (dossier and subject scope, in policy order), whether
   * or not they changed the plan. Empty when the agreement blocks. For policy-test coverage.
   */
  fired?: string[];
  /**
   * The intelligence items handling conditions withhold from this recipient (policy/handling.ts): JSON
   * Pointers into the input and why. Built on first read; not enumerable (not part of the decision's JSON).
   */
  readonly withheld?: ReadonlyArray<{ path: string; reason: string; subjectIndex: number; itemIndex: number }>;
}

export interface Plan {
  /** Operations on paths outside `subjects[]`. */
  dossier: Record<string, Operation>;
  /** One entry per input subject, by index; null when the subject is excluded. Paths are full (`subjects[].…`). */
  subjects: (Record<string, Operation> | null)[];
}
