/**
 * The HTTP edge: routes, roles, body handling and error mapping. Use cases live elsewhere; this file
 * only translates between HTTP and them.
 */
import { randomUUID } from 'node:crypto';
import express, { type Router } from 'express';
import helmet from 'helmet';
import { pinoHttp } from 'pino-http';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/log.js';
import type { ClientRegistry } from '../config/clients.js';
import { GatewayError } from '../errors/index.js';
import type { Approvals } from '../fanout/approvals.js';
import type { Intake } from '../intake/intake.js';
import type { Packets } from '../mailbox/packets.js';
import type { PolicySet } from '../policy/types.js';
import { authenticate, requireRole } from './auth.js';
import { jsonBody, notAllowed } from './body.js';
import { errorHandler } from './errors.js';
import { observeResponses, type ResponseObserver } from './observe.js';
import { registerOpenApiRoute } from './openapi.js';
import { partnerToolkit } from './partners.js';
import { registerAuditRoutes, type AuditHttpDeps } from './routes-audit.js';
import { registerConsolePage, registerConsoleRoutes, type ConsoleRouteDeps } from './routes-console.js';
import { registerDashboardPage, registerDashboardRoutes, type DashboardRouteDeps } from './routes-dashboard.js';
import type { RateLimits } from './ratelimit.js';
import { registerHitsRoutes, type HitsHttpDeps } from './routes-hits.js';
import { registerBlindRoutes, type BlindHttpDeps } from './routes-blind.js';
import { registerExchangeRoutes, type ExchangeHttpDeps } from './routes-exchange.js';
import { registerPreviewRoutes, type PreviewRouteDeps } from './routes-preview.js';

export interface HttpDeps {
  logger: Logger;
  bodyLimitBytes: number;
  clients: () => ClientRegistry;
  audit: AuditLog;
  intake: Intake;
  packets: Packets;
  policies: () => PolicySet;
  gatewayPublicKey: string;
  /** Readiness checks by name. `ready: false` takes this process out of service; a detail alone only informs. */
  readiness: () => Promise<Record<string, { ready: boolean; detail: string }>>;
  metrics?: () => Promise<{ contentType: string; body: string }>;
  /** `GET /v1/audit`, `POST /v1/audit/checkpoint`, `POST /v1/dossiers/:id/recall` (routes-audit.ts). */
  accountability?: Omit<AuditHttpDeps, 'body'>;
  /** Partners' hits and the sources' bundles (routes-hits.ts). */
  hits?: Omit<HitsHttpDeps, 'bodyLimitBytes'>;
  /** Blind matching: setup messages and blind-match answers (gateway/blind/). */
  blind?: Omit<BlindHttpDeps, 'bodyLimitBytes'>;
  /** `POST /v1/preview` for the governance role (routes-preview.ts). */
  preview?: PreviewRouteDeps['preview'];
  /** `POST /v1/exchange/inbound` for peer gateways (routes-exchange.ts). */
  exchange?: ExchangeHttpDeps['exchange'];
  /** `GET /v1/queues` (governance role) and the `/dashboard` page that polls it (routes-dashboard.ts). */
  queues?: DashboardRouteDeps['queues'];
  /** The `/console` page and its `/v1/governance/*` routes (routes-console.ts). */
  governanceConsole?: ConsoleRouteDeps['console'];
  rateLimits?: RateLimits;
  /** `POST /v1/dossiers/:id/approvals` (source role): a follow-up after a match request, approved by an officer. */
  approvals?: Pick<Approvals, 'approve'>;
  /** Number of reverse proxies in front of the gateway whose X-Forwarded-For is believed (never `true`). */
  trustProxyHops: number;
  /** Sees every response as it is sent (the tests check each against the OpenAPI description); unset in production. */
  observe?: ResponseObserver;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{8,64}$/;

/** The path of a request URL, its query string cut off. */
function withoutQuery(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

export function createApp(deps: HttpDeps): express.Express {
  const app = express();
  if (deps.observe) app.use(observeResponses(deps.observe));
  app.disable('x-powered-by');
  app.set('trust proxy', deps.trustProxyHops);
  app.set('etag', false);
  app.use(helmet());
  app.use(
    pinoHttp({
      logger: deps.logger,
      genReqId: (req, res) => {
        const given = req.headers['x-request-id'];
        const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
        res.setHeader('X-Request-Id', id);
        return id;
      },
      // Only method, path and status: never headers (tokens), bodies (personal data) or the query
      // string (audit searches carry references and subject ids there).
      serializers: {
        req: (req: { method: string; url: string; id: unknown }) => ({ id: req.id, method: req.method, url: withoutQuery(req.url) }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info'),
    }),
  );

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const checks = await deps.readiness();
    const ready = Object.values(checks).every((c) => c.ready);
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', checks });
  });
  if (deps.metrics) {
    const metrics = deps.metrics;
    app.get('/metrics', async (_req, res) => {
      const m = await metrics();
      res.type(m.contentType).send(m.body);
    });
  }
  app.get('/v1/keys/gateway', (_req, res) => {
    res.type('application/pgp-keys').send(deps.gatewayPublicKey);
  });
  if (deps.queues) registerDashboardPage(app);
  if (deps.governanceConsole) registerConsolePage(app);
  // Describing the API needs no credential: registered before the /v1 router authenticates the rest.
  registerOpenApiRoute(app);

  const v1 = express.Router();
  v1.use(authenticate(deps.clients, deps.audit, deps.rateLimits));
  routes(v1, deps);
  if (deps.accountability) registerAuditRoutes(v1, { ...deps.accountability, body: jsonBody(deps.bodyLimitBytes) });
  if (deps.hits) registerHitsRoutes(v1, { ...deps.hits, bodyLimitBytes: deps.bodyLimitBytes });
  if (deps.blind) registerBlindRoutes(v1, { ...deps.blind, bodyLimitBytes: deps.bodyLimitBytes });
  if (deps.preview) registerPreviewRoutes(v1, { preview: deps.preview, bodyLimitBytes: deps.bodyLimitBytes });
  if (deps.exchange) registerExchangeRoutes(v1, { exchange: deps.exchange, bodyLimitBytes: deps.bodyLimitBytes });
  if (deps.queues) registerDashboardRoutes(v1, { queues: deps.queues });
  if (deps.governanceConsole) registerConsoleRoutes(v1, { console: deps.governanceConsole, bodyLimitBytes: deps.bodyLimitBytes });
  app.use('/v1', v1);

  app.use((_req, _res, next) => next(new GatewayError('not_found', 'No such route')));
  app.use(errorHandler);
  return app;
}

function routes(r: Router, deps: HttpDeps): void {
  const body = jsonBody(deps.bodyLimitBytes);

  r.route('/dossiers')
    .post(requireRole('source'), body, async (req, res) => {
      const key = req.get('Idempotency-Key');
      const accepted = await deps.intake.submit(req.client!, req.body, key);
      res.status(202).location(`/v1/dossiers/${accepted.id}`).json({
        id: accepted.id,
        state: accepted.state,
        partners: accepted.partners,
        recipients: accepted.recipients,
        notSent: accepted.notSent,
        replayed: accepted.replayed,
        status: `/v1/dossiers/${accepted.id}`,
      });
    })
    .all(notAllowed('POST'));

  r.route('/dossiers/:id')
    .get(requireRole('source'), async (req, res) => {
      res.json(await deps.intake.status(req.client!, String(req.params.id)));
    })
    .all(notAllowed('GET'));

  const { approvals } = deps;
  if (approvals) {
    r.route('/dossiers/:id/approvals')
      .post(requireRole('source'), body, async (req, res) => {
        res.status(202).json(await approvals.approve(req.client!, String(req.params.id), req.body));
      })
      .all(notAllowed('POST'));
  }

  r.route('/packets')
    .get(requireRole('partner'), async (req, res) => {
      res.json({ packets: await deps.packets.list(req.client!, req.query as Record<string, unknown>) });
    })
    .all(notAllowed('GET'));

  r.route('/packets/:id')
    .get(requireRole('partner'), async (req, res) => {
      const message = await deps.packets.retrieve(req.client!, String(req.params.id));
      res.type('application/pgp-encrypted').setHeader('Cache-Control', 'no-store');
      res.send(message);
    })
    .all(notAllowed('GET'));

  r.route('/packets/:id/ack')
    .post(requireRole('partner'), async (req, res) => {
      res.json(await deps.packets.acknowledge(req.client!, String(req.params.id)));
    })
    .all(notAllowed('POST'));

  r.route('/partners')
    .get((_req, res) => {
      res.json({ partners: partnerToolkit(deps.policies(), new Date()) });
    })
    .all(notAllowed('GET'));
}
