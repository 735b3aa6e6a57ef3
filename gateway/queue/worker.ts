/**
 * One way to run a queue's jobs, for every queue: a BullMQ worker on the gateway's `<prefix>:bull`
 * keys, named after the process (`processedBy` on each job says which one ran it), with one rule for
 * failures. A failure no retry can mend (`isPermanent`) fails the job at once instead of blocking a
 * worker through hours of backoff; `onFinalFailure` runs before the last failure is reported (bounded
 * retries spent, or a permanent failure), so what the job was for can show `failed` rather than wait
 * for ever. Only queue/ imports bullmq.
 */
import { hostname } from 'node:os';
import { pid } from 'node:process';
import { UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { isGatewayError, type ErrorCode } from '../errors/index.js';

export type { ConnectionOptions } from 'bullmq';

/** A running worker, as the composition root holds it (to listen to its events and close it). */
export type QueueWorker<T = unknown> = Worker<T>;

/** Thrown by a job to say it must not be retried (e.g. a peer refused the envelope). */
export class PermanentJobError extends Error {}

/**
 * Gateway errors no retry can mend: a dossier that cannot be unsealed, a record that fails its
 * integrity check, a recipient key that is not valid (it only changes with a policy reload, which
 * queues the work afresh).
 */
const PERMANENT_CODES: ReadonlySet<ErrorCode> = new Set(['dossier_unreadable', 'record_tampered', 'recipient_key_invalid']);

/** The one permanent-failure rule of every queue. */
export function isPermanent(err: unknown): boolean {
  return err instanceof PermanentJobError || (isGatewayError(err) && PERMANENT_CODES.has(err.code));
}

export function bullPrefix(prefix: string): string {
  return `${prefix}:bull`;
}

export interface WorkerOptions<T> {
  connection: ConnectionOptions;
  /** The gateway's key prefix. */
  prefix: string;
  concurrency: number;
  /**
   * How long a job's lock lasts without renewal: a worker that dies mid-job stops renewing it, and
   * another takes the job over once it has lapsed and the stalled check has run. BullMQ's default when absent.
   */
  lockMs?: number;
  onFinalFailure?: (job: Job<T>, err: Error) => Promise<void>;
}

export function startWorker<T>(queue: string, run: (job: Job<T>) => Promise<unknown>, o: WorkerOptions<T>): QueueWorker<T> {
  const process = async (job: Job<T>) => {
    try {
      await run(job);
    } catch (err) {
      const permanent = isPermanent(err);
      if (o.onFinalFailure && (permanent || job.attemptsMade + 1 >= (job.opts.attempts ?? 1))) {
        await o.onFinalFailure(job, err as Error).catch(() => undefined);
      }
      if (permanent) throw new UnrecoverableError((err as Error).message);
      throw err;
    }
  };
  return new Worker<T>(queue, process, {
    connection: o.connection,
    prefix: bullPrefix(o.prefix),
    concurrency: o.concurrency,
    name: `${hostname()}:${pid}`,
    ...(o.lockMs !== undefined ? { lockDuration: o.lockMs, stalledInterval: Math.max(500, Math.floor(o.lockMs / 2)), maxStalledCount: 3 } : {}),
  });
}
