/** Redis connections and the key layout. Only ciphertext, hashes and opaque ids are ever stored. */
import { Redis, type RedisOptions } from 'ioredis';

export function connectRedis(url: string, opts: RedisOptions = {}): Redis {
  return new Redis(url, {
    // Fail fast while Redis is down so the API answers 503 instead of hanging.
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    connectTimeout: 2000,
    lazyConnect: false,
    ...opts,
  });
}

/** Resolves once the connection is up (commands are not queued while offline), or rejects after `ms`. */
export async function whenReady(redis: Redis, ms = 5000): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis did not answer within ${ms} ms`));
    }, ms);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
    };
    redis.on('ready', onReady);
  });
}

/** BullMQ needs blocking connections that retry for ever. */
export function connectRedisForQueue(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, enableOfflineQueue: true });
}

export class Keys {
  constructor(readonly prefix: string) {}
  dossier(id: string) { return `${this.prefix}:dossier:${id}`; }
  deliveries(id: string) { return `${this.prefix}:dossier:${id}:deliveries`; }
  idempotency(clientId: string, keyHash: string) { return `${this.prefix}:idem:${clientId}:${keyHash}`; }
  packet(id: string) { return `${this.prefix}:packet:${id}`; }
  mailbox(partner: string) { return `${this.prefix}:mailbox:${partner}`; }
  auditLog() { return `${this.prefix}:audit:log`; }
  auditHead() { return `${this.prefix}:audit:head`; }
}

/** Reads the eviction policy: anything but noeviction can silently drop queued dossiers. */
export async function maxmemoryPolicy(redis: Redis): Promise<string> {
  const res = (await redis.config('GET', 'maxmemory-policy')) as string[];
  return res[1] ?? 'unknown';
}
