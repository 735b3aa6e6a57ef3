/**
 * The exchange queue: one job per envelope to send to a peer gateway (a dossier or match request, the
 * hits its partners returned, the recall of a dossier sent to it, or this force's answers to its match request). Job data is ids only; what is sent stays
 * sealed in Redis until the job encrypts it. Job ids are the envelope ids, so queueing one twice is a
 * no-op.
 */
import { Queue, type ConnectionOptions } from 'bullmq';
import { bullPrefix, PermanentJobError, startWorker, type QueueWorker } from './worker.js';

export const EXCHANGE_QUEUE = 'exchange';

export type ExchangeJob =
  | { type: 'dossier'; envelopeId: string }
  | { type: 'hits'; dossierId: string; envelopeId: string }
  | { type: 'recall'; dossierId: string; peer: string; envelopeId: string }
  | { type: 'answers'; matchId: string; envelopeId: string };

/**
 * What became of a job taken off the queue (`withdraw`): `removed` (it had not started, and never
 * will), `absent` (no such job) or `finished` (completed or failed: it will not run again), or `active`
 * (a worker holds it right now: it was left alone).
 */
export type Withdrawal = 'removed' | 'absent' | 'finished' | 'active';

export interface ExchangeRetry {
  attempts: number;
  backoffMs: number;
}

export class ExchangeQueue {
  readonly queue: Queue<ExchangeJob>;

  constructor(connection: ConnectionOptions, prefix: string, private readonly retry: ExchangeRetry) {
    this.queue = new Queue<ExchangeJob>(EXCHANGE_QUEUE, { connection, prefix: bullPrefix(prefix) });
  }

  async enqueue(job: ExchangeJob): Promise<void> {
    await this.queue.add(job.type, job, {
      jobId: job.envelopeId,
      attempts: this.retry.attempts,
      backoff: { type: 'exponential', delay: this.retry.backoffMs },
      removeOnComplete: { age: 24 * 3600, count: 10_000 },
      removeOnFail: { age: 30 * 24 * 3600 },
    });
  }

  /** Takes a job that has not started (waiting, delayed) off the queue; a job a worker holds is left alone. */
  async withdraw(jobId: string): Promise<Withdrawal> {
    const job = await this.queue.getJob(jobId);
    if (!job) return 'absent';
    const state = await job.getState();
    if (state === 'completed' || state === 'failed') return 'finished';
    if (state === 'active') return 'active';
    // 0: locked by a worker meanwhile.
    return (await this.queue.remove(jobId)) === 1 ? 'removed' : 'active';
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}

/** A failure marked permanent (a peer refusing the envelope) is not retried (queue/worker.ts's one rule). */
export class PermanentExchangeError extends PermanentJobError {}

export function startExchangeWorker(
  connection: ConnectionOptions,
  prefix: string,
  run: (job: ExchangeJob) => Promise<void>,
  onFinalFailure: (job: ExchangeJob, err: Error) => Promise<void>,
): QueueWorker<ExchangeJob> {
  return startWorker<ExchangeJob>(EXCHANGE_QUEUE, (job) => run(job.data), { connection, prefix, concurrency: 4, onFinalFailure: (job, err) => onFinalFailure(job.data, err) });
}
