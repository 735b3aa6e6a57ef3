/**
 * The operators' queue dashboard (`GET /v1/queues`): per BullMQ queue, how many jobs are in each state,
 * how long the oldest waiting one has waited, whether the queue is paused and how many workers are
 * connected. Counts and one timestamp only: no job id, job data, dossier id or failure reason is read
 * into the answer (the oldest job's id is used to read its `timestamp` field, and goes no further).
 */
import { Queue, type ConnectionOptions, type JobType } from 'bullmq';
import { bullPrefix } from './worker.js';

export interface DashboardQueue {
  name: string;
  queue: Queue;
}

export const COUNTED_STATES = ['waiting', 'active', 'delayed', 'completed', 'failed', 'paused'] as const;
export type CountedState = (typeof COUNTED_STATES)[number];

export interface QueueSummary {
  name: string;
  /** `paused`: jobs held by a pause (they would be `waiting` otherwise); `waiting`: jobs ready for a worker. */
  counts: Record<CountedState, number>;
  /** Seconds since the oldest job still waiting (in a paused queue too) was added; null when none waits. */
  oldestWaitingSeconds: number | null;
  paused: boolean;
  /** Workers connected to the queue; null when Redis does not list its clients (CLIENT LIST refused). */
  workers: number | null;
}

export interface QueuesSnapshot {
  at: string;
  queues: QueueSummary[];
}

/**
 * A handle for reading a queue the process does not otherwise open: it never writes the queue's meta
 * hash (`skipMetasUpdate`), so looking at a queue leaves no trace in Redis. Same `<prefix>:bull` as the
 * gateway's own queues and workers.
 */
export function readOnlyQueue(connection: ConnectionOptions, prefix: string, name: string): Queue {
  return new Queue(name, { connection, prefix: bullPrefix(prefix), skipMetasUpdate: true });
}

/**
 * Reads every queue. Fails within `timeoutMs` rather than hanging while Redis is down (the queue
 * connections queue commands offline): the message matches the error handler's "store unavailable"
 * test, so the client gets a 503.
 */
export async function readQueues(queues: readonly DashboardQueue[], timeoutMs = 3000, now: () => number = Date.now): Promise<QueuesSnapshot> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('Command timed out: queue dashboard')), timeoutMs);
  });
  try {
    const summaries = await Promise.race([Promise.all(queues.map((q) => summarise(q, now))), timeout]);
    return { at: new Date(now()).toISOString(), queues: summaries };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * BullMQ 5+ keeps the jobs of a paused queue in its wait list (the pause is a flag); older releases
 * moved them to a `paused` list, which BullMQ still drains on resume and still counts. Counted here as
 * before: `paused` is the jobs held by a pause, `waiting` the jobs ready for a worker.
 */
const LEGACY_PAUSED = 'paused' as JobType;

async function summarise({ name, queue }: DashboardQueue, now: () => number): Promise<QueueSummary> {
  const [raw, paused, oldest, workers] = await Promise.all([
    queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed', LEGACY_PAUSED),
    queue.isPaused(),
    oldestWaitingTimestamp(queue),
    workerCount(queue),
  ]);
  const n = (state: string) => Number(raw[state] ?? 0);
  const counts: Record<CountedState, number> = {
    waiting: paused ? 0 : n('waiting'),
    active: n('active'),
    delayed: n('delayed'),
    completed: n('completed'),
    failed: n('failed'),
    paused: (paused ? n('waiting') : 0) + n(LEGACY_PAUSED),
  };
  return {
    name,
    counts,
    oldestWaitingSeconds: oldest === undefined ? null : Math.max(0, Math.floor((now() - oldest) / 1000)),
    paused,
    workers,
  };
}

/**
 * The creation time of the oldest job waiting to run (paused or not): the tail of the wait list, or of
 * the legacy paused list. Only the job hash's `timestamp` field is read, never its data.
 */
async function oldestWaitingTimestamp(queue: Queue): Promise<number | undefined> {
  const client = await queue.getBackend().client;
  const stamps = await Promise.all(
    (['waiting', LEGACY_PAUSED] as const).map(async (state) => {
      const [id] = await queue.getRanges([state], 0, 0, true);
      if (id === undefined) return undefined;
      const ts = Number(await client.hget(queue.toKey(id), 'timestamp'));
      // Taken by a worker (and removed) between the two reads: nothing is waiting any more in that list.
      return Number.isFinite(ts) && ts > 0 ? ts : undefined;
    }),
  );
  const found = stamps.filter((t): t is number => t !== undefined);
  return found.length ? Math.min(...found) : undefined;
}

/**
 * Workers whose connections are named for this queue (CLIENT LIST). BullMQ answers a refused CLIENT
 * command (some managed Redis) with one placeholder entry that is no client: that is "unknown", not 1.
 */
async function workerCount(queue: Queue): Promise<number | null> {
  try {
    const workers = await queue.getWorkers();
    if (workers.some((w) => !('rawname' in w))) return null;
    return workers.length;
  } catch {
    return null;
  }
}
