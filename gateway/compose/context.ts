/**
 * What every wiring step in this folder is given: the configuration, the logger and the shared list of
 * shutdown steps. Each step pushes its closers as it starts things, in start-up order, and
 * `RunningGateway.close` (main.ts) runs them in reverse, so what was started last stops first: the
 * HTTP server, then the roles' queues and workers, then the shared services, and Redis last. The list
 * is shared, never copied: a step may push to it later, when it starts something lazily.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/env.js';
import type { ResponseObserver } from '../http/observe.js';

export type Closers = Array<() => Promise<unknown>>;

export interface Wiring {
  config: Config;
  logger: Logger;
  closers: Closers;
  /** Sees every API response (tests check them against the OpenAPI description); never set in production. */
  observeResponses?: ResponseObserver;
}
