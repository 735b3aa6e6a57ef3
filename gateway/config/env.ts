/** Process configuration from the environment (the variables are part of the external contract). */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createSecureContext } from 'node:tls';
import { GatewayError } from '../errors/index.js';

export type Role = 'all' | 'api' | 'worker';

/** The API's own certificate and private key (`CORDON_TLS_CERT`, `CORDON_TLS_KEY`): PEM, read and checked at start-up. */
export interface ServerTls {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

export interface Config {
  port: number;
  /** Undefined: start-up (compose/redis.ts) starts a private redis-server. */
  redisUrl?: string;
  policyDir: string;
  clientsFile: string;
  stateDir: string;
  role: Role;
  /** NODE_ENV=production: refuse sample credentials and an evicting Redis instead of warning. */
  production: boolean;
  /** Prefix of every Redis key and BullMQ queue, so several gateways or test runs can share one Redis. */
  redisPrefix: string;
  bodyLimitBytes: number;
  logLevel: string;
  workerConcurrency: number;
  /** How long a worker holds a job before another may take it over (a dead worker's jobs wait this long). */
  jobLockMs: number;
  /** Requests per client per minute (shared across api processes through Redis). */
  rateLimitPerMinute: number;
  /** Reverse proxies in front of the gateway (0: none; X-Forwarded-For is then ignored). */
  trustProxyHops: number;
  /** Deadlines for a client to send its headers, and its whole request (slow clients are cut off). */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** This gateway's own force id for cross-border exchange (default: the only source configured). */
  forceId?: string;
  /** Retries of an envelope to a peer gateway before it is dead-lettered, and the first backoff. */
  exchangeAttempts: number;
  exchangeBackoffMs: number;
  /** `CORDON_PACKET_TTL_DAYS`: packets expire after this many days when it is shorter than the agreement's retention. */
  packetTtlDays?: number;
  /** `CORDON_TLS_CERT` + `CORDON_TLS_KEY`: the API listens on HTTPS and asks clients for certificates; unset: plain HTTP. */
  tls?: ServerTls;
}

const ROLES: Role[] = ['all', 'api', 'worker'];

export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const policyDir = path.resolve(cwd, env.CORDON_POLICY_DIR || './policies');
  const role = (env.CORDON_ROLE || 'all') as Role;
  if (!ROLES.includes(role)) {
    throw new GatewayError('config_invalid', `CORDON_ROLE must be one of ${ROLES.join(', ')}, not "${role}"`);
  }
  const port = Number(env.PORT ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new GatewayError('config_invalid', `PORT must be a TCP port number, not "${env.PORT}"`);
  }
  const concurrency = Number(env.CORDON_WORKER_CONCURRENCY ?? 4);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    throw new GatewayError('config_invalid', 'CORDON_WORKER_CONCURRENCY must be an integer from 1 to 64');
  }
  const jobLockMs = Number(env.CORDON_JOB_LOCK_MS ?? 30_000);
  if (!Number.isInteger(jobLockMs) || jobLockMs < 1000) {
    throw new GatewayError('config_invalid', 'CORDON_JOB_LOCK_MS must be an integer of at least 1000');
  }
  const rateLimitPerMinute = intFrom(env.CORDON_RATE_LIMIT_PER_MINUTE, 12_000, 1, 10_000_000, 'CORDON_RATE_LIMIT_PER_MINUTE');
  const headersTimeoutMs = intFrom(env.CORDON_HEADERS_TIMEOUT_MS, 10_000, 100, 120_000, 'CORDON_HEADERS_TIMEOUT_MS');
  const requestTimeoutMs = intFrom(env.CORDON_REQUEST_TIMEOUT_MS, 30_000, headersTimeoutMs, 600_000, 'CORDON_REQUEST_TIMEOUT_MS');
  const exchangeAttempts = intFrom(env.CORDON_EXCHANGE_ATTEMPTS, 8, 1, 100, 'CORDON_EXCHANGE_ATTEMPTS');
  const exchangeBackoffMs = intFrom(env.CORDON_EXCHANGE_BACKOFF_MS, 2000, 10, 3_600_000, 'CORDON_EXCHANGE_BACKOFF_MS');
  const forceId = env.CORDON_FORCE_ID || undefined;
  if (forceId !== undefined && !/^[a-z0-9][a-z0-9-]{0,63}$/.test(forceId)) {
    throw new GatewayError('config_invalid', 'CORDON_FORCE_ID must be a lower-case id like west-midlands');
  }
  const trustProxyHops = intFrom(env.CORDON_TRUST_PROXY_HOPS, 0, 0, 10, 'CORDON_TRUST_PROXY_HOPS');
  const packetTtlDays = env.CORDON_PACKET_TTL_DAYS ? Number(env.CORDON_PACKET_TTL_DAYS) : undefined;
  if (packetTtlDays !== undefined && !(Number.isFinite(packetTtlDays) && packetTtlDays > 0 && packetTtlDays <= 3650)) {
    throw new GatewayError('config_invalid', 'CORDON_PACKET_TTL_DAYS must be a number of days above 0 and at most 3650 (fractions allowed)');
  }
  const tls = serverTls(env, cwd);
  return {
    port,
    redisUrl: env.REDIS_URL || undefined,
    policyDir,
    clientsFile: path.resolve(cwd, env.CORDON_CLIENTS || path.join(policyDir, 'clients.sample.yaml')),
    stateDir: path.resolve(cwd, env.CORDON_STATE_DIR || './var'),
    role,
    production: env.NODE_ENV === 'production',
    redisPrefix: env.CORDON_REDIS_PREFIX || 'cordon',
    bodyLimitBytes: 1024 * 1024,
    logLevel: env.LOG_LEVEL || 'info',
    workerConcurrency: concurrency,
    jobLockMs,
    rateLimitPerMinute,
    trustProxyHops,
    headersTimeoutMs,
    requestTimeoutMs,
    exchangeAttempts,
    exchangeBackoffMs,
    ...(forceId !== undefined ? { forceId } : {}),
    ...(packetTtlDays !== undefined ? { packetTtlDays } : {}),
    ...(tls !== undefined ? { tls } : {}),
  };
}

/**
 * `CORDON_TLS_CERT` and `CORDON_TLS_KEY` (PEM files, relative to the working directory): both for HTTPS,
 * neither for plain HTTP. The files are read and checked here (a certificate, an unencrypted private
 * key, and that key the certificate's), so a wrong one stops start-up naming its variable.
 */
function serverTls(env: NodeJS.ProcessEnv, cwd: string): ServerTls | undefined {
  const certVar = env.CORDON_TLS_CERT || undefined;
  const keyVar = env.CORDON_TLS_KEY || undefined;
  if (certVar === undefined && keyVar === undefined) return undefined;
  if (certVar === undefined || keyVar === undefined) {
    const [set, unset] = certVar === undefined ? ['CORDON_TLS_KEY', 'CORDON_TLS_CERT'] : ['CORDON_TLS_CERT', 'CORDON_TLS_KEY'];
    throw new GatewayError('config_invalid', `${unset} must be set when ${set} is: HTTPS needs both (PEM files), plain HTTP neither`);
  }
  const certFile = path.resolve(cwd, certVar);
  const keyFile = path.resolve(cwd, keyVar);
  const cert = readSetting(certFile, 'CORDON_TLS_CERT');
  const key = readSetting(keyFile, 'CORDON_TLS_KEY');
  try {
    if (!cert.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no certificate block');
    new X509Certificate(cert);
  } catch (err) {
    throw new GatewayError('config_invalid', `CORDON_TLS_CERT: ${certFile} is not a PEM certificate (${(err as Error).message})`);
  }
  try {
    if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key)) throw new Error('no private key block');
    createPrivateKey(key);
  } catch (err) {
    throw new GatewayError('config_invalid', `CORDON_TLS_KEY: ${keyFile} is not an unencrypted PEM private key (${(err as Error).message})`);
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new GatewayError('config_invalid', `CORDON_TLS_KEY: ${keyFile} is not the private key of the certificate in CORDON_TLS_CERT (${(err as Error).message})`);
  }
  return { certFile, keyFile, cert, key };
}

function readSetting(file: string, name: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new GatewayError('config_invalid', `${name}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

function intFrom(value: string | undefined, fallback: number, min: number, max: number, name: string): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new GatewayError('config_invalid', `${name} must be an integer from ${min} to ${max}`);
  return n;
}
