/**
 * The HTTP load generator, run in a worker thread (see loadgen.ts) so that the client's own work does
 * not share an event loop with the server it measures. Loopback only. Two modes:
 *  - closed loop: `concurrency` requests in flight, each followed at once by the next, until `count`
 *    requests or `durationMs` have passed → completions per second;
 *  - open loop: requests started at a fixed `rate` whatever the answers do; each latency is measured from
 *    the moment the request was due (not when it was actually sent), so a stalled server cannot hide
 *    its queueing (no coordinated omission).
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { parentPort } from 'node:worker_threads';

export interface LoadRequest {
  mode: 'closed' | 'open';
  url: string;
  headers: Record<string, string>;
  bodies: string[];
  /** closed: requests in flight. */
  concurrency?: number;
  /** open: requests per second. */
  rate?: number;
  count?: number;
  durationMs?: number;
  /** Collect the `id` of every 2xx JSON answer. */
  collectIds?: boolean;
}

export interface LoadResult {
  sent: number;
  completed: number;
  /** Answers by status code; 0 counts transport errors. */
  statuses: Record<number, number>;
  elapsedMs: number;
  /** Per completed request, milliseconds. */
  latencies: number[];
  ids: string[];
  /** With `collectIds`: when each id's answer arrived (epoch ms, sub-ms precision), in the order of `ids`. */
  acceptedAt: number[];
  firstError?: string;
}

function run(req: LoadRequest): Promise<LoadResult> {
  const target = new URL(req.url);
  if (target.hostname !== '127.0.0.1' && target.hostname !== 'localhost') throw new Error('the load generator only talks to loopback');
  const agent = new http.Agent({ keepAlive: true, maxSockets: req.mode === 'closed' ? req.concurrency ?? 1 : 512 });
  const bodies = req.bodies.map((b) => Buffer.from(b, 'utf8'));
  const result: LoadResult = { sent: 0, completed: 0, statuses: {}, elapsedMs: 0, latencies: [], ids: [], acceptedAt: [] };
  const maxCount = req.count ?? Infinity;
  const t0 = performance.now();
  const deadline = req.durationMs === undefined ? Infinity : t0 + req.durationMs;

  const send = (dueAt: number): Promise<void> =>
    new Promise((resolve) => {
      const body = bodies[result.sent++ % bodies.length]!;
      const r = http.request(
        { agent, host: target.hostname, port: target.port, path: target.pathname, method: 'POST', headers: { ...req.headers, 'content-length': body.length } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const doneAt = performance.now();
            const status = res.statusCode ?? 0;
            result.statuses[status] = (result.statuses[status] ?? 0) + 1;
            result.completed++;
            result.latencies.push(doneAt - dueAt);
            if (status >= 300 && result.firstError === undefined) result.firstError = `${status} ${Buffer.concat(chunks).toString('utf8').slice(0, 300)}`;
            if (req.collectIds && status < 300) {
              try {
                const id = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id?: unknown }).id;
                if (typeof id === 'string') {
                  result.ids.push(id);
                  result.acceptedAt.push(performance.timeOrigin + doneAt);
                }
              } catch {
                // not JSON: counted by status only
              }
            }
            resolve();
          });
        },
      );
      r.on('error', (err) => {
        result.statuses[0] = (result.statuses[0] ?? 0) + 1;
        result.firstError ??= err.message;
        resolve();
      });
      r.end(body);
    });

  const finish = () => {
    result.elapsedMs = performance.now() - t0;
    agent.destroy();
    return result;
  };

  if (req.mode === 'closed') {
    const lanes = Array.from({ length: req.concurrency ?? 1 }, async () => {
      while (result.sent < maxCount && performance.now() < deadline) await send(performance.now());
    });
    return Promise.all(lanes).then(finish);
  }

  const interval = 1000 / (req.rate ?? 1);
  const inflight = new Set<Promise<void>>();
  return new Promise((resolve) => {
    let due = 0;
    const tick = () => {
      const t = performance.now();
      // Every request whose time has come goes out now, stamped with the time it was due.
      while (result.sent < maxCount && t0 + due * interval <= Math.min(t, deadline)) {
        const p = send(t0 + due * interval);
        inflight.add(p);
        void p.then(() => inflight.delete(p));
        due++;
      }
      if (result.sent >= maxCount || t >= deadline) {
        void Promise.all(inflight).then(() => resolve(finish()));
        return;
      }
      setTimeout(tick, Math.max(0, Math.min(1, t0 + due * interval - performance.now())));
    };
    tick();
  });
}

parentPort?.on('message', (msg: { id: number; req: LoadRequest }) => {
  run(msg.req).then(
    (res) => parentPort!.postMessage({ id: msg.id, res }),
    (err: Error) => parentPort!.postMessage({ id: msg.id, error: err.message }),
  );
});
