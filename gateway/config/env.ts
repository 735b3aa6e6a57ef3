/**
 * Process configuration, read once from the environment at start-up through the configuration schema
 * (`schemas/config.schema.json`, compiled in schema.ts): every setting's variable, type, limits and
 * default live there, and docs/configuration.md's table is generated from it. A CORDON_* variable the
 * schema does not know is refused (a typo would otherwise be silently ignored), every problem is
 * reported at once, and the Config handed out is frozen: nothing changes it after start-up.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createSecureContext } from 'node:tls';
import { GatewayError } from '../errors/index.js';
import { checkEnvironment, configSchema, type ConfigProblem } from './schema.js';

export type Role = 'all' | 'api' | 'worker';

/** The API's own certificate and private key (`CORDON_TLS_CERT`, `CORDON_TLS_KEY`): PEM, read and checked at start-up. */
export interface ServerTls {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

/** The settings by the names the code uses; each is described, with its variable, in the schema. */
export interface Config {
  port: number;
  /** Undefined: start-up (compose/redis.ts) starts a private redis-server. */
  redisUrl?: string;
  policyDir: string;
  /** `CORDON_POLICY_SIGNERS`: governance public keys; set, policy sets go live only when signed (governance/signatures.ts). */
  policySigners?: string;
  /** `CORDON_POLICY_QUORUM`: distinct signers a policy set needs. */
  policyQuorum: number;
  clientsFile: string;
  /** How often the clients file is polled for changes. */
  clientsPollMs: number;
  stateDir: string;
  role: Role;
  /**
   * NODE_ENV=production: refuse sample credentials, published test keys (config/demo-material.ts), an
   * evicting Redis and an API without TLS instead of warning.
   */
  production: boolean;
  /** `CORDON_ALLOW_PLAINTEXT_BEHIND_PROXY=1`: a TLS proxy is in front, so production may serve plain HTTP. */
  allowPlaintextBehindProxy: boolean;
  /** Prefix of every Redis key and BullMQ queue, so several gateways or test runs can share one Redis. */
  redisPrefix: string;
  /** Replicas that must hold an acknowledged write when the master has replicas (0: never wait). */
  redisConfirmReplicas: number;
  /** How long an acknowledged write waits for them before it is refused with a 503. */
  redisWaitTimeoutMs: number;
  bodyLimitBytes: number;
  logLevel: string;
  /** How long a signalled shutdown may take before the process exits anyway. */
  shutdownTimeoutMs: number;
  workerConcurrency: number;
  /** How long a worker holds a job before another may take it over (a dead worker's jobs wait this long). */
  jobLockMs: number;
  /** Requests per client per minute (shared across api processes through Redis). */
  rateLimitPerMinute: number;
  /** Failed authentications per address per minute before the address is refused for a minute. */
  authFailuresPerMinute: number;
  /** Reverse proxies in front of the gateway (0: none; X-Forwarded-For is then ignored). */
  trustProxyHops: number;
  /** Deadlines for a client to send its headers, and its whole request (slow clients are cut off). */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** How long an idle keep-alive connection stays open. */
  keepAliveTimeoutMs: number;
  /** `CORDON_METRICS_PORT`: /metrics on its own listener (and no longer on the API port); unset: on the API port. */
  metricsPort?: number;
  /** `CORDON_METRICS_HOST`: the address that listener binds to (default loopback). */
  metricsHost?: string;
  /** This gateway's own force id for cross-border exchange (default: the only source configured). */
  forceId?: string;
  /** Retries of an envelope to a peer gateway before it is dead-lettered, and the first backoff. */
  exchangeAttempts: number;
  exchangeBackoffMs: number;
  /** Deadline of one POST of an envelope to a peer gateway. */
  exchangeTimeoutMs: number;
  /** How old an inbound envelope may be, and how far ahead of this gateway's clock. */
  exchangeFreshnessMs: number;
  exchangeClockSkewMs: number;
  /** Deadline of one POST of a new-hits notice to a source. */
  hitNoticeTimeoutMs: number;
  /** `CORDON_PACKET_TTL_DAYS`: packets expire after this many days when it is shorter than the agreement's retention. */
  packetTtlDays?: number;
  /** How often each worker sweeps for expired items to erase. */
  retentionSweepIntervalMs: number;
  /** A signed audit checkpoint after this many records, and on this timer. */
  auditCheckpointEvery: number;
  auditCheckpointIntervalMs: number;
  /** `CORDON_AUDIT_ACCEPT_NEW_TRAIL`: the anchored sequence number of a lost trail the operator accepts replacing. */
  auditAcceptNewTrail?: number;
  /** `CORDON_TLS_CERT` + `CORDON_TLS_KEY`: the API listens on HTTPS and asks clients for certificates; unset: plain HTTP. */
  tls?: ServerTls;
}

/**
 * Reads the configuration from `env` (default: the process's environment), resolving paths against
 * `cwd`. Throws `config_invalid` listing every problem, each naming its variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const { values, problems } = checkEnvironment(env);
  const settings: Record<string, unknown> = {};
  for (const [name, setting] of Object.entries(configSchema.properties)) {
    const field = setting['x-field'];
    const value = values[name];
    // Derived below: NODE_ENV and the plaintext allowance are switches, and the two TLS files are read together.
    if (value === undefined || field === 'production' || field === 'allowPlaintextBehindProxy' || field === 'tls') continue;
    settings[field] = setting['x-path'] ? path.resolve(cwd, String(value)) : value;
  }
  settings.production = values.NODE_ENV === 'production';
  settings.allowPlaintextBehindProxy = values.CORDON_ALLOW_PLAINTEXT_BEHIND_PROXY === '1';
  settings.clientsFile ??= path.join(settings.policyDir as string, 'clients.sample.yaml');
  if (settings.metricsPort !== undefined) settings.metricsHost ??= '127.0.0.1';
  const bad = new Set(problems.map((p) => p.variable));
  if (!bad.has('CORDON_HEADERS_TIMEOUT_MS') && !bad.has('CORDON_REQUEST_TIMEOUT_MS') && (settings.requestTimeoutMs as number) < (settings.headersTimeoutMs as number)) {
    problems.push({ variable: 'CORDON_REQUEST_TIMEOUT_MS', message: `CORDON_REQUEST_TIMEOUT_MS must be at least CORDON_HEADERS_TIMEOUT_MS (${settings.headersTimeoutMs as number})` });
  }
  const certVar = values.CORDON_TLS_CERT;
  const keyVar = values.CORDON_TLS_KEY;
  if (certVar !== undefined && keyVar !== undefined && !bad.has('CORDON_TLS_CERT') && !bad.has('CORDON_TLS_KEY')) {
    const tls = serverTls(path.resolve(cwd, String(certVar)), path.resolve(cwd, String(keyVar)), problems);
    if (tls) settings.tls = tls;
  }
  // Bearer tokens and dossiers must not cross the network in clear: a production API listens on HTTPS,
  // or says a TLS proxy is in front. A worker-only process serves no API.
  if (settings.production && settings.role !== 'worker' && certVar === undefined && !settings.allowPlaintextBehindProxy && !bad.has('CORDON_ALLOW_PLAINTEXT_BEHIND_PROXY')) {
    problems.push({ variable: 'CORDON_TLS_CERT', message: 'production needs TLS: set CORDON_TLS_CERT and CORDON_TLS_KEY, or CORDON_ALLOW_PLAINTEXT_BEHIND_PROXY=1 when a TLS-terminating proxy is in front' });
  }
  // Whoever can write the policy directory must not be able to add a signer there.
  if (settings.policySigners !== undefined && !bad.has('CORDON_POLICY_SIGNERS') && isInside(settings.policyDir as string, settings.policySigners as string)) {
    problems.push({ variable: 'CORDON_POLICY_SIGNERS', message: `CORDON_POLICY_SIGNERS: ${settings.policySigners as string} is inside the policy directory; keep the signers file where policy editors cannot write` });
  }
  // A production policy change needs governance's signatures, and the quorum is a decision, not a default.
  if (settings.production) {
    for (const v of ['CORDON_POLICY_SIGNERS', 'CORDON_POLICY_QUORUM'] as const) {
      if (env[v] === undefined || env[v] === '') problems.push({ variable: v, message: `production needs signed policy revisions: set CORDON_POLICY_SIGNERS (governance public keys) and CORDON_POLICY_QUORUM (signatures required); ${v} is unset` });
    }
  }
  if (problems.length) throw configError(problems);
  return deepFreeze(settings as unknown as Config);
}

function isInside(dir: string, file: string): boolean {
  const rel = path.relative(dir, file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function configError(problems: ConfigProblem[]): GatewayError {
  const message = problems.length === 1 ? problems[0]!.message : `${problems.length} configuration problems: ${problems.map((p) => p.message).join('; ')}`;
  return new GatewayError('config_invalid', message, problems.map((p) => ({ path: p.variable, message: p.message })));
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/**
 * The TLS files (PEM, already resolved) are read and checked here (a certificate, an unencrypted
 * private key, and that key the certificate's), so a wrong one stops start-up naming its variable.
 */
function serverTls(certFile: string, keyFile: string, problems: ConfigProblem[]): ServerTls | undefined {
  const cert = readSetting(certFile, 'CORDON_TLS_CERT', problems);
  const key = readSetting(keyFile, 'CORDON_TLS_KEY', problems);
  let ok = cert !== undefined && key !== undefined;
  if (cert !== undefined) {
    try {
      if (!cert.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no certificate block');
      new X509Certificate(cert);
    } catch (err) {
      problems.push({ variable: 'CORDON_TLS_CERT', message: `CORDON_TLS_CERT: ${certFile} is not a PEM certificate (${(err as Error).message})` });
      ok = false;
    }
  }
  if (key !== undefined) {
    try {
      if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key)) throw new Error('no private key block');
      createPrivateKey(key);
    } catch (err) {
      problems.push({ variable: 'CORDON_TLS_KEY', message: `CORDON_TLS_KEY: ${keyFile} is not an unencrypted PEM private key (${(err as Error).message})` });
      ok = false;
    }
  }
  if (!ok) return undefined;
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    problems.push({ variable: 'CORDON_TLS_KEY', message: `CORDON_TLS_KEY: ${keyFile} is not the private key of the certificate in CORDON_TLS_CERT (${(err as Error).message})` });
    return undefined;
  }
  return { certFile, keyFile, cert: cert!, key: key! };
}

function readSetting(file: string, name: string, problems: ConfigProblem[]): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    problems.push({ variable: name, message: `${name}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` });
    return undefined;
  }
}
