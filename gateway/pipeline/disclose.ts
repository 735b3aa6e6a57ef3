/**
 * Disclose: the step that makes what one recipient may see of a dossier, whoever the recipient is (a
 * partner, gateway/fanout; another force's gateway, gateway/exchange/outbound.ts). Decide with the
 * recipient's policy, check its key, replace the subject ids by refs drawn for this packet alone,
 * redact, and describe the disclosure for the audit trail. A decision or key that blocks the
 * recipient returns the block and nothing else. Encrypting to the recipient is the caller's (a
 * partner's packet is encrypted at once, a peer's envelope each time it is sent).
 *
 * Match first, then disclose (policy/match.ts) goes through here too: the match step is the same
 * decision narrowed to identifiers (`match`), the follow-up the same decision narrowed to the subjects
 * answered hit (`only`), with the match request's refs (`refs`) so the partner sees the same refs.
 */
import { randomBytes } from 'node:crypto';
import type { AuditEvent } from '../audit/log.js';
import type { IndexTerms } from '../audit/index-terms.js';
import type { RecipientKey } from '../crypto/openpgp.js';
import type { Dossier } from '../dossier/types.js';
import { matchPlan, onlySubjects } from '../policy/match.js';
import type { Agreement, Block, Decision, Plan } from '../policy/types.js';
import { redact } from '../redact/redact.js';
import { stageSeconds } from '../metrics/metrics.js';

/** What a disclosure says of the agreement it is made under. */
export function agreementOf(policy: { agreement: Pick<Agreement, 'reference' | 'legalBasis' | 'purpose'> }) {
  return { reference: policy.agreement.reference, legalBasis: policy.agreement.legalBasis, purpose: policy.agreement.purpose };
}

/** Subject id → a ref for this packet alone: one random draw for all the refs. */
export function drawRefs(dossier: Dossier): Map<string, string> {
  const random = randomBytes(8 * dossier.subjects.length).toString('hex');
  return new Map(dossier.subjects.map((s, i) => [s.id, 'ref_' + random.slice(16 * i, 16 * i + 16)]));
}

export interface DiscloseTo {
  dossierId: string;
  source: string;
  dossier: Dossier;
  /** Who receives it, as the audit trail names it (a partner id, `peer:<id>`). */
  recipient: string;
  policy: { agreement: Agreement };
  decide(): Promise<Decision>;
  /** The recipient's key once the decision lets the dossier go, or why it cannot be used. */
  key(): Promise<RecipientKey | Block>;
  pseudonymKey: Buffer;
  /** Times the redaction (the `redact` stage of the metrics). */
  measure?: boolean;
  /** The match step: only these identifier paths of the subjects the full decision includes. */
  match?: readonly string[];
  /** Only these subjects (the dossier's own ids), as if the others were excluded: a follow-up. */
  only?: ReadonlySet<string>;
  /** The refs an earlier packet of this dossier used (a follow-up reuses its match request's). */
  refs?: Map<string, string>;
}

/** What a disclosure record of a match request or follow-up adds. */
export interface DisclosureExtra {
  matchPacket?: string;
  subjects?: number;
  approvedBy?: Array<{ name: string; id: string }>;
  /** blind.created: the request's size (padding included) and the key types it was made of. */
  elements?: number;
  keyTypes?: string[];
}

export interface Disclosed {
  revision: string;
  key: RecipientKey;
  redacted: Record<string, unknown>;
  /** The dossier's own subject id of each ref (to map hits back). */
  byRef: Record<string, string>;
  /** The dossier's own ids of the subjects in the packet (byRef also names those it only points at). */
  subjects: string[];
  /** The disclosure record for the audit trail; `packet` is the packet's (or envelope's) id. */
  event(
    action: 'packet.created' | 'exchange.envelope_prepared' | 'match.created' | 'blind.created' | 'followup.created' | 'exchange.match_prepared' | 'exchange.followup_prepared',
    packet: string,
    index?: (subjectIds: string[]) => IndexTerms | undefined,
    extra?: DisclosureExtra,
  ): AuditEvent;
}

export interface Blocked {
  revision: string;
  block: Block;
}

export async function disclose(to: DiscloseTo): Promise<Disclosed | Blocked> {
  const decision = await to.decide();
  if (decision.block) return { revision: decision.revision, block: decision.block };
  const key = await to.key();
  if ('reason' in key) return { revision: decision.revision, block: key };

  const plan = narrow(to, decision.plan);
  if (plan.subjects.every((ops) => ops == null)) {
    return { revision: decision.revision, block: { reason: 'no_shareable_subjects', message: 'None of the subjects asked for may be disclosed to this recipient' } };
  }
  const refs = to.refs ?? drawRefs(to.dossier);
  const endRedact = to.measure ? stageSeconds.startTimer({ stage: 'redact' }) : undefined;
  const redaction = redact(to.dossier, plan, { refs, pseudonymKey: to.pseudonymKey });
  endRedact?.();
  const redacted = redaction.dossier;
  // A match request carries the subjects alone (matchPlaintext): its record lists only what it holds.
  const disclosed = to.match ? redaction.disclosed.filter((d) => d.path !== 'schema') : redaction.disclosed;
  const { dossierId, policy } = to;
  const withheld = decision.withheld ?? [];
  const subjects = disclosedSubjects(to.dossier, redacted, refs);
  return {
    revision: decision.revision,
    key,
    redacted,
    byRef: Object.fromEntries([...refs].map(([id, ref]) => [ref, id])),
    subjects,
    event: (action, packet, index, extra) => ({
      kind: 'disclosure',
      action,
      ...extra,
      dossier: dossierId,
      packet,
      recipient: to.recipient,
      policyRevision: decision.revision,
      agreement: agreementOf(policy),
      fields: disclosed,
      keyFingerprint: key.fingerprint,
      source: to.source,
      // Intelligence items handling conditions kept from this recipient: how many and where, never what.
      ...(withheld.length > 0 ? { withheld: { handlingConditions: withheld.length, paths: withheld.map((w) => w.path) } } : {}),
      // The dossier's purpose is dossier content: the record says where it is, never what it says.
      justification: { agreement: policy.agreement.reference, agreementPurpose: policy.agreement.purpose, dossierPurpose: `sealed with dossier ${dossierId}` },
      // Keyed HMACs of the reference and of the subjects this packet is about, for GET /v1/audit.
      ...(index ? { index: index(subjects) } : {}),
    }),
  };
}

/** The decision's plan, narrowed for a follow-up (only some subjects) and/or a match step (identifiers only). */
function narrow(to: DiscloseTo, plan: Plan): Plan {
  const only = to.only;
  const forSubjects = only ? onlySubjects(plan, (i) => only.has(to.dossier.subjects[i]?.id ?? '')) : plan;
  return to.match ? matchPlan(forSubjects, to.match) : forSubjects;
}

/** The dossier's own ids of the subjects that made it into the packet (whose refs it carries). */
function disclosedSubjects(dossier: Dossier, redacted: Record<string, unknown>, refs: Map<string, string>): string[] {
  const shown = new Set((Array.isArray(redacted.subjects) ? (redacted.subjects as Array<{ id?: unknown }>) : []).map((s) => s.id));
  return dossier.subjects.filter((s) => shown.has(refs.get(s.id))).map((s) => s.id);
}

/** The header's handling: the code always, the conditions only as the recipient's policy disclosed them. */
export interface PacketHandling {
  code: Dossier['handling']['code'];
  conditions?: unknown;
  conditionCodes?: unknown;
}

/** A partner packet's plaintext header: what, for whom, until when, under which policy and agreement. */
export interface PacketHeader {
  id: string;
  recipient: string;
  issuedAt: string;
  expiresAt: string;
  classification: Dossier['classification'];
  handling: PacketHandling;
  policy: { id: string; revision: string };
  agreement: { reference: string; legalBasis: string; purpose: string };
}

/** What the header is built from. */
export interface HeaderInput {
  id: string;
  recipient: string;
  issuedAt: Date;
  expiresAt: Date;
  dossier: Dossier;
  revision: string;
  policy: { agreement: Pick<Agreement, 'reference' | 'legalBasis' | 'purpose'> };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * The whole plaintext is policy output: the handling code is always in the header (it is what the
 * recipient must obey), the conditions text and codes only where the policy disclosed
 * `handling.conditions` / `handling.conditionCodes` (taken from the redacted dossier, as redacted).
 * Used by the fan-out, `policy preview` and policy tests alike.
 */
export function packetHeader(h: HeaderInput, redacted: Record<string, unknown>): PacketHeader {
  const shown = isRecord(redacted.handling) ? redacted.handling : {};
  const handling: PacketHandling = { code: h.dossier.handling.code };
  if (shown.conditions !== undefined) handling.conditions = shown.conditions;
  if (shown.conditionCodes !== undefined) handling.conditionCodes = shown.conditionCodes;
  return {
    id: h.id,
    recipient: h.recipient,
    issuedAt: h.issuedAt.toISOString(),
    expiresAt: h.expiresAt.toISOString(),
    classification: h.dossier.classification,
    handling,
    policy: { id: h.recipient, revision: h.revision },
    agreement: agreementOf(h.policy),
  };
}

/** The plaintext of a partner's packet (the contract: `{"packet": {...}, "dossier": {...}}`). */
export function packetPlaintext(h: HeaderInput, redacted: Record<string, unknown>): string {
  return JSON.stringify({ packet: packetHeader(h, redacted), dossier: redacted });
}

/**
 * The plaintext of a match request (after-match agreements, policy/match.ts): `{"match": {id,
 * recipient, issuedAt, expiresAt, policy, agreement}, "subjects": [{"ref", …identifiers}]}`, the
 * subjects as the match step's redaction left them (their ids are already the packet's refs).
 */
export function matchPlaintext(h: HeaderInput, redacted: Record<string, unknown>): string {
  return JSON.stringify(matchDocument(h, redacted));
}

/** A match request's plaintext as an object (for `policy preview` and policy tests). */
export function matchDocument(h: HeaderInput, redacted: Record<string, unknown>): { match: Omit<PacketHeader, 'classification' | 'handling'>; subjects: Array<Record<string, unknown>> } {
  const subjects = (Array.isArray(redacted.subjects) ? (redacted.subjects as Array<Record<string, unknown>>) : []).map(({ id, ...identifiers }) => ({ ref: id, ...identifiers }));
  const { id, recipient, issuedAt, expiresAt, policy, agreement } = packetHeader(h, redacted);
  return { match: { id, recipient, issuedAt, expiresAt, policy, agreement }, subjects };
}
