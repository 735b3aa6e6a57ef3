/**
 * Redis, wired first because everything else keeps its state there. Without REDIS_URL a private
 * redis-server is started under the state directory (development only: refused in production); its
 * stop is pushed before the connection's quit, so on shutdown the connection closes first and the
 * server stops last of all. Start-up waits until Redis answers, and then checks that it will not evict
 * keys: an evicting Redis can silently drop queued dossiers, which production refuses outright. The
 * connection gets its replication guard: with replicas, what is acknowledged waits until one holds it.
 */
import { GatewayError } from '../errors/index.js';
import { startPrivateRedis, type PrivateRedis } from '../store/private-redis.js';
import { connectRedis, Keys, maxmemoryPolicy, whenReady, type Connection } from '../store/redis.js';
import { guardReplication } from '../store/replication.js';
import type { Wiring } from './context.js';

export interface RedisConnection {
  redis: Connection;
  /** REDIS_URL, or the private server's; the queues open their own connections to it. */
  redisUrl: string;
}

export async function connectStore({ config, logger, closers }: Wiring): Promise<RedisConnection> {
  let privateRedis: PrivateRedis | undefined;
  let redisUrl = config.redisUrl;
  if (!redisUrl && config.production) {
    throw new GatewayError('config_invalid', 'REDIS_URL must be set in production mode (a private redis-server is for development only)');
  }
  if (!redisUrl) {
    privateRedis = await startPrivateRedis(config.stateDir);
    closers.push(() => privateRedis!.stop());
    redisUrl = privateRedis.url;
    logger.info({ redis: redisUrl }, 'started a private redis-server (set REDIS_URL to use your own)');
  }

  const redis: Connection = connectRedis(redisUrl);
  closers.push(() => redis.quit());
  redis.on('error', (err) => logger.warn({ err: err.message }, 'redis connection problem'));
  await whenReady(redis).catch((err: Error) => {
    throw new GatewayError('store_unavailable', `cannot reach Redis at ${redactUrl(redisUrl!)}: ${err.message}`);
  });
  const policy = await maxmemoryPolicy(redis);
  if (policy !== 'noeviction') {
    const msg = `Redis maxmemory-policy is "${policy}": it may evict queued dossiers; set it to noeviction`;
    if (config.production) throw new GatewayError('config_invalid', msg);
    logger.warn(msg);
  }
  // With replicas, acknowledged writes wait until one holds them (store/replication.ts); the guard's
  // own connection closes before the shared one (closers run last-pushed first).
  const guard = guardReplication(redis, new Keys(config.redisPrefix), {
    confirmReplicas: config.redisConfirmReplicas,
    waitTimeoutMs: config.redisWaitTimeoutMs,
    log: (level, msg) => logger[level](msg),
  });
  closers.push(() => guard.close());
  const replication = await guard.status();
  logger.info({ replicas: replication.online, confirming: replication.required }, `Redis replication: ${replication.detail}`);
  return { redis, redisUrl };
}

function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
