/**
 * The api role (CORDON_ROLE=api or all): the dossier queue this process enqueues on (handed to the
 * exchange for inbound dossiers), the read-only queue dashboard, intake, the express app with its
 * readiness checks (readiness.ts), and last the HTTP(S) server. The server is started last, so nothing
 * is accepted before everything behind it exists, and its close is pushed last, so on shutdown it stops
 * taking requests first, before the queues it enqueues on are closed. `CORDON_METRICS_PORT` moves
 * /metrics off the API port onto a listener of its own (on `CORDON_METRICS_HOST`, loopback by default),
 * so the operational counters can be kept on an internal network. Returns the base URLs.
 */
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { AuditQuery } from '../audit/query.js';
import type { ClientRegistry } from '../config/clients.js';
import { checkRecipientKey, type RecipientKey } from '../crypto/openpgp.js';
import { EXCHANGE_QUEUE } from '../queue/exchange-queue.js';
import { serverTlsOptions } from '../exchange/tls.js';
import { createApp } from '../http/app.js';
import { RateLimits } from '../http/ratelimit.js';
import { Intake } from '../intake/intake.js';
import { Packets } from '../mailbox/packets.js';
import { registerQueueGauges, registry as metricsRegistry } from '../metrics/metrics.js';
import { GovernanceConsole } from '../governance/console.js';
import { PolicyPreview } from '../governance/preview.js';
import { readOnlyQueue, readQueues, type DashboardQueue } from '../queue/dashboard.js';
import { HIT_NOTICE_QUEUE } from '../queue/notify-queue.js';
import { DOSSIER_QUEUE, DossierQueue } from '../queue/queue.js';
import { RedisRateLimits } from '../store/ratelimit.js';
import { connectRedisForQueue } from '../store/redis.js';
import type { Wiring } from './context.js';
import { readinessChecks } from './readiness.js';
import type { Services } from './services.js';
import { MAX_SETUP_BYTES } from '../blind/matching.js';

export async function startApiRole(wiring: Wiring, services: Services, clients: () => ClientRegistry): Promise<{ url: string; metricsUrl?: string }> {
  const { config, logger, closers } = wiring;
  const { redis, redisUrl, store, mailbox, audit, live, keyring, gatewayKey, retention, hitsModule, exchange, recall } = services;
  const queueConn = connectRedisForQueue(redisUrl);
  closers.push(() => queueConn.quit());
  const queue = new DossierQueue(queueConn, config.redisPrefix);
  services.useDossierQueue(queue);
  closers.push(() => queue.close());
  registerQueueGauges(() => queue.depth());
  // The queue dashboard (GET /v1/queues): the dossier queue is this process's own; the exchange and
  // hit-notice queues, used by every worker, are read through read-only handles on the same connection.
  const dashboardQueues: DashboardQueue[] = [
    { name: DOSSIER_QUEUE, queue: queue.queue },
    ...[EXCHANGE_QUEUE, HIT_NOTICE_QUEUE].map((name) => ({ name, queue: readOnlyQueue(queueConn, config.redisPrefix, name) })),
  ];
  closers.push(() => Promise.all(dashboardQueues.slice(1).map((q) => q.queue.close())));
  const intake = new Intake({ store, audit, queue, policies: () => live().set, keyring, retention, peerDeliveries: (id) => exchange.status(id), answers: (id, now) => hitsModule.answers.summary(id, now),
    stages: (id, deliveries) => services.followUps.stages(id, deliveries),
  });
  const app = createApp({
    logger,
    bodyLimitBytes: config.bodyLimitBytes,
    clients,
    audit,
    intake,
    packets: new Packets(mailbox, audit),
    accountability: {
      audit,
      query: new AuditQuery(audit, keyring.auditIndex, () => [...live().set.sources.keys()]),
      recall,
    },
    hits: hitsModule.http(),
    blind: { blind: services.blind, setupLimitBytes: MAX_SETUP_BYTES },
    preview: new PolicyPreview<RecipientKey>({ live, audit, checkKey: (k, now) => checkRecipientKey(k, now) }),
    exchange: exchange,
    queues: () => readQueues(dashboardQueues),
    governanceConsole: new GovernanceConsole({ policies: () => live().set, history: services.policyHistory, rates: () => hitsModule.answers.rates(), audit, gatewayKeyFingerprint: gatewayKey.fingerprint }),
    policies: () => live().set,
    gatewayPublicKey: gatewayKey.publicArmored,
    approvals: services.approvals,
    rateLimits: new RateLimits({ store: new RedisRateLimits(redis, services.keys), perClientPerMinute: config.rateLimitPerMinute, authFailuresPerMinute: config.authFailuresPerMinute }),
    trustProxyHops: config.trustProxyHops,
    // On a separate listener (below) when CORDON_METRICS_PORT is set: then the API port has no /metrics.
    ...(config.metricsPort === undefined ? { metrics } : {}),
    readiness: readinessChecks(services),
    ...(wiring.observeResponses ? { observe: wiring.observeResponses } : {}),
  });
  const metricsUrl = config.metricsPort === undefined ? undefined : await listenMetrics(wiring, config.metricsPort, config.metricsHost ?? '127.0.0.1');
  const url = await listen(wiring, app);
  return { url, ...(metricsUrl ? { metricsUrl } : {}) };
}

const metrics = async () => ({ contentType: metricsRegistry.contentType, body: await metricsRegistry.metrics() });

/** The /metrics-only listener: GET /metrics, 404 for anything else; no API, no credentials. */
async function listenMetrics({ logger, closers }: Wiring, port: number, host: string): Promise<string> {
  const server = createServer((req, res) => {
    const route = (req.url ?? '').split('?')[0];
    if (route !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"code":"not_found","message":"Only GET /metrics is served here"}}');
      return;
    }
    metrics().then(
      (m) => res.writeHead(200, { 'content-type': m.contentType }).end(req.method === 'HEAD' ? undefined : m.body),
      (err: unknown) => {
        logger.error({ err: (err as Error).message }, 'metrics failed');
        res.writeHead(500).end();
      },
    );
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const addr = server.address();
  const bound = typeof addr === 'object' && addr ? addr.port : port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${bound}`;
  logger.info({ url }, 'metrics listening');
  return url;
}

async function listen({ config, logger, closers }: Wiring, app: ReturnType<typeof createApp>): Promise<string> {
  // Slow clients (slowloris) are cut off: headers and whole requests have deadlines, checked often.
  const serverOptions = {
    headersTimeout: config.headersTimeoutMs,
    requestTimeout: config.requestTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, Math.floor(config.headersTimeoutMs / 2)),
    keepAliveTimeout: config.keepAliveTimeoutMs,
  };
  // CORDON_TLS_CERT/KEY (read and checked in config/env.ts): HTTPS, asking clients for certificates
  // (peers' are pinned: exchange/tls.ts).
  const tls = config.tls ? serverTlsOptions(config.tls) : undefined;
  const server: Server = tls ? (createHttpsServer({ ...serverOptions, ...tls }, app) as unknown as Server) : createServer(serverOptions, app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, '0.0.0.0', () => resolve());
  });
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  logger.info({ url }, 'api listening');
  return url;
}
