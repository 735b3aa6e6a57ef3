/**
 * The hit-notice queue: one job per (dossier, hit total) whose source registered a webhook (job data:
 * the dossier id only), delivered by the worker role (hits/notify.ts) and retried with backoff until
 * the receiver answers 2xx.
 */
import { Queue } from 'bullmq';
import { bullPrefix, startWorker, type ConnectionOptions, type QueueWorker } from './worker.js';

export const HIT_NOTICE_QUEUE = 'hit-notices';

export interface HitNoticeJob {
  dossierId: string;
}

const NOTICE_JOB_OPTIONS = {
  attempts: 10,
  backoff: { type: 'exponential', delay: 5000 },
  removeOnComplete: { age: 24 * 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
} as const;

export class HitNoticeQueue {
  readonly queue: Queue<HitNoticeJob>;

  constructor(connection: ConnectionOptions, prefix: string) {
    this.queue = new Queue<HitNoticeJob>(HIT_NOTICE_QUEUE, { connection, prefix: bullPrefix(prefix) });
  }

  /** One notice per (dossier, hit total): a repeated call for the same total is a no-op. */
  async enqueue(dossierId: string, total: number): Promise<void> {
    await this.queue.add('notice', { dossierId }, { ...NOTICE_JOB_OPTIONS, jobId: `${dossierId}-${total}` });
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}

/** Delivers notices: `deliver` throws (so the job is retried) unless the receiver took the notice. */
export function startHitNoticeWorker(connection: ConnectionOptions, prefix: string, deliver: (dossierId: string) => Promise<unknown>): QueueWorker<HitNoticeJob> {
  return startWorker<HitNoticeJob>(HIT_NOTICE_QUEUE, async (job) => deliver(job.data.dossierId), { connection, prefix, concurrency: 4 });
}
