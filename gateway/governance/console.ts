/**
 * What the governance console (`/console`) asks of the gateway beyond the existing routes:
 *
 *   agreements()  every partner of the live set with its agreement's dates, status, disclosure mode and
 *                 the hit / no-trace answers given under each agreement reference (hits/answers.ts).
 *                 Configuration and counts only: no dossier, subject or packet.
 *   revisions()   the live revision and the earlier ones this process has served (revisions.ts).
 *   diff()        what each partner gains or loses between the live set and a candidate uploaded from
 *                 the browser (candidate.ts), or between an earlier revision and the live set, on a
 *                 given dossier or the example dossiers (diff.ts, as `cordon policy diff`). Audited
 *                 first (consultation, `policy.diffed`: who, which revisions; never values): a diff on a
 *                 pasted dossier shows what partners would see of it, as a preview does.
 *   isa()         the information-sharing agreement with one partner, rendered from the live set
 *                 (isa.ts): its sections for the page to lay out as text, and the Markdown and HTML
 *                 documents `cordon policy isa` prints, for download.
 */
import { readFile } from 'node:fs/promises';
import { GatewayError, type ErrorDetail } from '../errors/index.js';
import type { AgreementRates } from '../hits/answers.js';
import type { Dossier } from '../dossier/types.js';
import { validateDossier } from '../dossier/validate.js';
import { agreementStatus, REVIEW_WARN_DAYS } from '../policy/agreement.js';
import { followUpMode, isAfterMatch } from '../policy/match.js';
import type { PolicySet } from '../policy/types.js';
import { loadCandidate, parseCandidate } from './candidate.js';
import { diffSets, isUnchanged, type PartnerDiff } from './diff.js';
import { buildIsa } from './isa.js';
import { isaHtml, isaMarkdown, sections, type Section } from './isa-text.js';
import { summarise, type RevisionHistory, type RevisionSummary } from './revisions.js';

/** Shipped beside the code in the source tree and in dist/ (scripts/build.mjs copies examples/). */
const EXAMPLES = ['dossier-full.json', 'dossier-minimal.json'];
const EXAMPLES_DIR = new URL('../../examples/', import.meta.url);
const REVISION = /^[0-9a-f]{16}$/;

export type ConsoleAuditEvent = {
  kind: 'consultation';
  action: 'policy.diffed';
  actor: string;
  policyRevision: string;
  fromRevision: string;
  toRevision: string;
  against: 'candidate' | 'revision';
  dossiers: number;
};

export interface ConsoleDeps {
  policies: () => PolicySet;
  history: RevisionHistory;
  /** Answers per agreement (GET /v1/answers/rates); absent where the hits module is not wired. */
  rates?: () => Promise<AgreementRates[]>;
  audit: { append(event: ConsoleAuditEvent): Promise<unknown> };
  /** The gateway's signing key fingerprint, named in the agreement's security section. */
  gatewayKeyFingerprint?: string;
}

export interface IsaView {
  partner: string;
  title: string;
  reference: string;
  status: string;
  revision: string;
  generatedAt: string;
  sections: Section[];
  markdown: string;
  html: string;
}

export interface AgreementRow {
  partner: { id: string; name: string; kind: string; checks: string[] };
  agreement: {
    reference: string;
    owner: string;
    inForceFrom: string;
    reviewBy: string;
    /** in_force, review_due (within REVIEW_WARN_DAYS), not_in_force or expired. */
    status: 'in_force' | 'review_due' | 'not_in_force' | 'expired';
    daysLeft: number | null;
    disclosure: 'immediate' | 'after-match';
    followUp?: 'automatic' | 'approval';
    retentionDays: number;
    respondWithinDays: number | null;
    highestClassification: string;
  };
  /** Answers under this agreement reference; earlier references of the same partner in `earlier`. */
  answers: { hit: number; noTrace: number; withdrawn: number; hitRate: number | null };
  earlier: AgreementRates[];
}

export interface DiffReport {
  from: { revision: string; label: string };
  to: { revision: string; label: string };
  dossiers: Array<{ dossier: string; partners: Array<Omit<PartnerDiff, 'from' | 'to'> & { unchanged: boolean; from: PlainView; to: PlainView }> }>;
  changed: number;
}

type PlainView = { absent?: boolean; blocked?: string; subjects: string[]; paths: Record<string, string> };

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

async function exampleDossiers(): Promise<Array<{ name: string; dossier: Dossier }>> {
  return Promise.all(EXAMPLES.map(async (name) => ({ name, dossier: validateDossier(JSON.parse(await readFile(new URL(name, EXAMPLES_DIR), 'utf8'))) })));
}

export class GovernanceConsole {
  constructor(private readonly deps: ConsoleDeps) {}

  async agreements(now: Date = new Date()): Promise<{ revision: string; reviewWarnDays: number; partners: AgreementRow[] }> {
    const set = this.deps.policies();
    const rates = this.deps.rates ? await this.deps.rates() : [];
    const partners = [...set.partners.values()]
      .sort((a, b) => a.partner.id.localeCompare(b.partner.id))
      .map((p): AgreementRow => {
        const a = p.agreement;
        const s = agreementStatus(a, now);
        const daysLeft = 'daysLeft' in s ? s.daysLeft : null;
        const status = s.state === 'in_force' && s.daysLeft <= REVIEW_WARN_DAYS ? 'review_due' : s.state;
        const mine = rates.filter((r) => r.partner === p.partner.id);
        const current = mine.find((r) => r.agreement === a.reference);
        return {
          partner: { id: p.partner.id, name: p.partner.name, kind: p.partner.kind, checks: [...p.partner.checks] },
          agreement: {
            reference: a.reference,
            owner: a.owner,
            inForceFrom: a.inForceFrom,
            reviewBy: a.reviewBy,
            status,
            daysLeft,
            disclosure: isAfterMatch(a) ? 'after-match' : 'immediate',
            ...(isAfterMatch(a) ? { followUp: followUpMode(a) } : {}),
            retentionDays: a.retentionDays,
            respondWithinDays: a.respondWithinDays ?? null,
            highestClassification: a.highestClassification,
          },
          answers: { hit: current?.hit ?? 0, noTrace: current?.noTrace ?? 0, withdrawn: current?.withdrawn ?? 0, hitRate: current?.hitRate ?? null },
          earlier: mine.filter((r) => r !== current),
        };
      });
    return { revision: set.revision, reviewWarnDays: REVIEW_WARN_DAYS, partners };
  }

  /** The live revision with its files' relative paths (the console places single files by them), and the earlier ones. */
  revisions(): { live: RevisionSummary & { files: string[] }; earlier: RevisionSummary[] } {
    const live = this.deps.policies();
    return { live: { ...summarise(live), files: (live.files ?? []).map((f) => f.rel) }, earlier: this.deps.history.list(live) };
  }

  /** `{candidate: {files, base}}` or `{revision}`, and optionally `dossier`; see the file comment. */
  async diff(actor: string, body: unknown, now: Date = new Date()): Promise<DiffReport> {
    const live = this.deps.policies();
    if (!isPlainObject(body)) throw new GatewayError('schema_violation', 'The diff request does not match the schema', [{ path: '', message: 'must be a JSON object with candidate or revision' }]);
    const problems: ErrorDetail[] = [];
    for (const k of Object.keys(body)) if (!['candidate', 'revision', 'dossier'].includes(k)) problems.push({ path: `/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`, message: 'is not an allowed property' });
    const hasCandidate = Object.hasOwn(body, 'candidate');
    const hasRevision = Object.hasOwn(body, 'revision');
    if (hasCandidate === hasRevision) problems.push({ path: '', message: 'must name exactly one of candidate (files chosen in the browser) or revision (an earlier revision)' });
    if (hasRevision && (typeof body.revision !== 'string' || !REVISION.test(body.revision))) problems.push({ path: '/revision', message: 'must be a policy revision (16 hex digits)' });
    let dossiers: Array<{ name: string; dossier: Dossier }> | undefined;
    if (Object.hasOwn(body, 'dossier')) {
      try {
        dossiers = [{ name: 'the dossier given', dossier: validateDossier(body.dossier) }];
      } catch (err) {
        if (!(err instanceof GatewayError)) throw err;
        const inner = (err.details ?? []).map((d) => ({ ...d, path: `/dossier${d.path ?? ''}` }));
        if (err.code === 'classification_refused' && problems.length === 0) throw new GatewayError(err.code, err.message, inner);
        problems.push(...inner);
      }
    }
    if (problems.length) throw new GatewayError('schema_violation', 'The diff request does not match the schema', problems);

    let from: PolicySet;
    let to: PolicySet;
    let labels: [string, string];
    if (hasCandidate) {
      const candidate = parseCandidate(body.candidate, '/candidate');
      from = live;
      to = await loadCandidate(candidate, live, '/candidate', now);
      const n = Object.keys(candidate.files).length;
      labels = ['live', `candidate (${n} file${n === 1 ? '' : 's'}${candidate.base === 'live' ? ' over the live set' : ''})`];
    } else {
      const earlier = this.deps.history.get(body.revision as string, live);
      if (!earlier) {
        const known = this.deps.history.list(live).map((r) => r.revision);
        throw new GatewayError('not_found', `Revision ${String(body.revision)} is not an earlier revision this gateway process has served`, [
          { path: '/revision', message: known.length ? `must be one of ${known.join(', ')}` : 'no earlier revision is held (none has been replaced since start-up)' },
        ]);
      }
      from = earlier;
      to = live;
      labels = ['earlier', 'live'];
    }
    dossiers ??= await exampleDossiers();
    const event: ConsoleAuditEvent = { kind: 'consultation', action: 'policy.diffed', actor, policyRevision: live.revision, fromRevision: from.revision, toRevision: to.revision, against: hasCandidate ? 'candidate' : 'revision', dossiers: dossiers.length };
    try {
      await this.deps.audit.append(event);
    } catch (err) {
      if (err instanceof GatewayError && err.code === 'audit_unavailable') throw err;
      throw new GatewayError('audit_unavailable', 'The audit trail cannot be written, so no diff was made', undefined, { cause: err });
    }
    const plain = (v: PartnerDiff['from']): PlainView => ({ ...(v.absent ? { absent: true } : {}), ...(v.blocked ? { blocked: v.blocked } : {}), subjects: v.subjects, paths: Object.fromEntries(v.paths) });
    const report: DiffReport = { from: { revision: from.revision, label: labels[0] }, to: { revision: to.revision, label: labels[1] }, dossiers: [], changed: 0 };
    for (const { name, dossier } of dossiers) {
      const partners = (await diffSets(from, to, dossier, now)).map((d) => ({ ...d, unchanged: isUnchanged(d), from: plain(d.from), to: plain(d.to) }));
      report.changed += partners.filter((p) => !p.unchanged).length;
      report.dossiers.push({ dossier: name, partners });
    }
    return report;
  }

  /** The agreement with one partner as the live set enforces it; not_found for an unknown partner. */
  isa(partnerId: string, now: Date = new Date()): IsaView {
    const fp = this.deps.gatewayKeyFingerprint;
    const doc = buildIsa(this.deps.policies(), partnerId, { now, ...(fp ? { gatewayKey: { fingerprint: fp } } : {}) });
    return {
      partner: doc.partner.id,
      title: doc.title,
      reference: doc.reference,
      status: doc.status.state,
      revision: doc.policy.revision,
      generatedAt: doc.generatedAt,
      sections: sections(doc),
      markdown: isaMarkdown(doc),
      html: isaHtml(doc),
    };
  }

  /** An example dossier, for the preview view. */
  async example(name: string): Promise<unknown> {
    if (!EXAMPLES.includes(name)) throw new GatewayError('not_found', `No example dossier ${JSON.stringify(name)}`, [{ path: 'name', message: `must be one of ${EXAMPLES.join(', ')}` }]);
    return JSON.parse(await readFile(new URL(name, EXAMPLES_DIR), 'utf8')) as unknown;
  }

  examples(): string[] {
    return [...EXAMPLES];
  }
}
