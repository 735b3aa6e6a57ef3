/**
 * HTTP for accountability: the audit search (`GET /v1/audit`), on-demand checkpoints
 * (`POST /v1/audit/checkpoint`), both for the governance role, and the force's recall of a dossier
 * (`POST /v1/dossiers/:id/recall`). Searching the audit is itself audited (the filters as ids and
 * keyed HMACs, never the reference or subject as typed) before any result is returned.
 */
import type { RequestHandler, Router } from 'express';
import type { AuditLog } from '../audit/log.js';
import { parseAuditFilter, type AuditQuery } from '../audit/query.js';
import type { Recall } from '../recall/recall.js';
import { requireRole } from './auth.js';
import { notAllowed } from './body.js';

export interface AuditHttpDeps {
  audit: AuditLog;
  query: AuditQuery;
  recall: Recall;
  /** The app's JSON body parser (content type and size checks included). */
  body: RequestHandler;
}

export function registerAuditRoutes(r: Router, deps: AuditHttpDeps): void {
  r.route('/audit')
    .get(requireRole('governance'), async (req, res) => {
      const filter = parseAuditFilter(req.query as Record<string, unknown>);
      await deps.audit.append({ kind: 'consultation', action: 'audit.queried', actor: req.client!.id, filter: deps.query.describe(filter) });
      const page = await deps.query.find(filter);
      res.setHeader('Cache-Control', 'no-store');
      res.json({
        records: page.records,
        next: page.next,
        ...(page.damaged.length ? { damaged: page.damaged, warning: 'some records do not match their hash or position: run `cordon audit verify`' } : {}),
      });
    })
    .all(notAllowed('GET'));

  r.route('/audit/checkpoint')
    .post(requireRole('governance'), async (req, res) => {
      await deps.audit.append({ kind: 'consultation', action: 'audit.checkpoint_requested', actor: req.client!.id });
      const record = await deps.audit.checkpoint('on demand');
      res.status(201).json({ checkpoint: record });
    })
    .all(notAllowed('POST'));

  r.route('/dossiers/:id/recall')
    .post(requireRole('source'), deps.body, async (req, res) => {
      res.json(await deps.recall.recall(req.client!, String(req.params.id), req.body));
    })
    .all(notAllowed('POST'));
}
