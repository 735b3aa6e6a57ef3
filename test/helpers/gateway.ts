/** Starts a real gateway in-process (real Redis, real keys, real HTTP on a free port) for a test. */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import { loadConfig, type Config } from '../../gateway/config/env.js';
import { startGateway, type RunningGateway } from '../../gateway/main.js';
import { recordViolations, responseValidator } from './openapi.js';

export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
export const ROOT = path.resolve(import.meta.dirname, '../..');
export const TOKENS = JSON.parse(readFileSync(path.join(ROOT, 'test/fixtures/sample-tokens.json'), 'utf8')) as Record<string, string>;
export const PARTNERS = ['childrens-services', 'council-housing', 'dvla', 'dwp-benefits', 'hmrc', 'immigration-enforcement', 'riverside-homes'];

/** A test fixture (test/fixtures/<name>), or an example dossier (examples/dossier-*.json, shipped with the CLI). */
export function fixture(name: string): Record<string, unknown> {
  const dir = /^dossier-[a-z-]+\.json$/.test(name) ? 'examples' : 'test/fixtures';
  return JSON.parse(readFileSync(path.join(ROOT, dir, name), 'utf8')) as Record<string, unknown>;
}

export interface TestGateway extends RunningGateway {
  url: string;
  prefix: string;
  redis: Redis;
  stateDir: string;
  stop(): Promise<void>;
}

/**
 * `logger`: where the gateway logs (silent by default); tests that scan logs pass their own. Every
 * response is checked against the OpenAPI description (test/helpers/openapi.ts).
 */
export async function startTestGateway(overrides: Partial<Config> = {}, logger: Logger = pino({ level: 'silent' })): Promise<TestGateway> {
  const stateDir = await mkdtemp(path.join(os.tmpdir(), 'cordon-state-'));
  const config: Config = {
    ...loadConfig({ CORDON_POLICY_DIR: path.join(ROOT, 'policies') }, ROOT),
    port: 0,
    redisUrl: REDIS_URL,
    stateDir,
    redisPrefix: `cordon-test-${randomBytes(4).toString('hex')}`,
    logLevel: 'silent',
    ...overrides,
  };
  const prefix = config.redisPrefix; // a test's own prefix, when given, is the one cleaned up
  // Every response is checked against the OpenAPI description; setup.ts fails the test that broke it.
  // The checks are compiled first, so that none is compiled while the gateway answers.
  responseValidator();
  const gw = await startGateway(config, logger, { observeResponses: recordViolations });
  for (const url of [gw.url, gw.metricsUrl]) if (url) checkedInProcess.add(url);
  const redis = new Redis(REDIS_URL);
  return {
    ...gw,
    url: gw.url!,
    prefix,
    redis,
    stateDir,
    async stop() {
      await gw.close();
      await deleteKeys(redis, prefix);
      await redis.quit();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

export async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', '1000');
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== '0');
}

/** Every key under the prefix with its whole content, whatever its type, for leak scans. */
export async function dumpKeys(redis: Redis, prefix: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', '1000');
    cursor = next;
    for (const key of keys) {
      const type = await redis.type(key);
      let content: unknown;
      if (type === 'string') content = await redis.get(key);
      else if (type === 'hash') content = await redis.hgetall(key);
      else if (type === 'list') content = await redis.lrange(key, 0, -1);
      else if (type === 'set') content = await redis.smembers(key);
      else if (type === 'zset') content = await redis.zrange(key, '0', '-1');
      else if (type === 'stream') content = await redis.xrange(key, '-', '+');
      out.set(key, JSON.stringify(content));
    }
  } while (cursor !== '0');
  return out;
}

/**
 * Gateways whose responses are checked as they are sent (and the /metrics-only listeners, which are not
 * the API); `api` checks what any other gateway answers, such as one a test runs as a child process.
 */
const checkedInProcess = new Set<string>();

export async function api(base: string, method: string, route: string, token?: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(base + route, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined && typeof body !== 'string' ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  if (!checkedInProcess.has(base)) {
    recordViolations({ method, path: new URL(route, base).pathname, status: res.status, headers: Object.fromEntries(res.headers), body: Buffer.from(text) });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json: json as Record<string, any> };
}

/** Polls the dossier status until no delivery is queued any more. */
export async function waitSettled(base: string, id: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await api(base, 'GET', `/v1/dossiers/${id}`, TOKENS['west-midlands-rocu']);
    const deliveries = (res.json?.deliveries ?? []) as Array<{ partner: string; state: string; reason?: string; packetId?: string }>;
    if (res.status === 200 && res.json.state !== 'accepted' && deliveries.every((d) => d.state !== 'queued')) return res.json;
    if (Date.now() > deadline) throw new Error(`dossier ${id} not settled: ${JSON.stringify(res.json)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A Redis dump with the ciphertext taken out (sealed blobs, armored OpenPGP blocks), so a leak scan
 * searches only what is stored in the clear: short values like "CV6" turn up by chance in base64.
 */
export function withoutCiphertext(text: string): string {
  return text
    .replace(/v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g, '[sealed]')
    .replace(/-----BEGIN PGP [A-Z ]+-----[\s\S]*?-----END PGP [A-Z ]+-----/g, '[pgp]');
}

/**
 * The values of a dossier a leak scan looks for: every string of at least `minLength` characters,
 * less the classification and schema markers, lower-case codes ("keeper", "drugs-supply") and words
 * that also occur in the partner policy files (agreement purposes legitimately travel in the audit).
 */
export async function dossierValues(dossier: unknown, minLength: number): Promise<Set<string>> {
  const values = new Set<string>();
  const walk = (v: unknown) => {
    if (typeof v === 'string' && v.length >= minLength) values.add(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(dossier);
  for (const v of ['OFFICIAL-SENSITIVE', 'cordon.dossier/v1', 'west-midlands']) values.delete(v);
  const policyText = (await Promise.all(PARTNERS.map((p) => readFile(path.join(ROOT, `policies/partners/${p}.yaml`), 'utf8')))).join('\n').toLowerCase();
  for (const v of [...values]) if (/^[a-z-]+$/.test(v) || policyText.includes(v.toLowerCase())) values.delete(v);
  return values;
}

/** Polls `fn` until it gives a value, or throws naming `what` at the deadline. */
export async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
