/**
 * The dossier queue. One job per dossier (the worker fans out to partners in parallel); the job id is
 * the dossier id, so adding it twice is a no-op. Follow-ups after a match request run on it too. Job data is the id only: the dossier stays sealed in
 * the store, never plaintext in the queue.
 */
import { Queue, type Job } from 'bullmq';
import { bullPrefix, startWorker, type ConnectionOptions, type QueueWorker } from './worker.js';

export const DOSSIER_QUEUE = 'dossiers';

export interface FanoutJob {
  dossierId: string;
  /** A follow-up after a match request (gateway/fanout/followup.ts): the partner to follow up. */
  followUp?: string;
}

const JOB_OPTIONS = {
  attempts: 8,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: { age: 24 * 3600, count: 10_000 },
  removeOnFail: { age: 30 * 24 * 3600 },
} as const;

export class DossierQueue {
  readonly queue: Queue<FanoutJob>;

  constructor(connection: ConnectionOptions, prefix: string) {
    this.queue = new Queue<FanoutJob>(DOSSIER_QUEUE, { connection, prefix: bullPrefix(prefix) });
  }

  /** Fails within `timeoutMs` rather than hanging while Redis is down: the client then gets a 503. */
  async enqueue(dossierId: string, timeoutMs = 3000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('Command timed out: enqueue')), timeoutMs);
    });
    try {
      await Promise.race([this.queue.add('fanout', { dossierId }, { ...JOB_OPTIONS, jobId: dossierId }), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Queues a follow-up for (dossier, partner). Each call is a job of its own (answers and approvals
   * can come in several times); what it discloses is claimed exactly once by the job itself.
   */
  async enqueueFollowUp(dossierId: string, partner: string): Promise<void> {
    await this.queue.add('follow-up', { dossierId, followUp: partner }, JOB_OPTIONS);
  }

  async counts(): Promise<Record<string, number>> {
    return this.queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed');
  }

  /** Depth by state and the age of the oldest waiting job, for metrics. */
  async depth(): Promise<{ counts: Record<string, number>; oldestWaitingMs?: number }> {
    const [counts, oldest] = await Promise.all([this.counts(), this.queue.getJobs(['waiting'], 0, 0, true)]);
    const first = oldest[0];
    return { counts, oldestWaitingMs: first ? Date.now() - first.timestamp : undefined };
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}

/**
 * Runs fan-out jobs (queue/worker.ts: a permanent failure, e.g. an unreadable dossier, is not
 * retried). `onFinalFailure` runs before the last failure is reported, so the dossier shows `failed`
 * instead of staying `accepted` for ever. A worker that dies mid-job stops renewing its lock; another
 * worker takes the job over once the lock has lapsed. Packets already written are not written again.
 */
export function startDossierWorker(
  connection: ConnectionOptions,
  prefix: string,
  concurrency: number,
  lockMs: number,
  process: (job: Job<FanoutJob>) => Promise<void>,
  onFinalFailure: (job: Job<FanoutJob>, err: Error) => Promise<void>,
): QueueWorker<FanoutJob> {
  return startWorker<FanoutJob>(DOSSIER_QUEUE, process, { connection, prefix, concurrency, lockMs, onFinalFailure });
}
