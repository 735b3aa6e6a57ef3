/**
 * `POST /v1/preview` (governance role): what a partner would receive of a dossier under the live policy
 * set, with the decision trace. Body `{ "dossier": {…}, "partner": "<id>" }`. The use case
 * (policy/preview.ts) validates, builds and audits; nothing but the audit record is stored.
 *
 *   200  the preview (blocked deliveries too: `blocked` says why, `plaintext` is null)
 *   400  schema_violation, each problem with its path (`/partner`, `/dossier/subjects/0/dateOfBirth`)
 *   404  not_found: no such partner in the live set
 *   422  classification_refused (SECRET and above never enter the gateway, not even for a preview)
 *   503  audit_unavailable: the consultation could not be logged, so nothing is shown
 */
import type { Router } from 'express';
import type { PolicyPreview } from '../governance/preview.js';
import { requireRole } from './auth.js';
import { jsonBody, notAllowed } from './body.js';

export interface PreviewRouteDeps {
  preview: Pick<PolicyPreview<unknown>, 'preview'>;
  bodyLimitBytes: number;
}

export function registerPreviewRoutes(r: Router, deps: PreviewRouteDeps): void {
  r.route('/preview')
    .post(requireRole('governance'), jsonBody(deps.bodyLimitBytes + 4096), async (req, res) => {
      const preview = await deps.preview.preview(req.client!.id, req.body);
      res.setHeader('Cache-Control', 'no-store');
      res.json(preview);
    })
    .all(notAllowed('POST'));
}
