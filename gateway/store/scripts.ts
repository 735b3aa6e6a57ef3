/**
 * Lua scripts by digest: EVALSHA sends 40 bytes instead of the whole script on every call (the
 * scripts are most of what a dossier sends to Redis otherwise); a Redis that has not seen the script
 * yet (NOSCRIPT, e.g. after a restart) gets it once with EVAL, which also caches it there.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

const digests = new Map<string, string>();

export async function evalScript(redis: Redis, script: string, numKeys: number, ...args: Array<string | number | Buffer>): Promise<unknown> {
  let sha = digests.get(script);
  if (sha === undefined) {
    sha = createHash('sha1').update(script).digest('hex');
    digests.set(script, sha);
  }
  try {
    return await redis.evalsha(sha, numKeys, ...args);
  } catch (err) {
    if (!/NOSCRIPT/.test((err as Error).message)) throw err;
    return redis.eval(script, numKeys, ...args);
  }
}
