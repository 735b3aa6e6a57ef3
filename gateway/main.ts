/**
 * Composition root: the only module that wires everything. `CORDON_ROLE` selects api, worker or both
 * in one process; any number of each can share one Redis. `startGateway` reads as the start-up story,
 * step by step; each step is wired in gateway/compose/, which says why it comes where it does.
 */
import { pathToFileURL } from 'node:url';
import { pino, type Logger } from 'pino';
import { loadConfig, type Config } from './config/env.js';
import { loadOrCreateGatewayKey } from './crypto/openpgp.js';
import { loadOrCreateMasterSecret } from './crypto/seal.js';
import { GatewayError } from './errors/index.js';
import { startApiRole } from './compose/api.js';
import { watchClients } from './compose/clients.js';
import type { Closers, Wiring } from './compose/context.js';
import { loadPolicies } from './compose/policies.js';
import { connectStore } from './compose/redis.js';
import { buildServices } from './compose/services.js';
import { startWorkerRole } from './compose/worker.js';

export interface RunningGateway {
  config: Config;
  /** Base URL of the API when the api role runs. */
  url?: string;
  /** Base URL of the separate /metrics listener, when `CORDON_METRICS_PORT` is set. */
  metricsUrl?: string;
  redisUrl: string;
  close(): Promise<void>;
}

function createLogger(level: string): Logger {
  return pino({
    // An unknown level would make pino throw before the configuration is read; the configuration
    // then refuses it by name (LOG_LEVEL), logged at the default level.
    level: level in pino.levels.values || level === 'silent' ? level : 'info',
    base: { service: 'cordon' },
    redact: { paths: ['req.headers.authorization', '*.authorization', '*.token', '*.body'], censor: '[redacted]' },
  });
}

/** `options.observeResponses`: for tests, sees every API response (see http/observe.ts). */
export async function startGateway(config: Config, logger: Logger = createLogger(config.logLevel), options: Pick<Wiring, 'observeResponses'> = {}): Promise<RunningGateway> {
  // Every step pushes its shutdown steps here as it starts things; they run in reverse, last started
  // first stopped (compose/context.ts). A failed start-up closes what was already started.
  const closers: Closers = [];
  const close = async () => {
    for (const c of closers.reverse()) await c().catch((err) => logger.warn({ err: (err as Error).message }, 'shutdown step failed'));
  };
  const wiring: Wiring = { config, logger, closers, ...options };
  try {
    const connection = await connectStore(wiring);
    const master = await loadOrCreateMasterSecret(config.stateDir);
    const gatewayKey = await loadOrCreateGatewayKey(config.stateDir);
    const clients = await watchClients(wiring);
    const policies = await loadPolicies(wiring, gatewayKey);
    const services = await buildServices(wiring, connection, { master, gatewayKey }, policies);

    const result: RunningGateway = { config, redisUrl: connection.redisUrl, close };
    if (config.role === 'all' || config.role === 'worker') startWorkerRole(wiring, services);
    if (config.role === 'all' || config.role === 'api') Object.assign(result, await startApiRole(wiring, services, clients));
    return result;
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * Exits without the 'exit' handlers: pino's handler flushes the log synchronously, and on a pipe whose
 * reader has stopped reading that flush retries for ever (sonic-boom on EAGAIN), so the bound would
 * never hold. Log lines still queued are lost; the process ending on time matters more.
 */
function exitNow(code: number): never {
  process.removeAllListeners('exit');
  process.exit(code);
}

async function run(): Promise<void> {
  let config: Config;
  // The logger comes first, so that a configuration refused is logged too.
  const logger = createLogger(process.env.LOG_LEVEL || 'info');
  try {
    config = loadConfig();
    const gw = await startGateway(config, logger);
    let stopping = false;
    const stop = (signal: string) => {
      // A second signal while stopping: the operator wants out now.
      if (stopping) return exitNow(1);
      stopping = true;
      logger.info({ signal }, 'shutting down: finishing in-flight work');
      // Bounded (CORDON_SHUTDOWN_TIMEOUT_MS): a shutdown stuck on a Redis that went away first must not
      // hang the process. Jobs not finished by then are taken over by another worker once their locks lapse.
      const deadline = setTimeout(() => {
        logger.error({ afterMs: config.shutdownTimeoutMs }, 'shutdown did not finish in time: exiting');
        exitNow(1);
      }, config.shutdownTimeoutMs);
      deadline.unref();
      // Closed: give the log a moment to drain without blocking on it (a reader may have stopped reading).
      void gw.close().then(() => {
        setTimeout(() => exitNow(0), 1000).unref();
        logger.flush(() => exitNow(0));
      });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  } catch (err) {
    if (err instanceof GatewayError) {
      logger.fatal({ code: err.code, details: err.details }, err.message);
      // Every problem on its own line (a single one is the message itself).
      const details = err.details?.length === 1 && err.details[0]!.message === err.message ? [] : (err.details ?? []);
      const lines = details.map((d) => `  - ${d.path && !d.message.startsWith(d.path) ? d.path + ': ' : ''}${d.message}`);
      const head = err.code === 'config_invalid' && details.length > 1 ? `${details.length} configuration problems (see docs/configuration.md)` : err.message;
      process.stderr.write(`cordon: ${head}\n${lines.map((l) => l + '\n').join('')}`);
    } else {
      logger.fatal({ err: (err as Error).message, stack: (err as Error).stack }, 'start-up failed');
    }
    process.exit(1);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void run();
