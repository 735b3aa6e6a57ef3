/** Starts the load generator (loadgen-worker.ts) in a worker thread of this process and talks to it. */
import { Worker } from 'node:worker_threads';
import type { LoadRequest, LoadResult } from './loadgen-worker.js';

export type { LoadRequest, LoadResult };

export class LoadGenerator {
  private readonly worker: Worker;
  private seq = 0;
  private readonly waiting = new Map<number, { resolve: (r: LoadResult) => void; reject: (e: Error) => void }>();

  constructor() {
    // The worker is TypeScript: load it through tsx's API, as the main script is.
    const api = import.meta.resolve('tsx/esm/api');
    const file = new URL('./loadgen-worker.ts', import.meta.url).href;
    this.worker = new Worker(`import(${JSON.stringify(api)}).then((m) => m.tsImport(${JSON.stringify(file)}, ${JSON.stringify(file)}))`, { eval: true });
    this.worker.on('message', (m: { id: number; res?: LoadResult; error?: string }) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.error !== undefined) w?.reject(new Error(m.error));
      else w?.resolve(m.res!);
    });
    this.worker.on('error', (err) => {
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
    });
    this.worker.unref();
  }

  run(req: LoadRequest): Promise<LoadResult> {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, req });
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
