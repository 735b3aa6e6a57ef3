/**
 * Preview: what one partner would receive of a dossier under the policy set in force, and why.
 * Used by `cordon policy preview` (offline, on a policy directory) and `POST /v1/preview` (governance
 * role, on the live set).
 *
 * buildPreview is pure: it decides and redacts exactly as the fan-out does and wraps the result in the
 * same packet-shaped plaintext (`{packet: {…}, dossier: {…}}`), with placeholders where the fan-out
 * would use per-packet secrets: the packet id is `pkt_preview`, subject i's ref is `ref_preview_<i+1>`,
 * and pseudonyms are computed with a preview key (never the partner's own, so a preview can never be
 * used to reverse the pseudonyms a partner holds). Beside it: the decision trace (rule → operation →
 * path, per subject), the disclosed paths and operations, and the reason when the delivery would be
 * blocked. The trace also says where facts the dossier does not give decided the outcome
 * ("excluded: age unknown (isMinor)", "treated as a minor: flag child-criminal-exploitation"), and the
 * block message names them when they are why nothing would be sent (policy/decide.ts).
 *
 * PolicyPreview is the use case behind the HTTP route: it validates the request, builds the preview
 * on the live set and appends one audit record (consultation, preview.used: who, which partner, which
 * policy revision; never values) before anything is returned. Nothing else is stored. If the audit
 * record cannot be written there is no preview.
 */
import { chooseRecipients, type Why } from '../policy/recipients.js';
import { createHash } from 'node:crypto';
import { GatewayError, type ErrorDetail } from '../errors/index.js';
import type { Dossier } from '../dossier/types.js';
import { validateDossier } from '../dossier/validate.js';
import { matchDocument, packetHeader, type PacketHeader } from '../pipeline/disclose.js';
import { followUpMode, isAfterMatch, matchPlan } from '../policy/match.js';
import { isBlindMatch } from '../policy/blind-keys.js';
import { redact, type Disclosure } from '../redact/redact.js';
import type { Withheld } from '../redact/provenance.js';
import type { Decider } from '../policy/decide.js';
import { isInvalid, type LiveSet } from '../policy/live.js';
import type { Block, PolicySet, TraceEntry } from '../policy/types.js';

const DAY_MS = 24 * 3600 * 1000;
const PARTNER_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;

const PREVIEW_PACKET_ID = 'pkt_preview';

/** The placeholder ref of subject i in a preview. */
export function previewRef(i: number): string {
  return `ref_preview_${i + 1}`;
}

/** The key pseudonyms are computed with in a preview: per partner, public, never the partner's own. */
export function previewPseudonymKey(partner: string): Buffer {
  return createHash('sha256').update(`cordon preview pseudonyms\u0000${partner}`).digest();
}

interface PreviewPlaintext {
  /** Built by the fan-out's own header builder (pipeline/disclose.ts): conditions only where granted. */
  packet: PacketHeader;
  dossier: Record<string, unknown>;
}

/** Whether a partner would receive the dossier and why (policy/recipients.ts). */
export interface PreviewRecipient {
  partner: string;
  sent: 'requested' | 'statutory' | 'not_requested' | 'deferred';
  why?: Why;
  reason?: string;
}

export interface Preview {
  partner: string;
  /** How the dossier reaches this partner; `not_requested`/`deferred`: the plaintext is what it would get if it did. */
  sent: PreviewRecipient;
  /** Every partner of the set: whether it would receive the dossier, and why. */
  recipients: PreviewRecipient[];
  policy: { id: string; revision: string };
  agreement: { reference: string; reviewBy: string };
  /** Why nothing would be sent, or null. */
  blocked: Block | null;
  /** What the partner would decrypt, or null when blocked. */
  plaintext: PreviewPlaintext | null;
  /** Which rule set which operation on which path (`subject`/`subjectIndex` name the input's subjects). */
  trace: TraceEntry[];
  /** The distinct paths and operations the plaintext discloses. */
  disclosed: Disclosure[];
  /** Input subject index → the placeholder ref it has in the plaintext (excluded subjects are absent). */
  refs: Array<{ subjectIndex: number; subject: string; ref: string }>;
  /**
   * For a partner under an after-match agreement (policy/match.ts), the first step: the match request it
   * is sent (`{match, subjects}`, identifiers only) and what that discloses. `plaintext` is then what
   * follows for each subject it answers hit (shown for them all), at once or after the force approves.
   */
  match?: { followUp: 'automatic' | 'approval'; plaintext: ReturnType<typeof matchDocument>; disclosed: Disclosure[]; blind?: { keyTypes: string[] } };
  notes: string[];
}

interface PreviewInput {
  set: PolicySet;
  decider: Decider;
  dossier: Dossier;
  partner: string;
  now: Date;
  /** Why the partner's key cannot be used (the delivery would be blocked), if it cannot. */
  keyProblem?: string;
}

const NOTES = [
  'Placeholders: the packet id, the subject refs and the pseudonyms differ in real packets (refs are random per packet; pseudonyms use the partner\'s own key).',
  'The trace names the input\'s own subject ids and indexes; the partner never sees them.',
];

const BLIND_NOTE =
  'Blind-match: `match.plaintext` shows the identifiers the match keys (`match.blind.keyTypes`) are made from; the partner is sent them only blinded (docs/blind-matching.md), the gateway works out hit or no trace, and `plaintext` is what follows for the subjects with a hit only.';
const MATCH_NOTE =
  'After-match: the partner is first sent `match.plaintext` (identifiers only) and answers hit or no trace per subject; `plaintext` is what follows, for the subjects it answers hit only.';

export async function buildPreview(input: PreviewInput): Promise<Preview> {
  const { set, decider, dossier, partner, now } = input;
  const policy = set.partners.get(partner);
  if (policy === undefined) {
    throw new GatewayError('not_found', `No partner ${JSON.stringify(partner)} in policy revision ${set.revision}`, [
      { path: '/partner', message: `must be one of ${[...set.partners.keys()].join(', ')}` },
    ]);
  }
  const decision = await decider.decide(partner, dossier, now);
  const recipients = previewRecipients(dossier, set);
  const head = {
    partner,
    sent: recipients.find((r) => r.partner === partner)!,
    recipients,
    policy: { id: partner, revision: decision.revision },
    agreement: { reference: policy.agreement.reference, reviewBy: policy.agreement.reviewBy },
  };
  let block: Block | undefined = decision.block;
  if (block === undefined && input.keyProblem !== undefined) block = { reason: 'recipient_key_invalid', message: input.keyProblem };
  if (block !== undefined) return { ...head, blocked: block, plaintext: null, trace: decision.trace, disclosed: [], refs: [], notes: NOTES };

  const subjects = Array.isArray(dossier.subjects) ? dossier.subjects : [];
  const refs = new Map(subjects.map((s, i) => [s.id, previewRef(i)]));
  const { dossier: redacted, disclosed, withheld } = redact(dossier, decision.plan, { refs, pseudonymKey: previewPseudonymKey(partner) });
  const header = {
    id: PREVIEW_PACKET_ID,
    recipient: partner,
    issuedAt: now,
    expiresAt: new Date(now.getTime() + policy.agreement.retentionDays * DAY_MS),
    dossier,
    revision: decision.revision,
    policy,
  };
  const plaintext: PreviewPlaintext = { packet: packetHeader(header, redacted), dossier: redacted };
  const shared: Preview['refs'] = [];
  subjects.forEach((s, i) => {
    if (decision.plan.subjects[i] != null) shared.push({ subjectIndex: i, subject: s.id, ref: previewRef(i) });
  });
  const trace = withheld.length === 0 ? decision.trace : withProvenance(decision.trace, withheld, subjects);
  const preview: Preview = { ...head, blocked: null, plaintext, trace, disclosed, refs: shared, notes: NOTES };
  if (isAfterMatch(policy.agreement)) {
    // The same decision narrowed to identifiers, as the fan-out makes the match request.
    const step = redact(dossier, matchPlan(decision.plan, policy.match ?? []), { refs, pseudonymKey: previewPseudonymKey(partner) });
    preview.match = { followUp: followUpMode(policy.agreement), plaintext: matchDocument(header, step.dossier), disclosed: step.disclosed.filter((d) => d.path !== 'schema') };
    preview.notes = [...NOTES, MATCH_NOTE];
    if (isBlindMatch(policy.agreement)) {
      // Blind-match: those identifiers become blinded match keys; none of them is sent as shown.
      preview.match.blind = { keyTypes: [...(policy.agreement.blindKeys ?? [])] };
      preview.notes = [...NOTES, BLIND_NOTE];
    }
  }
  return preview;
}

/**
 * The trace with a `provenance → withhold` line for each item withheld because the intelligence it came
 * from is not in the packet, each after the last line of its own subject (or of the dossier).
 */
function previewRecipients(dossier: Dossier, set: PolicySet): PreviewRecipient[] {
  const choice = chooseRecipients(dossier, set);
  return [
    ...choice.recipients.map((r): PreviewRecipient => ({ partner: r.partner, sent: r.why.statutory ? 'statutory' : 'requested', why: r.why })),
    ...choice.notSent.map((n): PreviewRecipient => ({ partner: n.partner, sent: n.state, reason: n.reason })),
  ].sort((a, b) => (a.partner < b.partner ? -1 : 1));
}

function withProvenance(trace: TraceEntry[], withheld: Withheld[], subjects: Dossier['subjects']): TraceEntry[] {
  const out = [...trace];
  for (const w of withheld) {
    const scope = w.subjectIndex === undefined ? { scope: 'dossier' as const } : { scope: 'subject' as const, subject: subjects[w.subjectIndex]?.id ?? '', subjectIndex: w.subjectIndex };
    const entry: TraceEntry = { rule: 'provenance', ...scope, path: w.path, op: 'withhold', note: w.reason };
    let at = out.length;
    for (let k = out.length - 1; k >= 0; k--) {
      if (out[k]!.scope === entry.scope && out[k]!.subjectIndex === entry.subjectIndex) {
        at = k + 1;
        break;
      }
    }
    out.splice(at, 0, entry);
  }
  return out;
}

// ---- the use case ------------------------------------------------------------------------------

export type PreviewAuditEvent = {
  kind: 'consultation';
  action: 'preview.used';
  actor: string;
  recipient: string;
  policyRevision: string;
  reason?: string;
};

interface PolicyPreviewDeps<K> {
  live: () => LiveSet<K>;
  audit: { append(event: PreviewAuditEvent): Promise<unknown> };
  /** Rejects when a parsed key cannot be used now (expired, revoked). */
  checkKey?: (key: K, now: Date) => Promise<void>;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** `{ "dossier": {…}, "partner": "<id>" }`, or schema_violation with every problem's path. */
export function parsePreviewRequest(body: unknown): { dossier: Dossier; partner: string } {
  const details: ErrorDetail[] = [];
  if (!isPlainObject(body)) {
    throw new GatewayError('schema_violation', 'The preview request does not match the schema', [{ path: '', message: 'must be a JSON object with dossier and partner' }]);
  }
  for (const k of Object.keys(body)) if (k !== 'dossier' && k !== 'partner') details.push({ path: `/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`, message: 'is not an allowed property' });
  if (!Object.hasOwn(body, 'partner')) details.push({ path: '/partner', message: 'is required' });
  else if (typeof body.partner !== 'string' || !PARTNER_ID.test(body.partner)) details.push({ path: '/partner', message: 'must be a partner id' });
  let dossier: Dossier | undefined;
  if (!Object.hasOwn(body, 'dossier')) details.push({ path: '/dossier', message: 'is required' });
  else {
    try {
      dossier = validateDossier(body.dossier);
    } catch (err) {
      if (!(err instanceof GatewayError)) throw err;
      const inner = (err.details ?? []).map((d) => ({ ...d, path: `/dossier${d.path ?? ''}` }));
      if (err.code === 'classification_refused' && details.length === 0) throw new GatewayError(err.code, err.message, inner);
      details.push(...inner);
    }
  }
  if (details.length > 0 || dossier === undefined) throw new GatewayError('schema_violation', 'The preview request does not match the schema', details);
  return { dossier, partner: body.partner as string };
}

export class PolicyPreview<K> {
  constructor(private readonly deps: PolicyPreviewDeps<K>) {}

  /** Validate, build on the live set, audit; throws audit_unavailable (and shows nothing) if the audit fails. */
  async preview(actor: string, body: unknown, now: Date = new Date()): Promise<Preview> {
    const { dossier, partner } = parsePreviewRequest(body);
    const live = this.deps.live();
    const input: PreviewInput = { set: live.set, decider: live.decider, dossier, partner, now };
    if (live.set.partners.has(partner)) {
      const key = live.keys.get(partner);
      if (isInvalid(key)) input.keyProblem = key?.invalid ?? 'the partner has no key';
      else if (this.deps.checkKey) {
        try {
          await this.deps.checkKey(key, now);
        } catch (err) {
          input.keyProblem = (err as Error).message;
        }
      }
    }
    const preview = await buildPreview(input);
    const event: PreviewAuditEvent = { kind: 'consultation', action: 'preview.used', actor, recipient: partner, policyRevision: preview.policy.revision };
    if (preview.blocked) event.reason = preview.blocked.reason;
    try {
      await this.deps.audit.append(event);
    } catch (err) {
      if (err instanceof GatewayError && err.code === 'audit_unavailable') throw err;
      throw new GatewayError('audit_unavailable', 'The audit trail cannot be written, so no preview was made', undefined, { cause: err });
    }
    return preview;
  }
}
