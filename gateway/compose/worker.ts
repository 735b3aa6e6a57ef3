/**
 * The worker role (CORDON_ROLE=worker or all): everything that consumes work. Retention sweeps start
 * first, then the dossier fan-out worker, the hit-notice worker (closed with the hits module) and the
 * exchange worker, each BullMQ worker on its own Redis connection. For each, the connection's quit is pushed before the worker's
 * close, so on shutdown the worker finishes its in-flight job before its connection goes away. Any
 * number of worker processes can share one Redis: BullMQ hands each job to one of them.
 */
import type { GatewayError } from '../errors/index.js';
import { startExchangeWorker } from '../queue/exchange-queue.js';
import { Fanout } from '../fanout/fanout.js';
import { startDossierWorker } from '../queue/queue.js';
import { connectRedisForQueue } from '../store/redis.js';
import type { Wiring } from './context.js';
import type { Services } from './services.js';

export function startWorkerRole({ config, logger, closers }: Wiring, services: Services): void {
  const { redisUrl, store, mailbox, audit, live, gatewayKey, keyring, retention, hitsModule, exchange, followUps } = services;
  const fanout = new Fanout({
    store,
    mailbox,
    audit,
    live,
    gatewayKey,
    keyring,
    packetTtlDays: config.packetTtlDays,
    // Link items (sealed) outlive the dossier, so bundles can still connect subjects later.
    onOpened: async (id, source, dossier) => {
      await Promise.all([hitsModule.indexer.index(id, source, dossier), exchange.prepare(id, source, dossier)]);
    },
  });
  retention.start(config.retentionSweepIntervalMs);
  closers.push(() => retention.stop());
  const conn = connectRedisForQueue(redisUrl);
  const worker = startDossierWorker(conn, config.redisPrefix, config.workerConcurrency, config.jobLockMs, async (job) => {
    if (job.data.followUp) return followUps.run(job.data.dossierId, job.data.followUp);
    const kept = await fanout.process(job.data.dossierId);
    // Answers that came in while the fan-out was still running may have settled every match request already.
    if (kept) await followUps.eraseIfSettled(job.data.dossierId, kept);
  }, async (job, err) => {
    // A follow-up that fails leaves the dossier as it was (its match request still stands).
    if (!job.data.followUp) await store.markFailed(job.data.dossierId, (err as GatewayError).code ?? 'internal');
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
