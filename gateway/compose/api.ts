/**
 * The api role (CORDON_ROLE=api or all): the dossier queue this process enqueues on (handed to the
 * exchange for inbound dossiers), the read-only queue dashboard, intake, the express app with its
 * readiness checks (readiness.ts), and last the HTTP(S) server. The server is started last, so nothing
 * is accepted before everything behind it exists, and its close is pushed last, so on shutdown it stops
 * taking requests first, before the queues it enqueues on are closed. Returns the API's base URL.
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
import { PolicyPreview } from '../governance/preview.js';
import { readOnlyQueue, readQueues, type DashboardQueue } from '../queue/dashboard.js';
import { HIT_NOTICE_QUEUE } from '../queue/notify-queue.js';
import { DOSSIER_QUEUE, DossierQueue } from '../queue/queue.js';
import { RedisRateLimits } from '../store/ratelimit.js';
import { connectRedisForQueue } from '../store/redis.js';
import type { Wiring } from './context.js';
import { readinessChecks } from './readiness.js';
import type { Services } from './services.js';

export async function startApiRole(wiring: Wiring, services: Services, clients: () => ClientRegistry): Promise<string> {
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
  const intake = new Intake({ store, audit, queue, policies: () => live().set, keyring, retention, peerDeliveries: (id) => exchange.deliveries(id), answers: (id, now) => hitsModule.answers.summary(id, now),
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
    preview: new PolicyPreview<RecipientKey>({ live, audit, checkKey: (k, now) => checkRecipientKey(k, now) }),
    exchange: exchange,
    queues: () => readQueues(dashboardQueues),
    policies: () => live().set,
    gatewayPublicKey: gatewayKey.publicArmored,
    approvals: services.approvals,
    rateLimits: new RateLimits({ store: new RedisRateLimits(redis, services.keys), perClientPerMinute: config.rateLimitPerMinute, authFailuresPerMinute: config.authFailuresPerMinute }),
    trustProxyHops: config.trustProxyHops,
    metrics: async () => ({ contentType: metricsRegistry.contentType, body: await metricsRegistry.metrics() }),
    readiness: readinessChecks(services),
  });
  return listen(wiring, app);
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
