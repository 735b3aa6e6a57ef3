/**
 * Composition root: the only module that wires everything. `CORDON_ROLE` selects api, worker or both
 * in one process; any number of each can share one Redis.
 */
import { unwatchFile, watchFile } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { pathToFileURL } from 'node:url';
import type { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import { gatewaySigner } from './audit/checkpoint.js';
import { AuditLog } from './audit/log.js';
import { AuditQuery } from './audit/query.js';
import { ClientRegistry, loadClientsFile } from './config/clients.js';
import { loadConfig, type Config } from './config/env.js';
import { checkRecipientKey, loadOrCreateGatewayKey, parseRecipientKey, type RecipientKey } from './crypto/openpgp.js';
import { deriveKey, loadOrCreateMasterSecret } from './crypto/seal.js';
import { GatewayError } from './errors/index.js';
import { Fanout } from './fanout/fanout.js';
import { Exchange } from './exchange/exchange.js';
import { PeerDirectory } from './exchange/peers.js';
import { EXCHANGE_QUEUE, ExchangeQueue, startExchangeWorker } from './exchange/queue.js';
import { serverTlsOptions } from './exchange/tls.js';
import { policyReloads, registerQueueGauges, registry as metricsRegistry, setPolicyRevision } from './metrics/metrics.js';
import { createApp } from './http/app.js';
import { HitsModule } from './hits/module.js';
import { HIT_NOTICE_QUEUE } from './hits/notify.js';
import { RateLimits } from './http/ratelimit.js';
import { Intake } from './intake/intake.js';
import { Mailbox } from './mailbox/mailbox.js';
import { Packets } from './mailbox/packets.js';
import { buildLiveSet, type LiveSet } from './policy/live.js';
import { loadPolicySet } from './policy/load.js';
import { PolicyPreview } from './policy/preview.js';
import { PolicyReloader } from './policy/reloader.js';
import { Recall } from './recall/recall.js';
import { Eraser } from './retention/erase.js';
import { RetentionSweeper } from './retention/sweeper.js';
import { readOnlyQueue, readQueues, type DashboardQueue } from './queue/dashboard.js';
import { DOSSIER_QUEUE, DossierQueue, startDossierWorker } from './queue/queue.js';
import { DossierStore } from './store/dossiers.js';
import { startPrivateRedis, type PrivateRedis } from './store/private-redis.js';
import { connectRedis, connectRedisForQueue, Keys, maxmemoryPolicy, whenReady } from './store/redis.js';

export interface RunningGateway {
  config: Config;
  /** Base URL of the API when the api role runs. */
  url?: string;
  redisUrl: string;
  close(): Promise<void>;
}

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'cordon' },
    redact: { paths: ['req.headers.authorization', '*.authorization', '*.token', '*.body'], censor: '[redacted]' },
  });
}

export async function startGateway(config: Config, logger: Logger = createLogger(config.logLevel)): Promise<RunningGateway> {
  const closers: Array<() => Promise<unknown>> = [];
  const close = async () => {
    for (const c of closers.reverse()) await c().catch((err) => logger.warn({ err: (err as Error).message }, 'shutdown step failed'));
  };
  try {
    let privateRedis: PrivateRedis | undefined;
    let redisUrl = config.redisUrl;
    if (!redisUrl && config.production) {
      throw new GatewayError('config_invalid', 'REDIS_URL must be set in production mode (a private redis-server is for development only)');
    }
    if (!redisUrl) {
      privateRedis = await startPrivateRedis(config.stateDir);
      closers.push(() => privateRedis!.stop());
      redisUrl = privateRedis.url;
      logger.info({ redis: redisUrl }, 'started a private redis-server (set REDIS_URL to use your own)');
    }

    const redis: Redis = connectRedis(redisUrl);
    closers.push(() => redis.quit());
    redis.on('error', (err) => logger.warn({ err: err.message }, 'redis connection problem'));
    await whenReady(redis).catch((err: Error) => {
      throw new GatewayError('store_unavailable', `cannot reach Redis at ${redactUrl(redisUrl!)}: ${err.message}`);
    });
    const policy = await maxmemoryPolicy(redis);
    if (policy !== 'noeviction') {
      const msg = `Redis maxmemory-policy is "${policy}": it may evict queued dossiers; set it to noeviction`;
      if (config.production) throw new GatewayError('config_invalid', msg);
      logger.warn(msg);
    }

    const master = await loadOrCreateMasterSecret(config.stateDir);
    const gatewayKey = await loadOrCreateGatewayKey(config.stateDir);
    const clientsFile = await loadClientsFile(config.clientsFile);
    if (clientsFile.sample && config.production) {
      throw new GatewayError('config_invalid', `${config.clientsFile} is the sample credentials file: set CORDON_CLIENTS to your own in production`);
    }
    let registry = new ClientRegistry(clientsFile);
    // New clients (`cordon clients add`) and rotated tokens take effect without a restart; a broken
    // file is refused and the last good registry stays in force.
    const reloadClients = async () => {
      try {
        const next = await loadClientsFile(config.clientsFile);
        if (next.sample && config.production) throw new GatewayError('config_invalid', 'sample credentials refused in production');
        registry = new ClientRegistry(next);
        logger.info({ clients: next.clients.length }, 'clients file reloaded');
      } catch (err) {
        logger.error({ code: (err as GatewayError).code, err: (err as Error).message }, 'clients file reload refused: keeping the previous credentials');
      }
    };
    watchFile(config.clientsFile, { interval: 2000 }, () => void reloadClients());
    closers.push(async () => unwatchFile(config.clientsFile));
    const onHup = () => void reloadClients();
    process.on('SIGHUP', onHup);
    closers.push(async () => process.off('SIGHUP', onHup));
    const set = await loadPolicySet(config.policyDir);
    // Swapped whole by the policy reloader below; every consumer reads it through a closure.
    let live: LiveSet<RecipientKey> = await buildLiveSet(set, (armored, fp) => parseRecipientKey(armored, fp));
    for (const [id, k] of live.keys) {
      if ('invalid' in k) logger.warn({ partner: id, problem: k.invalid }, 'partner key unusable: its deliveries will be blocked');
    }
    logger.info({ revision: set.revision, partners: set.partners.size, gatewayKey: gatewayKey.fingerprint }, 'policy set loaded');
    setPolicyRevision(set.revision);

    const keys = new Keys(config.redisPrefix);
    const store = new DossierStore(redis, keys);
    const mailbox = new Mailbox(redis, keys);
    const audit = new AuditLog(redis, keys, {
      indexKey: deriveKey(master, 'audit-index'),
      signer: gatewaySigner(gatewayKey),
      stateDir: config.stateDir,
      onBackgroundError: (err) => logger.error({ err: err.message }, 'audit checkpoint or anchor failed'),
    });
    // A trail cut short or replaced under us: refuse to start. A wiped one: a new trail that says so.
    const restarted = await audit.checkAnchor();
    if (restarted) logger.error(restarted);
    await audit.append({ kind: 'alteration', action: 'policy.loaded', policyRevision: set.revision, reason: 'start-up' });
    await audit.checkpoint('start-up');
    // A checkpoint on a clean stop, so the trail ends signed; pushed early, it runs after the api and
    // workers have stopped and before Redis is closed.
    closers.push(() => audit.checkpoint('shutdown'));
    const stopCheckpoints = audit.startCheckpointTimer(10 * 60_000);
    closers.push(async () => stopCheckpoints());
    // Retention: erasures are scheduled by intake and the mailbox, and swept (audited) by the workers.
    const retention = new RetentionSweeper(redis, keys, new Eraser(redis, keys, audit), {
      onError: (err, member) => logger.error({ err: err.message, item: member.split('|')[0] }, 'retention erasure failed; retried on the next sweep'),
    });
    // Hot reload on a change in the policy directory or SIGHUP; a set that fails validation is refused
    // and the last good one stays live (policy/reloader.ts).
    const policyReloader = new PolicyReloader<RecipientKey>({
      dir: config.policyDir,
      current: () => live,
      apply: (next) => {
        live = next;
      },
      parseKey: (armored, fp) => parseRecipientKey(armored, fp),
      audit,
      logger,
      onOutcome: (o) => {
        if (o.status !== 'unchanged') policyReloads.inc({ outcome: o.status });
        if (o.status === 'loaded') setPolicyRevision(o.revision);
      },
    });
    policyReloader.watch();
    closers.push(async () => policyReloader.close());
    const onPolicyHup = () => void policyReloader.reload('SIGHUP');
    process.on('SIGHUP', onPolicyHup);
    closers.push(async () => process.off('SIGHUP', onPolicyHup));
    // Cross-border exchange with peer forces' gateways (gateway/exchange): hits on a peer's dossier go back to it.
    let dossierQueue: DossierQueue | undefined;
    const hitsModule = new HitsModule({
      redis, redisUrl, keys, store, mailbox, audit, live: () => live, gatewayKey, master, logger,
      // Called only when hits arrive over HTTP, after `exchange` below exists.
      onNewHits: (dossierId, source, total) => exchange.onNewHits(dossierId, source, total),
    });
    closers.push(() => hitsModule.close());
    let exchangeQueue: ExchangeQueue | undefined;
    const exchangeRetry = { attempts: config.exchangeAttempts, backoffMs: config.exchangeBackoffMs };
    const peerDirectory = new PeerDirectory(() => live, (armored, fp) => parseRecipientKey(armored, fp));
    const exchange: Exchange = new Exchange({
      redis, keys, store, audit, live: () => live, gatewayKey, master, hitStore: hitsModule.hitStore,
      peers: peerDirectory,
      stateDir: config.stateDir,
      forceId: config.forceId,
      queue: () => {
        if (!exchangeQueue) {
          const conn = connectRedisForQueue(redisUrl!);
          const q = (exchangeQueue = new ExchangeQueue(conn, config.redisPrefix, exchangeRetry));
          closers.push(() => conn.quit(), () => q.close());
        }
        return exchangeQueue;
      },
      enqueueDossier: (id) => (dossierQueue ? dossierQueue.enqueue(id) : Promise.reject(new GatewayError('internal', 'no dossier queue in this role'))),
      // A peer's recall envelope recalls, here, the dossier made from its dossier envelope.
      recall: (id, actor, reason) => recall.recallFromPeer(id, actor, reason),
      retention,
    });
    // A recall is passed on to the peers the dossier was sent to (exchange.recallPeers).
    const recall = new Recall({
      redis, keys, store, audit, eraser: new Eraser(redis, keys, audit), live: () => live, gatewayKey, master,
      onRecalled: (r) => exchange.recallPeers(r.dossierId, r.source, { reason: r.reason, issuedAt: r.issuedAt }),
    });

    const result: RunningGateway = { config, redisUrl, close };

    if (config.role === 'all' || config.role === 'worker') {
      const fanout = new Fanout({
        store,
        mailbox,
        audit,
        live: () => live,
        gatewayKey,
        master,
        packetTtlDays: config.packetTtlDays,
        // Link items (sealed) outlive the dossier, so bundles can still connect subjects later.
        onOpened: async (id, source, dossier) => {
          await Promise.all([hitsModule.indexer.index(id, source, dossier), exchange.prepare(id, source, dossier)]);
        },
      });
      retention.start(30_000);
      closers.push(() => retention.stop());
      const conn = connectRedisForQueue(redisUrl);
      const worker: Worker = startDossierWorker(conn, config.redisPrefix, config.workerConcurrency, config.jobLockMs, async (job) => {
        await fanout.process(job.data.dossierId);
      }, async (job, err) => {
        await store.markFailed(job.data.dossierId, (err as GatewayError).code ?? 'internal');
      });
      worker.on('failed', (job, err) => {
        logger.error({ job: job?.id, attempts: job?.attemptsMade, code: (err as GatewayError).code, err: err.message }, 'fan-out job failed');
      });
      worker.on('error', (err) => logger.warn({ err: err.message }, 'worker connection problem'));
      closers.push(() => conn.quit());
      closers.push(() => worker.close());
      hitsModule.startNoticeWorker();
      const exchangeConn = connectRedisForQueue(redisUrl);
      const exchangeWorker = startExchangeWorker(exchangeConn, config.redisPrefix, (job) => exchange.run(job), (job, err) => exchange.failed(job, err));
      exchangeWorker.on('failed', (job, err) => logger.warn({ job: job?.id, attempts: job?.attemptsMade, err: err.message }, 'exchange job failed'));
      exchangeWorker.on('error', (err) => logger.warn({ err: err.message }, 'exchange worker connection problem'));
      closers.push(() => exchangeConn.quit());
      closers.push(() => exchangeWorker.close());
      logger.info({ concurrency: config.workerConcurrency }, 'worker started');
    }

    if (config.role === 'all' || config.role === 'api') {
      const queueConn = connectRedisForQueue(redisUrl);
      closers.push(() => queueConn.quit());
      const queue = new DossierQueue(queueConn, config.redisPrefix);
      dossierQueue = queue;
      closers.push(() => queue.close());
      registerQueueGauges(() => queue.depth());
      // The queue dashboard (GET /v1/queues): the dossier queue is this process's own; the exchange and
      // hit-notice queues, used by every worker, are read through read-only handles on the same connection.
      const dashboardQueues: DashboardQueue[] = [
        { name: DOSSIER_QUEUE, queue: queue.queue },
        ...[EXCHANGE_QUEUE, HIT_NOTICE_QUEUE].map((name) => ({ name, queue: readOnlyQueue(queueConn, config.redisPrefix, name) })),
      ];
      closers.push(() => Promise.all(dashboardQueues.slice(1).map((q) => q.queue.close())));
      const intake = new Intake({ store, audit, queue, policies: () => live.set, sealKey: deriveKey(master, 'seal'), retention, peerDeliveries: (id) => exchange.deliveries(id) });
      const app = createApp({
        logger,
        bodyLimitBytes: config.bodyLimitBytes,
        clients: () => registry,
        audit,
        intake,
        packets: new Packets(mailbox, audit),
        accountability: {
          audit,
          query: new AuditQuery(redis, audit, deriveKey(master, 'audit-index'), () => [...live.set.sources.keys()]),
          recall,
        },
        hits: hitsModule.http(),
        preview: new PolicyPreview<RecipientKey>({ live: () => live, audit, checkKey: (k, now) => checkRecipientKey(k, now) }),
        exchange: exchange,
        queues: () => readQueues(dashboardQueues),
        policies: () => live.set,
        gatewayPublicKey: gatewayKey.publicArmored,
        rateLimits: new RateLimits({ redis, prefix: config.redisPrefix, perClientPerMinute: config.rateLimitPerMinute, authFailuresPerMinute: 30 }),
        trustProxyHops: config.trustProxyHops,
        metrics: async () => ({ contentType: metricsRegistry.contentType, body: await metricsRegistry.metrics() }),
        readiness: async () => {
          const unusable = [...live.keys].filter(([, k]) => 'invalid' in k).map(([id]) => id);
          const unusablePeers = (await peerDirectory.unusableKeys()).map((k) => k.peer);
          const redisCheck = await redis.ping().then(
            () => ({ ready: true, detail: 'ok' }),
            (err: Error) => ({ ready: false, detail: `unreachable: ${err.message}` }),
          );
          return {
            redis: redisCheck,
            // The gateway refuses work it cannot audit, so an unwritable trail takes it out of service.
            audit: await audit.health(),
            // A refused reload leaves the last good set serving: reported, not taken out of service.
            policies: live.set.partners.size
              ? { ready: true, detail: policyReloader.status() ?? `revision ${live.set.revision}, ${live.set.partners.size} partners` }
              : { ready: false, detail: 'no partner policies loaded' },
            // Unusable partner keys block those deliveries only; the gateway still serves the others.
            keys: unusable.length ? { ready: true, detail: `deliveries blocked for unusable partner keys: ${unusable.join(', ')}` } : { ready: true, detail: 'ok' },
            // Likewise peers: nothing is exchanged with a peer whose pinned key is unusable; the rest is served.
            peerKeys: unusablePeers.length ? { ready: true, detail: `exchange blocked for unusable peer keys: ${unusablePeers.join(', ')}` } : { ready: true, detail: 'ok' },
          };
        },
      });
      // Slow clients (slowloris) are cut off: headers and whole requests have deadlines, checked often.
      const serverOptions = {
        headersTimeout: config.headersTimeoutMs,
        requestTimeout: config.requestTimeoutMs,
        connectionsCheckingInterval: Math.min(1000, Math.floor(config.headersTimeoutMs / 2)),
        keepAliveTimeout: 5_000,
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
      result.url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
      logger.info({ url: result.url }, 'api listening');
    }
    return result;
  } catch (err) {
    await close();
    throw err;
  }
}

function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

async function run(): Promise<void> {
  let config: Config;
  const logger = createLogger(process.env.LOG_LEVEL || 'info');
  try {
    config = loadConfig();
    const gw = await startGateway(config, logger);
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down: finishing in-flight work');
      void gw.close().then(() => process.exit(0));
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  } catch (err) {
    if (err instanceof GatewayError) {
      logger.fatal({ code: err.code, details: err.details }, err.message);
      process.stderr.write(`cordon: ${err.message}\n${(err.details ?? []).map((d) => `  - ${d.path ? d.path + ': ' : ''}${d.message}`).join('\n')}\n`);
    } else {
      logger.fatal({ err: (err as Error).message, stack: (err as Error).stack }, 'start-up failed');
    }
    process.exit(1);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void run();
