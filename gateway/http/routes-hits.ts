/**
 * HTTP routes for hits: partners report them, and answer hit or no trace per subject, against their own
 * packets; the source fetches the bundle for its dossier; governance reads the answer rates per
 * agreement. Translation only; the use cases are in hits/.
 */
import type { Router } from 'express';
import type { Answers } from '../hits/answers.js';
import type { Bundles } from '../hits/bundle.js';
import type { Matches } from '../hits/matches.js';
import type { Hits, HitsFormat } from '../hits/hits.js';
import { requireRole } from './auth.js';
import { jsonOrArmoredBody, notAllowed, PGP } from './body.js';

export interface HitsHttpDeps {
  hits: Hits;
  bundles: Bundles;
  /** Answers per subject (POST /v1/packets/:id/matches) and their rates (GET /v1/answers/rates). */
  matches?: Matches;
  answers?: Answers;
  bodyLimitBytes: number;
}

export function registerHitsRoutes(r: Router, deps: HitsHttpDeps): void {
  r.route('/packets/:id/hits')
    .post(requireRole('partner'), jsonOrArmoredBody(deps.bodyLimitBytes), async (req, res) => {
      const format: HitsFormat = req.is(PGP) ? 'openpgp' : 'json';
      const receipt = await deps.hits.submit(req.client!, String(req.params.id), req.body, format);
      res.status(202).json(receipt);
    })
    .all(notAllowed('POST'));

  const { matches, answers } = deps;
  if (matches) {
    r.route('/packets/:id/matches')
      .post(requireRole('partner'), jsonOrArmoredBody(deps.bodyLimitBytes), async (req, res) => {
        const format: HitsFormat = req.is(PGP) ? 'openpgp' : 'json';
        res.status(202).json(await matches.submit(req.client!, String(req.params.id), req.body, format));
      })
      .all(notAllowed('POST'));
  }
  if (answers) {
    r.route('/answers/rates')
      .get(requireRole('governance'), async (_req, res) => {
        res.setHeader('Cache-Control', 'no-store');
        res.json({ agreements: await answers.rates() });
      })
      .all(notAllowed('GET'));
  }

  r.route('/dossiers/:id/hits')
    .get(requireRole('source'), async (req, res) => {
      const { message } = await deps.bundles.deliver(req.client!, String(req.params.id));
      res.type(PGP).setHeader('Cache-Control', 'no-store');
      res.send(message);
    })
    .all(notAllowed('GET'));
}
