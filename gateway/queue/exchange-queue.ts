/**
 * The exchange queue: one job per envelope to send to a peer gateway (a dossier, the hits its
 * partners returned, or the recall of a dossier sent to it). Job data is ids only; what is sent stays
 * sealed in Redis until the job encrypts it. Job ids are the envelope ids, so queueing one twice is a
 * no-op.
 */
import { hostname } from 'node:os';
import { pid } from 'node:process';
import { Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { isGatewayError } from '../errors/index.js';

export const EXCHANGE_QUEUE = 'exchange';

export type ExchangeJob =
  | { type: 'dossier'; envelopeId: string }
  | { type: 'hits'; dossierId: string; envelopeId: string }
  | { type: 'recall'; dossierId: string; peer: string; envelopeId: string };

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
    this.queue = new Queue<ExchangeJob>(EXCHANGE_QUEUE, { connection, prefix: `${prefix}:bull` });
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

/** A failure marked permanent (a peer refusing the envelope) is not retried. */
export class PermanentExchangeError extends Error {}

export function startExchangeWorker(
  connection: ConnectionOptions,
  prefix: string,
  run: (job: ExchangeJob) => Promise<void>,
  onFinalFailure: (job: ExchangeJob, err: Error) => Promise<void>,
): Worker<ExchangeJob> {
  return new Worker<ExchangeJob>(
    EXCHANGE_QUEUE,
    async (job: Job<ExchangeJob>) => {
      try {
        await run(job.data);
      } catch (err) {
        const permanent = err instanceof PermanentExchangeError || (isGatewayError(err) && err.code === 'recipient_key_invalid');
        if (permanent || job.attemptsMade + 1 >= (job.opts.attempts ?? 1)) await onFinalFailure(job.data, err as Error).catch(() => undefined);
        if (permanent) throw new UnrecoverableError((err as Error).message);
        throw err;
      }
    },
    { connection, prefix: `${prefix}:bull`, concurrency: 4, name: `${hostname()}:${pid}` },
  );
}
