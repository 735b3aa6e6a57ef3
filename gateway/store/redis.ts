/**
 * Redis connections and the key layout. Only ciphertext, hashes and opaque ids are ever stored. The
 * store (this folder) is the only part of the gateway that imports ioredis: everything else holds a
 * `Connection` only to hand it to a store, and talks to the typed stores.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { GatewayError } from '../errors/index.js';

const SENTINEL_URL = /^redis\+sentinel:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/@]+)\/([^/]+)(?:\/(\d+))?\/?$/;

/**
 * `REDIS_URL=redis+sentinel://[[user]:password@]host:port[,host:port…]/<master name>[/<db>]`: connect to
 * the master the Sentinels name, and follow it across fail-overs (ioredis's Sentinel support). The
 * credentials are the master's; the Sentinels themselves are reached without a password. Undefined for
 * any other URL, which ioredis reads itself (redis://, rediss://).
 */
export function sentinelOptions(url: string): RedisOptions | undefined {
  if (!url.startsWith('redis+sentinel:')) return undefined;
  const m = SENTINEL_URL.exec(url);
  const sentinels = m?.[3]!.split(',').map((hp) => {
    const at = hp.lastIndexOf(':');
    const host = at > 0 ? hp.slice(0, at) : hp;
    const port = at > 0 ? Number(hp.slice(at + 1)) : 26379;
    return { host, port };
  });
  if (!m || !sentinels || sentinels.some((s) => !s.host || !Number.isInteger(s.port) || s.port < 1 || s.port > 65535)) {
    throw new GatewayError('config_invalid', 'REDIS_URL: a Sentinel URL reads redis+sentinel://[[user]:password@]host:port[,host:port…]/<master name>[/<db>]');
  }
  return {
    sentinels,
    name: decodeURIComponent(m[4]!),
    ...(m[1] ? { username: decodeURIComponent(m[1]) } : {}),
    ...(m[2] ? { password: decodeURIComponent(m[2]) } : {}),
    ...(m[5] ? { db: Number(m[5]) } : {}),
  };
}

function connect(url: string, opts: RedisOptions): Redis {
  const sentinel = sentinelOptions(url);
  return sentinel ? new Redis({ ...sentinel, ...opts }) : new Redis(url, opts);
}

export function connectRedis(url: string, opts: RedisOptions = {}): Redis {
  return connect(url, {
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

/** A Redis connection, as the rest of the gateway passes it around (to the stores and to BullMQ). */
export type Connection = Redis;

/** BullMQ needs blocking connections that retry for ever. */
export function connectRedisForQueue(url: string): Redis {
  return connect(url, { maxRetriesPerRequest: null, enableOfflineQueue: true });
}

export class Keys {
  constructor(readonly prefix: string) {}
  dossier(id: string) { return `${this.prefix}:dossier:${id}`; }
  deliveries(id: string) { return `${this.prefix}:dossier:${id}:deliveries`; }
  idempotency(clientId: string, keyHash: string) { return `${this.prefix}:idem:${clientId}:${keyHash}`; }
  packet(id: string) { return `${this.prefix}:packet:${id}`; }
  /** The latest version of a dossier or packet record (store/record-mac.ts); expires with the record. */
  recordVersion(kind: 'dossier' | 'packet', id: string) { return `${this.prefix}:ver:${kind}:${id}`; }
  mailbox(partner: string) { return `${this.prefix}:mailbox:${partner}`; }
  /** The partner's packets and notices not yet retrieved, oldest first. */
  mailboxPending(partner: string) { return `${this.prefix}:mailbox:${partner}:pending`; }
  /** The audit chain: one list (record n at index n-1) and its head (`seq:hash:atMs:lastCheckpointSeq`). */
  auditLog() { return `${this.prefix}:audit:log`; }
  auditHead() { return `${this.prefix}:audit:head`; }
  /** Set when a fail-over lost audit records a gateway had confirmed: every append is refused while it exists. */
  auditCut() { return `${this.prefix}:audit:cut`; }
  /** Written just before a `WAIT`, so that the wait covers every write answered before it (store/replication.ts). */
  replicationBarrier() { return `${this.prefix}:repl:barrier`; }
  /** Audit search indexes: record time (ms) → seq, and per term the records (score and member: seq). */
  auditTime() { return `${this.prefix}:audit:idx:time`; }
  auditTerm(dimension: string, value: string) { return `${this.prefix}:audit:idx:${dimension}:${value}`; }
  /** The retention schedule (zset of members scored by due time, ms) and the sweep lock. */
  retentionDue() { return `${this.prefix}:retention:due`; }
  retentionLock() { return `${this.prefix}:retention:lock`; }
  /** Rate limits: failed authentications per remote address, requests per client, this window. */
  rateAuthFailures(address: string) { return `${this.prefix}:rl:authfail:${address}`; }
  rateClient(clientId: string) { return `${this.prefix}:rl:client:${clientId}`; }
  /** Hash of hit id → sealed hit, per dossier; expires with the dossier record. */
  hits(dossierId: string) { return `${this.prefix}:dossier:${dossierId}:hits`; }
  /** Hash of keyed HMAC of (partner, subject) → sealed answer (hit or no trace), per dossier; expires with it. */
  answers(dossierId: string) { return `${this.prefix}:dossier:${dossierId}:answers`; }
  /** Hash of `<partner>|<agreement>|<result>` → how many answers of that result were given (governance). */
  answerRates() { return `${this.prefix}:answers:rates`; }
  /** Hash of partner → sealed follow-up record (after-match: approvals and follow-up packets), per dossier. */
  followUps(dossierId: string) { return `${this.prefix}:dossier:${dossierId}:followups`; }
  /** The dossier's sealed link items (normalised addresses, VRMs, phones, company numbers). */
  dossierLinks(dossierId: string) { return `${this.prefix}:dossier:${dossierId}:links`; }
  /**
   * Set of further keys that live exactly as long as the dossier's status record (its exchange records):
   * packets extend them with the record (mailbox.ts) and its erasure erases them (retention/erase.ts).
   */
  dossierCompanions(dossierId: string) { return `${this.prefix}:dossier:${dossierId}:companions`; }
  /** A blind-match partner's latest setup message (sealed) and its digest (gateway/blind/). */
  blindSetup(partner: string) { return `${this.prefix}:blind:setup:${partner}`; }
  /** Per source: dossier ids holding a value whose keyed HMAC is `mac` (zset scored by expiry). */
  linkIndex(source: string, mac: string) { return `${this.prefix}:links:${source}:${mac}`; }
}

/** Reads the eviction policy: anything but noeviction can silently drop queued dossiers. */
export async function maxmemoryPolicy(redis: Redis): Promise<string> {
  const res = (await redis.config('GET', 'maxmemory-policy')) as string[];
  return res[1] ?? 'unknown';
}
