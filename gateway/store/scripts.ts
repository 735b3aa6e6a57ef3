/**
 * Lua scripts by digest: EVALSHA sends 40 bytes instead of the whole script on every call (the
 * scripts are most of what a dossier sends to Redis otherwise); a Redis that has not seen the script
 * yet (NOSCRIPT, e.g. after a restart) gets it once with EVAL, which also caches it there.
 *
 * The scripts live in `store/scripts/<name>.lua` (each documents its KEYS and ARGV), read once when
 * the module that runs them is loaded. The path is resolved against this module, so a build that copies
 * the `.lua` files next to the compiled JavaScript finds them the same way.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

const digests = new Map<string, string>();

/** A Lua script, read once from `store/scripts/<name>.lua`. */
export interface LuaScript {
  name: string;
  source: string;
}

const names = new Map<string, string>();

export function loadScript(name: string): LuaScript {
  const source = readFileSync(new URL(`./scripts/${name}.lua`, import.meta.url), 'utf8');
  names.set(createHash('sha1').update(source).digest('hex'), name);
  return { name, source };
}

/** The name of a loaded script by its digest (for tools that count what is sent to Redis). */
export function scriptName(sha: string): string | undefined {
  return names.get(sha);
}

export async function evalScript(redis: Redis, script: string | LuaScript, numKeys: number, ...args: Array<string | number | Buffer>): Promise<unknown> {
  return run(redis, script, numKeys, args, false);
}

/** `evalScript` whose answer keeps bulk strings as Buffers (for values stored as bytes). */
export async function evalScriptBuffer(redis: Redis, script: string | LuaScript, numKeys: number, ...args: Array<string | number | Buffer>): Promise<unknown> {
  return run(redis, script, numKeys, args, true);
}

async function run(redis: Redis, script: string | LuaScript, numKeys: number, args: Array<string | number | Buffer>, buffers: boolean): Promise<unknown> {
  const source = typeof script === 'string' ? script : script.source;
  let sha = digests.get(source);
  if (sha === undefined) {
    sha = createHash('sha1').update(source).digest('hex');
    digests.set(source, sha);
  }
  try {
    return await (buffers ? redis.callBuffer('evalsha', sha, numKeys, ...args) : redis.evalsha(sha, numKeys, ...args));
  } catch (err) {
    if (!/NOSCRIPT/.test((err as Error).message)) throw err;
    return buffers ? redis.callBuffer('eval', source, numKeys, ...args) : redis.eval(source, numKeys, ...args);
  }
}
