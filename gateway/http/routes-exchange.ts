/**
 * `POST /v1/exchange/inbound`: another force's gateway (role `peer`) sends an armored OpenPGP
 * envelope (a dossier or match request, hits or answers on one this gateway sent it, a recall).
 * `/v1/exchange/matches`: this gateway's force (role `source`) lists the peers' match requests, fetches
 * one (encrypted to its key) and answers it. Translation only: gateway/exchange.
 */
import type { TLSSocket } from 'node:tls';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { GatewayError } from '../errors/index.js';
import type { Exchange } from '../exchange/exchange.js';
import { requireRole } from './auth.js';
import { jsonBody, notAllowed } from './body.js';

export interface ExchangeHttpDeps {
  exchange: Exchange;
  bodyLimitBytes: number;
}

const PGP = 'application/pgp-encrypted';

function armoredBody(limit: number) {
  const text = express.text({ limit, type: PGP, defaultCharset: 'utf-8' });
  return (req: Request, res: Response, next: NextFunction) => {
    if (req.is(PGP)) text(req, res, next);
    else next(new GatewayError('unsupported_media_type', `The request body must be ${PGP} (an armored OpenPGP message)`));
  };
}

export function registerExchangeRoutes(r: Router, deps: ExchangeHttpDeps): void {
  r.route('/exchange/inbound')
    .post(requireRole('peer'), armoredBody(deps.bodyLimitBytes), async (req, res) => {
      const client = req.client!;
      // The TLS client certificate, when the API listens on HTTPS (CORDON_TLS_CERT): pinned per peer.
      const socket = req.socket as Partial<TLSSocket>;
      const cert = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined;
      const result = await deps.exchange.receive(client.id, client.peer!, req.body, cert?.fingerprint256 || undefined);
      res.status(result.replayed ? 200 : 202).json(result);
    })
    .all(notAllowed('POST'));

  const matches = deps.exchange.matchIn;
  r.route('/exchange/matches')
    .get(requireRole('source'), async (req, res) => {
      res.setHeader('Cache-Control', 'no-store');
      res.json({ matches: await matches.list(req.client!) });
    })
    .all(notAllowed('GET'));
  r.route('/exchange/matches/:id')
    .get(requireRole('source'), async (req, res) => {
      const message = await matches.retrieve(req.client!, String(req.params.id));
      res.type(PGP).setHeader('Cache-Control', 'no-store');
      res.send(message);
    })
    .all(notAllowed('GET'));
  r.route('/exchange/matches/:id/answers')
    .post(requireRole('source'), jsonBody(deps.bodyLimitBytes), async (req, res) => {
      res.status(202).json(await matches.answer(req.client!, String(req.params.id), req.body));
    })
    .all(notAllowed('POST'));
}
