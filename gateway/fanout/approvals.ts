/**
 * Approvals: the story of a force approving a follow-up disclosure (`followUp: approval` agreements). A
 * partner answered `hit` on a match request; before it is sent more, an officer of the force that owns
 * the dossier approves it: `POST /v1/dossiers/:id/approvals` with `{partner, officer: {name, id},
 * subjects?}` (the dossier's own subject ids; absent, every hit awaiting approval). The audit names the
 * officer, not only the force's system credential; then the follow-up is queued (followup.ts).
 *
 * Checked whole before anything is kept: the body (400 with each path), the dossier (another source's
 * answers like a missing one: 404), and that there is something to approve (409 with the path: the
 * partner is not asked first under approval for this dossier, the subject has no hit awaiting it, or
 * the dossier was recalled).
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject } from 'ajv';
import type { AuditLog } from '../audit/log.js';
import type { Client } from '../config/clients.js';
import { GatewayError, type ErrorDetail } from '../errors/index.js';
import { followUpMode } from '../policy/match.js';
import { isRecalled, type DossierStore } from '../store/dossiers.js';
import type { FollowUpStore } from '../store/followups.js';
import type { FollowUps } from './followup.js';

export interface ApprovalsDeps {
  store: Pick<DossierStore, 'get' | 'deliveries'>;
  audit: AuditLog;
  followUps: FollowUpStore;
  followUp: Pick<FollowUps, 'context'>;
  /** Queues the follow-up job for (dossier, partner). */
  enqueue: (dossierId: string, partner: string) => Promise<void>;
  /** An approval for an after-match peer (`partner: "peer:<id>"`), once the dossier is checked (gateway/exchange). */
  peer?: (client: Client, dossierId: string, request: ApprovalRequest) => Promise<ApprovalReceipt>;
}

export interface ApprovalRequest {
  partner: string;
  officer: { name: string; id: string };
  subjects?: string[];
}

export interface ApprovalReceipt {
  dossier: string;
  partner: string;
  approved: string[];
  officer: { name: string; id: string };
}

const TEXT = { type: 'string', minLength: 1, maxLength: 200, pattern: '^[^\\u0000-\\u001F\\u007F]*$' };
const ajv = new Ajv2020({ strict: true, allErrors: true });
const checkBody = ajv.compile({
  type: 'object',
  additionalProperties: false,
  required: ['partner', 'officer'],
  properties: {
    partner: { type: 'string', minLength: 1, maxLength: 69, pattern: '^(peer:)?[a-z0-9][a-z0-9-]{0,63}$' },
    officer: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'id'],
      properties: { name: TEXT, id: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._/-]{1,64}$' } },
    },
    subjects: { type: 'array', minItems: 1, maxItems: 500, uniqueItems: true, items: { type: 'string', minLength: 1, maxLength: 64 } },
  },
});

function toDetail(e: ErrorObject): ErrorDetail {
  const p = e.params as { missingProperty?: string; additionalProperty?: string };
  if (e.keyword === 'required') return { path: `${e.instancePath}/${p.missingProperty}`, message: 'is required', keyword: e.keyword };
  if (e.keyword === 'additionalProperties') return { path: `${e.instancePath}/${p.additionalProperty}`, message: 'is not an allowed property', keyword: e.keyword };
  return { path: e.instancePath, message: e.message ?? 'is invalid', keyword: e.keyword };
}

export function validateApproval(body: unknown): ApprovalRequest {
  if (!checkBody(body)) throw new GatewayError('schema_violation', 'The approval does not match the schema', (checkBody.errors ?? []).slice(0, 50).map(toDetail));
  return body as ApprovalRequest;
}

/** Attempts when a follow-up job changes the record at the same moment. */
const ATTEMPTS = 3;

export class Approvals {
  constructor(private readonly deps: ApprovalsDeps) {}

  async approve(client: Client, dossierId: string, body: unknown): Promise<ApprovalReceipt> {
    const request = validateApproval(body);
    const record = await this.deps.store.get(dossierId);
    if (!record || record.source !== client.source) throw new GatewayError('not_found', 'No such dossier');
    if (isRecalled(record.state)) throw new GatewayError('dossier_recalled', 'The dossier has been recalled: nothing more is disclosed from it', [{ path: '', message: 'the dossier was recalled' }]);
    const { partner } = request;
    if (partner.startsWith('peer:')) {
      if (!this.deps.peer) throw new GatewayError('nothing_to_approve', `${partner} is not asked first on this gateway`, [{ path: '/partner', message: 'has no match envelope awaiting approval on this dossier' }]);
      return this.deps.peer(client, dossierId, request);
    }
    for (let attempt = 1; ; attempt++) {
      const ctx = record.partners.includes(partner) ? await this.deps.followUp.context(dossierId, partner) : undefined;
      if (!ctx || followUpMode(ctx.policy.agreement) !== 'approval') {
        throw new GatewayError('nothing_to_approve', `${partner} is not asked first under an agreement that needs approval for this dossier`, [{ path: '/partner', message: 'has no match request awaiting approval on this dossier' }]);
      }
      const { record: held, sealed } = ctx.held;
      const claimed = new Set(held.rounds.flatMap((r) => r.subjects));
      const approved = new Set(held.approvals.flatMap((a) => a.subjects));
      const awaiting = ctx.hits.filter((s) => !claimed.has(s) && !approved.has(s));
      const asked = request.subjects ?? awaiting;
      const problems: ErrorDetail[] = [];
      if (request.subjects) request.subjects.forEach((s, i) => awaiting.includes(s) || problems.push({ path: `/subjects/${i}`, message: 'has no hit awaiting approval from this partner' }));
      else if (!awaiting.length) problems.push({ path: '/partner', message: 'has no hit awaiting approval on this dossier' });
      if (problems.length) throw new GatewayError('nothing_to_approve', 'Nothing was approved: some of it is not awaiting approval', problems);

      const at = new Date().toISOString();
      const next = { ...held, approvals: [...held.approvals, { officer: request.officer, client: client.id, at, subjects: [...asked].sort() }] };
      // Audit first: an approval that cannot be logged is not kept.
      await this.deps.audit.append({
        kind: 'decision',
        action: 'followup.approved',
        actor: client.id,
        dossier: dossierId,
        recipient: partner,
        partner,
        officer: request.officer,
        subjects: asked.length,
        matchPacket: ctx.match.id,
        agreement: { reference: ctx.policy.agreement.reference, legalBasis: ctx.policy.agreement.legalBasis, purpose: ctx.policy.agreement.purpose },
      });
      if (await this.deps.followUps.put(dossierId, partner, next, sealed)) {
        await this.deps.enqueue(dossierId, partner);
        return { dossier: dossierId, partner, approved: [...asked].sort(), officer: request.officer };
      }
      if (attempt >= ATTEMPTS) throw new GatewayError('store_unavailable', 'The follow-up record kept changing; nothing was approved, try again');
    }
  }
}
