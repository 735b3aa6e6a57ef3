/**
 * Redis for the tools beside the gateway (benchmarks, the CLI): plain connections, administration and
 * bulk reads the gateway itself never does. Kept in the store so that only the store imports ioredis.
 */
import { Redis } from 'ioredis';
import type { Connection, Keys } from './redis.js';
import { scriptName } from './scripts.js';

/** A connection with ioredis's defaults (queues commands while connecting, retries for ever). */
export function connectPlain(url: string): Connection {
  return new Redis(url);
}

/** Sets the AOF's `appendfsync` (a private benchmark server only). */
export async function setAppendFsync(redis: Connection, mode: 'always' | 'everysec'): Promise<void> {
  await redis.config('SET', 'appendfsync', mode);
}

/** Deletes every key under `prefix:` (a benchmark's or a test's own prefix, never another's). */
export async function deleteByPrefix(redis: Connection, prefix: string, opts: { keepAudit?: boolean } = {}): Promise<void> {
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', '1000');
    cursor = next;
    // A running gateway refuses work when its audit trail vanishes: between rounds keep the trail.
    const keys = opts.keepAudit ? found.filter((k) => !k.startsWith(`${prefix}:audit:`)) : found;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== '0');
}

/** CPU seconds used by Redis so far (INFO cpu). */
export async function redisCpuSeconds(redis: Connection): Promise<number> {
  const info = await redis.info('cpu');
  const user = /used_cpu_user:([\d.]+)/.exec(info)?.[1];
  const sys = /used_cpu_sys:([\d.]+)/.exec(info)?.[1];
  return Number(user ?? 0) + Number(sys ?? 0);
}

/** The states of many dossiers in one round trip (null where there is no record). */
export async function dossierStates(redis: Connection, keys: Keys, ids: readonly string[]): Promise<Array<string | null>> {
  const p = redis.pipeline();
  for (const id of ids) p.hget(keys.dossier(id), 'state');
  return ((await p.exec()) ?? []).map(([, v]) => v as string | null);
}

/** The deliveries (partner → JSON) of many dossiers in one round trip. */
export async function deliveriesOfMany(redis: Connection, keys: Keys, ids: readonly string[]): Promise<Array<Record<string, string>>> {
  const p = redis.pipeline();
  for (const id of ids) p.hgetall(keys.deliveries(id));
  return ((await p.exec()) ?? []).map(([, v]) => v as Record<string, string>);
}

/**
 * Calls `seen` for every command any connection of this process sends (the gateway's own, BullMQ's),
 * except `ignore`'s, with its name and argument bytes. Returns the function that stops it.
 */
export function interceptCommands(ignore: Connection, seen: (name: string, bytes: number) => void): () => void {
  const original = Redis.prototype.sendCommand;
  Redis.prototype.sendCommand = function (this: Redis, ...args: Parameters<Redis['sendCommand']>) {
    const command = args[0] as unknown as { name: string; args: unknown[] };
    if (this !== ignore) {
      // A script call is named by its script, so bytes can be told apart by what writes them.
      const script = command.name === 'evalsha' ? scriptName(String(command.args[0])) : undefined;
      seen(script ? `evalsha ${script}` : command.name, command.args.reduce<number>((n, a) => n + (typeof a === 'string' ? Buffer.byteLength(a) : Buffer.isBuffer(a) ? a.length : String(a).length), 0));
    }
    return original.apply(this, args);
  };
  return () => {
    Redis.prototype.sendCommand = original;
  };
}
