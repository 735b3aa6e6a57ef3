/**
 * HTTP routes for blind matching (gateway/blind/): a partner under a blind-match agreement publishes
 * its setup message and answers blind-match requests, as JSON or as an OpenPGP message signed with its
 * pinned key and encrypted to the gateway. Translation only.
 */
import type { Router } from 'express';
import type { BlindMatching } from '../blind/matching.js';
import { requireRole } from './auth.js';
import { jsonOrArmoredBody, notAllowed, PGP } from './body.js';

export interface BlindHttpDeps {
  blind: BlindMatching;
  bodyLimitBytes: number;
  /** A setup message for many records is larger than any other body (blind/matching.ts MAX_SETUP_BYTES). */
  setupLimitBytes: number;
}

export function registerBlindRoutes(r: Router, deps: BlindHttpDeps): void {
  r.route('/blind/setup')
    .post(requireRole('partner'), jsonOrArmoredBody(deps.setupLimitBytes), async (req, res) => {
      res.status(202).json(await deps.blind.publishSetup(req.client!, req.body, req.is(PGP) ? 'openpgp' : 'json'));
    })
    .get(requireRole('partner'), async (req, res) => {
      res.setHeader('Cache-Control', 'no-store');
      res.json(await deps.blind.setupHead(req.client!));
    })
    .all(notAllowed('GET, POST'));

  r.route('/packets/:id/blind-answer')
    .post(requireRole('partner'), jsonOrArmoredBody(deps.bodyLimitBytes), async (req, res) => {
      res.status(202).json(await deps.blind.answer(req.client!, String(req.params.id), req.body, req.is(PGP) ? 'openpgp' : 'json'));
    })
    .all(notAllowed('POST'));
}
