/**
 * The Redis the HTTP stages use: REDIS_URL when set, else a private redis-server from PATH started as
 * `npm start` starts one (gateway/store/private-redis.ts: loopback, free port, AOF, noeviction), with
 * its data in a temporary directory removed afterwards. `fsync` picks `appendfsync`: `always` is what
 * `npm start` runs; `everysec` (the default here, and fine for production per the README) takes the
 * disk's fsync latency out of the figures so that they measure the gateway rather than the disk.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startPrivateRedis } from '../../gateway/store/private-redis.js';
import { connectPlain, setAppendFsync } from '../../gateway/store/tools.js';

export interface BenchRedis {
  url: string;
  /** How the figures should be read: which Redis, with what persistence. */
  description: string;
  stop(): Promise<void>;
}

export type Fsync = 'always' | 'everysec';

export async function benchRedis(fsync: Fsync): Promise<BenchRedis> {
  const given = process.env.REDIS_URL;
  if (given) return { url: given, description: `REDIS_URL (shared with whatever else uses it; its own persistence settings apply)`, stop: async () => undefined };
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cordon-bench-redis-'));
  const redis = await startPrivateRedis(dir);
  if (fsync !== 'always') {
    const admin = connectPlain(redis.url);
    await setAppendFsync(admin, fsync);
    await admin.quit();
  }
  return {
    url: redis.url,
    description: `private redis-server (AOF, appendfsync ${fsync}${fsync === 'always' ? ', as npm start runs it' : '; npm start runs always: try --fsync always'})`,
    async stop() {
      await redis.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
