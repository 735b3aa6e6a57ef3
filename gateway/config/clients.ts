/**
 * API clients and their credentials. The file holds only SHA-256 hashes of the bearer tokens (tokens
 * are 256-bit random, so a plain hash is enough); a presented token is compared against every stored
 * hash in constant time. A client may hold two hashes at once so a token can be rotated without downtime.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import YAML from 'yaml';
import { GatewayError, type ErrorDetail } from '../errors/index.js';

export type ClientRole = 'source' | 'partner' | 'governance' | 'peer';
export const CLIENT_ROLES: ClientRole[] = ['source', 'partner', 'governance', 'peer'];

export interface Client {
  id: string;
  role: ClientRole;
  /** The partner, source or peer this client speaks for (required for those roles). */
  partner?: string;
  source?: string;
  peer?: string;
}

export interface ClientsFile {
  /** True for the sample file shipped with the repository: refused in production mode. */
  sample: boolean;
  clients: Array<Client & { tokens: string[] }>;
}

const ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
const HASH = /^sha256:[0-9a-f]{64}$/;

export function hashToken(token: string): string {
  return 'sha256:' + createHash('sha256').update(token, 'utf8').digest('hex');
}

export function newToken(): string {
  return 'cordon_' + randomBytes(32).toString('base64url');
}

export function parseClientsFile(text: string, file: string): ClientsFile {
  const problems: ErrorDetail[] = [];
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new GatewayError('config_invalid', `${file}: not valid YAML: ${(err as Error).message}`);
  }
  const root = (doc ?? {}) as { sample?: unknown; clients?: unknown };
  if (typeof root !== 'object' || !Array.isArray(root.clients)) {
    throw new GatewayError('config_invalid', `${file}: expected a top-level "clients" list`);
  }
  const seen = new Set<string>();
  const clients: ClientsFile['clients'] = [];
  root.clients.forEach((raw: unknown, i: number) => {
    const c = (raw ?? {}) as Record<string, unknown>;
    const where = `${file}: clients[${i}]`;
    const id = c.id;
    const role = c.role as ClientRole;
    if (typeof id !== 'string' || !ID.test(id)) problems.push({ path: `${where}.id`, message: 'must be a lower-case id' });
    else if (seen.has(id)) problems.push({ path: `${where}.id`, message: `duplicate client id "${id}"` });
    else seen.add(id);
    if (!CLIENT_ROLES.includes(role)) problems.push({ path: `${where}.role`, message: `must be one of ${CLIENT_ROLES.join(', ')}` });
    for (const scope of ['partner', 'source', 'peer'] as const) {
      const v = c[scope];
      if (v !== undefined && (typeof v !== 'string' || !ID.test(v))) problems.push({ path: `${where}.${scope}`, message: 'must be an id' });
      if (role === scope && typeof v !== 'string') problems.push({ path: `${where}.${scope}`, message: `a ${role} client must name its ${scope}` });
      if (role !== scope && v !== undefined) problems.push({ path: `${where}.${scope}`, message: `only a ${scope} client names a ${scope}` });
    }
    const tokens = c.tokens;
    if (!Array.isArray(tokens) || tokens.length < 1 || tokens.length > 2 || !tokens.every((t) => typeof t === 'string' && HASH.test(t))) {
      problems.push({ path: `${where}.tokens`, message: 'must list one or two "sha256:<hex>" token hashes (never a token itself)' });
    }
    const extra = Object.keys(c).filter((k) => !['id', 'role', 'partner', 'source', 'peer', 'tokens'].includes(k));
    if (extra.length) problems.push({ path: where, message: `unknown keys: ${extra.join(', ')}` });
    clients.push({ ...(c as unknown as Client), tokens: (tokens as string[]) ?? [] });
  });
  if (problems.length) throw new GatewayError('config_invalid', `${file}: ${problems.length} problem(s) in the clients file`, problems);
  return { sample: root.sample === true, clients };
}

/** The ids a client may speak for: the partners, sources and peers of the policy set. */
export interface KnownScopes {
  partner: ReadonlySet<string>;
  source: ReadonlySet<string>;
  peer: ReadonlySet<string>;
}

/** One problem per partner, source or peer a client names that the policy set does not have. */
export function unknownScopes(client: Client, known: KnownScopes): ErrorDetail[] {
  const problems: ErrorDetail[] = [];
  for (const scope of ['partner', 'source', 'peer'] as const) {
    const id = client[scope];
    if (id === undefined || known[scope].has(id)) continue;
    const have = [...known[scope]].sort();
    problems.push({ path: scope, message: `no ${scope} "${id}" in the policy set (${have.length ? `known: ${have.join(', ')}` : `it has no ${scope}s`})` });
  }
  return problems;
}

export async function loadClientsFile(file: string): Promise<ClientsFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new GatewayError('config_invalid', `cannot read the clients file ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  return parseClientsFile(text, file);
}

/** Resolves bearer tokens to clients; every stored hash is compared so timing reveals nothing. */
export class ClientRegistry {
  private readonly entries: Array<{ hash: Buffer; client: Client }>;

  constructor(file: ClientsFile) {
    this.entries = file.clients.flatMap(({ tokens, ...client }) =>
      tokens.map((t) => ({ hash: Buffer.from(t.slice('sha256:'.length), 'hex'), client })),
    );
  }

  authenticate(token: string): Client | undefined {
    const presented = createHash('sha256').update(token, 'utf8').digest();
    let found: Client | undefined;
    for (const e of this.entries) {
      if (timingSafeEqual(e.hash, presented) && !found) found = e.client;
    }
    return found;
  }
}
