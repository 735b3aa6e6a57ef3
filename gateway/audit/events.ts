/**
 * Every event the gateway writes to its audit trail, one member per `action`, each with its s.62 kind.
 * `AUDIT_ACTIONS` is the list the record schema (`schemas/audit-event.schema.json`) enumerates; a unit
 * test checks both agree and that a minimal event of every action validates. Records read back from the
 * trail are typed more loosely (`AuditRecord` in log.ts): they are whatever is stored, checked by hash.
 * Events hold ids, paths, codes, counts and keyed HMACs, never dossier values.
 */
import type { CheckpointStatement } from './checkpoint.js';
import type { IndexTerms } from './index-terms.js';

export type AuditKind =
  | 'collection' // dossier received
  | 'rejection' // dossier refused at the door
  | 'disclosure' // packet created for a recipient, recall notice sent
  | 'decision' // delivery blocked, recipients chosen (not requested, statutory, deferred)
  | 'consultation' // packet retrieved, preview used, audit queried
  | 'acknowledgement'
  | 'combination' // hits received and delivered
  | 'erasure' // packets, sealed content and records erased
  | 'alteration' // policy set loaded or refused, dossier recalled
  | 'auth_failure'
  | 'checkpoint'; // signed statement of the chain so far

export const AUDIT_KINDS: readonly AuditKind[] = [
  'collection', 'rejection', 'disclosure', 'decision', 'consultation', 'acknowledgement', 'combination', 'erasure', 'alteration', 'auth_failure', 'checkpoint',
];

/** Every action and its kind. */
export const AUDIT_ACTIONS = {
  'dossier.received': 'collection',
  'dossier.rejected': 'rejection',
  'dossier.recalled': 'alteration',
  'dossier.erased': 'erasure',
  'dossier.sealed_content_erased': 'erasure',
  'packet.created': 'disclosure',
  'match.created': 'disclosure',
  'followup.approved': 'decision',
  'followup.created': 'disclosure',
  'packet.retrieved': 'consultation',
  'packet.acknowledged': 'acknowledgement',
  'packet.erased': 'erasure',
  'packet.erasure_skipped': 'erasure',
  'delivery.blocked': 'decision',
  'delivery.not_requested': 'decision',
  'delivery.statutory': 'decision',
  'delivery.deferred': 'decision',
  'recall.notice_sent': 'disclosure',
  'recall.notice_blocked': 'decision',
  'hits.received': 'combination',
  'hits.refused': 'rejection',
  'hits.bundle_delivered': 'consultation',
  'matches.received': 'combination',
  'matches.refused': 'rejection',
  'matches.withdrawn': 'alteration',
  'preview.used': 'consultation',
  'policy.diffed': 'consultation',
  'policy.loaded': 'alteration',
  'policy.refused': 'alteration',
  'auth.failed': 'auth_failure',
  'audit.queried': 'consultation',
  'audit.checkpoint_requested': 'consultation',
  'audit.checkpoint': 'checkpoint',
  'audit.trail_restarted': 'alteration',
  'exchange.envelope_prepared': 'disclosure',
  'exchange.dossier_sent': 'disclosure',
  'exchange.dossier_received': 'collection',
  'exchange.dossier_cancelled': 'decision',
  'exchange.dossier_failed': 'decision',
  'exchange.blocked': 'decision',
  'exchange.not_forwarded': 'decision',
  'exchange.rejected': 'rejection',
  'exchange.hits_relayed': 'disclosure',
  'exchange.hits_received': 'combination',
  'exchange.hits_failed': 'decision',
  'exchange.recall_sent': 'disclosure',
  'exchange.recall_received': 'alteration',
  'exchange.recall_not_received': 'decision',
  'exchange.recall_failed': 'decision',
  'exchange.match_prepared': 'disclosure',
  'exchange.match_sent': 'disclosure',
  'exchange.followup_prepared': 'disclosure',
  'exchange.answers_received': 'combination',
  'exchange.answers_failed': 'decision',
  'exchange.match_received': 'collection',
  'exchange.match_retrieved': 'consultation',
  'exchange.match_answered': 'alteration',
  'exchange.answers_relayed': 'disclosure',
  'record.tampered': 'decision',
  'records.sealed': 'alteration',
} as const satisfies Record<string, AuditKind>;

export type AuditAction = keyof typeof AUDIT_ACTIONS;

/**
 * Why a disclosure happened. The agreement's purpose is configuration and travels in full; the
 * dossier's own purpose is dossier content (free text a force wrote) and is never stored outside the
 * sealed dossier, so records name where it is (`sealed with dossier <id>`), never what it says.
 */
export interface Justification {
  agreement?: string;
  agreementPurpose?: string;
  legalBasis?: string;
  dossierPurpose?: string;
}

/** Members any event may carry (the record schema's common properties). */
export interface CommonFields {
  actor?: string;
  dossier?: string;
  packet?: string;
  recipient?: string;
  source?: string;
  policyRevision?: string;
  agreement?: { reference: string; legalBasis: string; purpose: string };
  fields?: Array<{ path: string; op: string }>;
  reason?: string;
  justification?: Justification;
  /** Keyed HMACs of the dossier reference and subject ids (see index-terms.ts), for search. */
  index?: IndexTerms;
}

interface Signed {
  keyFingerprint?: string;
}
interface Peer {
  peer?: string;
  peerId?: string;
  via?: string;
}
/** Intelligence items handling conditions kept from the recipient of a disclosure (paths, never values). */
interface Withheld {
  withheld?: { handlingConditions: number; paths: string[] };
}
interface HitCounts {
  count?: number;
  duplicates?: number;
  kinds?: string[];
  partners?: string[];
}

/** A partner's answers (hit or no trace per subject, hits/matches.ts): counts only, never refs. */
interface AnswerCounts {
  hit?: number;
  noTrace?: number;
  changed?: number;
  duplicates?: number;
}

/** The police officer who approved a follow-up disclosure (name and collar or staff number). */
export interface Officer {
  name: string;
  id: string;
}

/** What each action carries beyond the common members. */
interface Extras {
  'dossier.received': { classification?: string; subjects?: number };
  'dossier.rejected': { paths?: string[] };
  'dossier.recalled': { recipients?: string[]; note?: string; replayed?: boolean };
  'dossier.erased': { erased?: string[]; state?: string };
  'dossier.sealed_content_erased': object;
  'packet.created': Signed & Withheld & { redacted?: unknown };
  /** A match request (after-match agreements): a disclosure of identifiers only (`fields` says which). */
  'match.created': Signed & Withheld & { subjects?: number };
  /** The force's approval of a follow-up disclosure, naming the officer who gave it. */
  'followup.approved': { partner?: string; officer?: Officer; subjects?: number; matchPacket?: string };
  /** The disclosure after a hit: only the subjects answered hit, under the full policy. */
  'followup.created': Signed & Withheld & { matchPacket?: string; subjects?: number; approvedBy?: Officer[] };
  'packet.retrieved': object;
  'packet.acknowledged': object;
  'packet.erased': { type?: 'recall'; state?: string };
  'packet.erasure_skipped': object;
  'delivery.blocked': object;
  /** The words the dossier requested (none reached this partner), never dossier values. */
  'delivery.not_requested': { checks?: string[] };
  /** Sent under a statutory condition: its name, legal reason and how many subjects it held for. */
  'delivery.statutory': { statutory?: string; legalReason?: string; subjects?: number; checks?: string[] };
  /** A statutory delivery the source deferred: the force's own reason stays with the dossier's status record. */
  'delivery.deferred': { statutory?: string; legalReason?: string; reviewBy?: string };
  'recall.notice_sent': Signed & { notice?: string };
  'recall.notice_blocked': object;
  'hits.received': HitCounts & { partner?: string; subjects?: number; signed?: boolean };
  'hits.refused': Peer & { partner?: string; note?: string; envelope?: string };
  'hits.bundle_delivered': Signed & HitCounts & { links?: number };
  'matches.received': AnswerCounts & { partner?: string; signed?: boolean };
  'matches.refused': { partner?: string; note?: string };
  'matches.withdrawn': { partner?: string; subjects?: number; hits?: number; was?: Record<string, number>; signed?: boolean };
  'preview.used': object;
  /** The console's diff: live against a candidate set or an earlier revision (revisions only, never values). */
  'policy.diffed': { fromRevision?: string; toRevision?: string; against?: 'candidate' | 'revision'; dossiers?: number };
  'policy.loaded': { previousRevision?: string; policySequence?: number; signers?: string[] };
  'policy.refused': { problems?: number; refusedRevision?: string; note?: string };
  'auth.failed': { route?: string; remote?: string };
  'audit.queried': { filter?: Record<string, unknown> };
  'audit.checkpoint_requested': object;
  'audit.checkpoint': { checkpoint: CheckpointStatement; signature: string };
  'audit.trail_restarted': { previous?: { seq: number; hash: string; at: string; first?: string } };
  'exchange.envelope_prepared': Signed & Peer & Withheld;
  'exchange.dossier_sent': Signed & Peer & { issuedAt?: string };
  'exchange.dossier_received': Peer & { classification?: string; subjects?: number };
  'exchange.dossier_cancelled': Peer;
  'exchange.dossier_failed': Peer;
  'exchange.blocked': Peer;
  'exchange.not_forwarded': { peers?: string[] };
  'exchange.rejected': Peer & { paths?: string[] };
  'exchange.hits_relayed': Signed & Peer & HitCounts & { notRelayed?: number; hitsPolicy?: { detail: string; partnerRecordRef: string } };
  'exchange.hits_received': Peer & HitCounts;
  'exchange.hits_failed': Peer;
  'exchange.recall_sent': Signed & Peer & { inReplyTo?: string; issuedAt?: string };
  'exchange.recall_received': Peer & { inReplyTo?: string; issuedAt?: string; match?: string };
  'exchange.recall_not_received': Peer & { inReplyTo?: string };
  'exchange.recall_failed': Peer;
  /** A match envelope to a peer (after-match agreements): a disclosure of identifiers only (`fields` says which). */
  'exchange.match_prepared': Signed & Peer & Withheld & { subjects?: number };
  'exchange.match_sent': Signed & Peer & { issuedAt?: string };
  /** The dossier envelope after a peer's hits: only the subjects answered hit, under the full peer policy. */
  'exchange.followup_prepared': Signed & Peer & Withheld & { matchPacket?: string; subjects?: number; approvedBy?: Officer[] };
  /** A peer force's answers to a match envelope, joined to the dossier (counts only, never refs). */
  'exchange.answers_received': Peer & AnswerCounts & { inReplyTo?: string };
  'exchange.answers_failed': Peer & { match?: string };
  /** A peer's match request, kept for this gateway's force to answer (`match`: this gateway's id for it). */
  'exchange.match_received': Peer & { match?: string; subjects?: number };
  'exchange.match_retrieved': Signed & Peer & { match?: string };
  /** This gateway's force answered a peer's match request. */
  'exchange.match_answered': Peer & AnswerCounts & { match?: string };
  'exchange.answers_relayed': Signed & Peer & AnswerCounts & { match?: string; inReplyTo?: string };
  /** A stored record failed its integrity check (store/record-mac.ts) and was refused. */
  'record.tampered': { record?: 'dossier' | 'packet'; problem?: string };
  /** Records written before records were authenticated, sealed once (compose/records.ts). */
  'records.sealed': { count?: number };
}

/** One audit event: discriminated by `action`, whose kind is fixed. */
export type AuditEvent = {
  [A in AuditAction]: { kind: (typeof AUDIT_ACTIONS)[A]; action: A } & CommonFields & Extras[A];
}[AuditAction];

/** The event of one action. */
export type AuditEventOf<A extends AuditAction> = Extract<AuditEvent, { action: A }>;
