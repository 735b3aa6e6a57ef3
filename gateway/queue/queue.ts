/**
 * The dossier queue. One job per dossier (the worker fans out to partners in parallel); the job id is
 * the dossier id, so adding it twice is a no-op. Job data is the id only: the dossier stays sealed in
 * the store, never plaintext in the queue.
 */
import { hostname } from 'node:os';
import { pid } from 'node:process';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { isGatewayError, type ErrorCode } from '../errors/index.js';
import type { Redis } from 'ioredis';

export const DOSSIER_QUEUE = 'dossiers';

export interface FanoutJob {
  dossierId: string;
}

export const JOB_OPTIONS = {
  attempts: 8,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: { age: 24 * 3600, count: 10_000 },
  removeOnFail: { age: 30 * 24 * 3600 },
} as const;

export class DossierQueue {
  readonly queue: Queue<FanoutJob>;

  constructor(connection: Redis, prefix: string) {
    this.queue = new Queue<FanoutJob>(DOSSIER_QUEUE, { connection, prefix: `${prefix}:bull` });
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

/** Failures no retry can mend: the job fails at once instead of blocking a worker for hours of backoff. */
const PERMANENT: ReadonlySet<ErrorCode> = new Set(['dossier_unreadable']);

/**
 * Runs fan-out jobs. `onFinalFailure` runs before the last failure is reported (bounded retries spent,
 * or a permanent failure), so the dossier shows `failed` instead of staying `accepted` for ever.
 */
export function startDossierWorker(
  connection: Redis,
  prefix: string,
  concurrency: number,
  lockMs: number,
  process: (job: Job<FanoutJob>) => Promise<void>,
  onFinalFailure: (job: Job<FanoutJob>, err: Error) => Promise<void>,
): Worker<FanoutJob> {
  const run = async (job: Job<FanoutJob>) => {
    try {
      await process(job);
    } catch (err) {
      const permanent = isGatewayError(err) && PERMANENT.has(err.code);
      if (permanent || job.attemptsMade + 1 >= (job.opts.attempts ?? 1)) {
        await onFinalFailure(job, err as Error).catch(() => undefined);
      }
      if (permanent) throw new UnrecoverableError(`${(err as Error).message}`);
      throw err;
    }
  };
  return new Worker<FanoutJob>(DOSSIER_QUEUE, run, {
    connection,
    prefix: `${prefix}:bull`,
    concurrency,
    // Recorded on each job it takes (`processedBy`), so an operator can tell which process ran what.
    name: `${hostname()}:${pid}`,
    // A worker that dies mid-job stops renewing its lock; another worker takes the job over once the
    // lock has lapsed and the stalled check has run. Packets already written are not written again.
    lockDuration: lockMs,
    stalledInterval: Math.max(500, Math.floor(lockMs / 2)),
    maxStalledCount: 3,
  });
}
