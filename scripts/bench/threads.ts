/**
 * Experiment: does moving openpgp's encrypt+sign to worker threads pay on this machine? A small pool
 * (threads-worker.ts) and the in-process ceiling run with it, in alternating rounds with the ceiling as
 * the gateway runs it today (openpgp on the main thread, partners concurrent).
 */
import { Worker } from 'node:worker_threads';
import type { Dossier } from '../../gateway/dossier/types.js';
import { makeDossiers } from './dossiers.js';
import type { Budget } from './inprocess.js';
import { row, type Row } from './report.js';
import { fanoutInProcess, packetPlaintext, pool, type Env } from './setup.js';
import { now, summarise } from './stats.js';

export class CryptoPool {
  private readonly workers: Worker[] = [];
  private readonly busy: number[] = [];
  private readonly waiting = new Map<number, { resolve: (s: string) => void; reject: (e: Error) => void; worker: number }>();
  private seq = 0;

  private constructor(size: number) {
    const api = import.meta.resolve('tsx/esm/api');
    const file = new URL('./threads-worker.ts', import.meta.url).href;
    for (let i = 0; i < size; i++) {
      const w = new Worker(`import(${JSON.stringify(api)}).then((m) => m.tsImport(${JSON.stringify(file)}, ${JSON.stringify(file)}))`, { eval: true });
      w.on('message', (m: { type: string; id: number; armored?: string; error?: string }) => {
        if (m.type !== 'done') return;
        const p = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        if (!p) return;
        this.busy[p.worker]!--;
        if (m.error !== undefined) p.reject(new Error(m.error));
        else p.resolve(m.armored!);
      });
      this.workers.push(w);
      this.busy.push(0);
    }
  }

  static async start(size: number, env: Env): Promise<CryptoPool> {
    const p = new CryptoPool(size);
    const keys = {
      type: 'keys',
      signer: env.gatewayKey.privateKey.armor(),
      recipients: [...env.keys.values()].map((k) => [k.fingerprint, k.key.armor()]),
    };
    await Promise.all(
      p.workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            const onReady = (m: { type: string }) => {
              if (m.type === 'ready') {
                w.off('message', onReady);
                resolve();
              }
            };
            w.on('message', onReady);
            w.postMessage(keys);
          }),
      ),
    );
    return p;
  }

  encryptAndSign(plaintext: string, recipient: string): Promise<string> {
    let worker = 0;
    for (let i = 1; i < this.workers.length; i++) if (this.busy[i]! < this.busy[worker]!) worker = i;
    const id = ++this.seq;
    this.busy[worker]!++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, worker });
      this.workers[worker]!.postMessage({ type: 'job', id, plaintext, recipient, date: Date.now() });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

async function fanoutThreaded(env: Env, cp: CryptoPool, dossier: Dossier): Promise<number> {
  const out = await Promise.all(
    env.partners.map(async (p) => {
      const plaintext = await packetPlaintext(env, dossier, p);
      return plaintext === undefined ? undefined : cp.encryptAndSign(plaintext, env.keys.get(p)!.fingerprint);
    }),
  );
  return out.filter((m) => m !== undefined).length;
}

/** The ceiling with openpgp on 1 and 2 worker threads, each against the main-thread ceiling in the same rounds. */
export async function threadsStage(env: Env, b: Budget, concurrency: number): Promise<Row[]> {
  const n = b.quick ? 40 : 100;
  const dossiers = makeDossiers('M', n, 7);
  const rows: Row[] = [];
  for (const size of [1, 2]) {
    const cp = await CryptoPool.start(size, env);
    try {
      const run = async (f: (d: Dossier) => Promise<number>) => {
        const t0 = now();
        await pool(dossiers, concurrency, f);
        return n / ((now() - t0) / 1000);
      };
      const threaded = (d: Dossier) => fanoutThreaded(env, cp, d);
      const main = (d: Dossier) => fanoutInProcess(env, d);
      await run(threaded);
      await run(main);
      const a: number[] = [];
      const m: number[] = [];
      for (let r = 0; r < b.rounds; r++) {
        m.push(await run(main));
        a.push(await run(threaded));
      }
      rows.push(
        row({
          stage: `experiment: ceiling with openpgp on ${size} worker thread${size > 1 ? 's' : ''}`,
          size: 'M',
          unit: 'dossiers/s',
          value: summarise(a),
          baseline: { label: 'main thread', value: summarise(m) },
          note: 'decide + redact on the main thread, encrypt+sign in the pool; ratio > 1 means threads pay',
        }),
      );
    } finally {
      await cp.close();
    }
  }
  return rows;
}
