/**
 * HTTP routes for hits: partners report them, and answer hit or no trace per subject, against their own
 * packets; the source fetches the bundle for its dossier; governance reads the answer rates per
 * agreement. Translation only; the use cases are in hits/.
 */
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { GatewayError } from '../errors/index.js';
import type { Answers } from '../hits/answers.js';
import type { Bundles } from '../hits/bundle.js';
import type { Matches } from '../hits/matches.js';
import type { Hits, HitsFormat } from '../hits/hits.js';
import { requireRole } from './auth.js';
import { notAllowed } from './body.js';

export interface HitsHttpDeps {
  hits: Hits;
  bundles: Bundles;
  /** Answers per subject (POST /v1/packets/:id/matches) and their rates (GET /v1/answers/rates). */
  matches?: Matches;
  answers?: Answers;
  bodyLimitBytes: number;
}

const PGP = 'application/pgp-encrypted';

/** JSON hits, or the same JSON as an armored OpenPGP message (signed by the partner, encrypted to the gateway). */
function hitsBody(limit: number) {
  const json = express.json({ limit, strict: true, type: 'application/json' });
  const armored = express.text({ limit, type: PGP, defaultCharset: 'utf-8' });
  return (req: Request, res: Response, next: NextFunction) => {
    if (req.is('application/json')) json(req, res, next);
    else if (req.is(PGP)) armored(req, res, next);
    else next(new GatewayError('unsupported_media_type', `The request body must be application/json or ${PGP}`));
  };
}

export function registerHitsRoutes(r: Router, deps: HitsHttpDeps): void {
  r.route('/packets/:id/hits')
    .post(requireRole('partner'), hitsBody(deps.bodyLimitBytes), async (req, res) => {
      const format: HitsFormat = req.is(PGP) ? 'openpgp' : 'json';
      const receipt = await deps.hits.submit(req.client!, String(req.params.id), req.body, format);
      res.status(202).json(receipt);
    })
    .all(notAllowed('POST'));

  const { matches, answers } = deps;
  if (matches) {
    r.route('/packets/:id/matches')
      .post(requireRole('partner'), hitsBody(deps.bodyLimitBytes), async (req, res) => {
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
