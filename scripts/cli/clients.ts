/** `cordon clients add`: prints the new token and only the token; the file keeps its hash. */
import { readFile, writeFile } from 'node:fs/promises';
import YAML from 'yaml';
import { CLIENT_ROLES, hashToken, newToken, parseClientsFile, type ClientRole } from '../../gateway/config/clients.js';
import { GatewayError } from '../../gateway/errors/index.js';

export async function clientsAdd(o: { id: string; role: string; partner?: string; source?: string; peer?: string; clients: string }): Promise<void> {
  if (!CLIENT_ROLES.includes(o.role as ClientRole)) throw new GatewayError('config_invalid', `--role must be one of ${CLIENT_ROLES.join(', ')}`);
  let text = 'clients: []\n';
  try {
    text = await readFile(o.clients, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const existing = parseClientsFile(text, o.clients);
  if (existing.clients.some((c) => c.id === o.id)) throw new GatewayError('config_invalid', `a client "${o.id}" already exists in ${o.clients}`);
  const token = newToken();
  const entry: Record<string, unknown> = { id: o.id, role: o.role };
  for (const scope of ['partner', 'source', 'peer'] as const) if (o[scope]) entry[scope] = o[scope];
  entry.tokens = [hashToken(token)];
  const doc = YAML.parseDocument(text);
  if (!YAML.isSeq(doc.get('clients'))) doc.set('clients', doc.createNode([]));
  (doc.get('clients') as YAML.YAMLSeq).add(doc.createNode(entry));
  // Validate the result before writing: a bad entry never lands in the file.
  parseClientsFile(doc.toString(), o.clients);
  await writeFile(o.clients, doc.toString(), { mode: 0o600 });
  process.stdout.write(token + '\n');
}

/**
 * `cordon clients rotate --id ID`: adds a second token (printed, only it) while the old one still
 * works, so the client can switch without downtime; `--finish` then drops the older token.
 */
export async function clientsRotate(o: { id: string; finish?: boolean; clients: string }): Promise<void> {
  const text = await readFile(o.clients, 'utf8');
  const file = parseClientsFile(text, o.clients);
  const index = file.clients.findIndex((c) => c.id === o.id);
  if (index < 0) throw new GatewayError('config_invalid', `no client "${o.id}" in ${o.clients}`);
  const tokens = file.clients[index]!.tokens;
  const doc = YAML.parseDocument(text);
  let output = '';
  if (o.finish) {
    if (tokens.length < 2) throw new GatewayError('config_invalid', `client "${o.id}" is not being rotated (it has one token)`);
    doc.setIn(['clients', index, 'tokens'], doc.createNode([tokens[1]]));
  } else {
    if (tokens.length >= 2) throw new GatewayError('config_invalid', `client "${o.id}" is already being rotated: finish it first (--finish)`);
    const token = newToken();
    doc.setIn(['clients', index, 'tokens'], doc.createNode([tokens[0], hashToken(token)]));
    output = token + '\n';
  }
  parseClientsFile(doc.toString(), o.clients); // never write a file the gateway would refuse
  await writeFile(o.clients, doc.toString(), { mode: 0o600 });
  process.stdout.write(output);
}
