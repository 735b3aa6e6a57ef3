/**
 * `cordon clients add`: prints the new token and only the token; the file keeps its hash. The file is
 * edited in place through yaml's Document API, written without line folding: existing entries, comments
 * and layout stay byte for byte, so its diff is the new entry alone (written like the sample file's,
 * tokens as a one-line list). The partner, source or peer a new client speaks for must exist in the
 * policy set (`--policies`): a typo would otherwise make a credential that can do nothing, or the
 * wrong thing once such an id is added.
 */
import { readFile, writeFile } from 'node:fs/promises';
import YAML from 'yaml';
import { CLIENT_ROLES, hashToken, newToken, parseClientsFile, unknownScopes, type Client, type ClientRole } from '../../gateway/config/clients.js';
import { GatewayError } from '../../gateway/errors/index.js';
import { loadPolicySet } from '../../gateway/policy/load.js';

/** No folding: a long token hash stays on its line, so an edit never rewrites entries it did not touch. */
const WRITE: YAML.ToStringOptions = { lineWidth: 0, flowCollectionPadding: false };

/** Token hashes as the sample file writes them: `["sha256:…"]` on one line. */
function tokenList(doc: YAML.Document, hashes: string[]): YAML.YAMLSeq {
  const seq = doc.createNode(hashes) as YAML.YAMLSeq<YAML.Scalar>;
  seq.flow = true;
  for (const t of seq.items) t.type = YAML.Scalar.QUOTE_DOUBLE;
  return seq;
}

export async function clientsAdd(o: { id: string; role: string; partner?: string; source?: string; peer?: string; clients: string; policies?: string }): Promise<void> {
  if (!CLIENT_ROLES.includes(o.role as ClientRole)) throw new GatewayError('config_invalid', `--role must be one of ${CLIENT_ROLES.join(', ')}`);
  let text = 'clients: []\n';
  try {
    text = await readFile(o.clients, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const existing = parseClientsFile(text, o.clients);
  if (existing.clients.some((c) => c.id === o.id)) throw new GatewayError('config_invalid', `a client "${o.id}" already exists in ${o.clients}`);
  const client: Client = { id: o.id, role: o.role as ClientRole };
  for (const scope of ['partner', 'source', 'peer'] as const) if (o[scope]) client[scope] = o[scope];
  if (o.policies !== undefined) {
    const set = await loadPolicySet(o.policies);
    const problems = unknownScopes(client, { partner: new Set(set.partners.keys()), source: new Set(set.sources.keys()), peer: new Set((set.peers ?? new Map()).keys()) });
    if (problems.length) throw new GatewayError('config_invalid', `${o.policies}: ${problems.map((p) => `--${p.path}: ${p.message}`).join('; ')}`, problems);
  }
  const token = newToken();
  const doc = YAML.parseDocument(text);
  if (!YAML.isSeq(doc.get('clients'))) doc.set('clients', doc.createNode([]));
  const entry = doc.createNode({ ...client }) as YAML.YAMLMap;
  entry.set('tokens', tokenList(doc, [hashToken(token)]));
  const list = doc.get('clients') as YAML.YAMLSeq;
  list.flow = false; // `clients: []` becomes a block list once it has an entry
  list.add(entry);
  const written = doc.toString(WRITE);
  // Validate the result before writing: a bad entry never lands in the file.
  parseClientsFile(written, o.clients);
  await writeFile(o.clients, written, { mode: 0o600 });
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
    doc.setIn(['clients', index, 'tokens'], tokenList(doc, [tokens[1]!]));
  } else {
    if (tokens.length >= 2) throw new GatewayError('config_invalid', `client "${o.id}" is already being rotated: finish it first (--finish)`);
    const token = newToken();
    doc.setIn(['clients', index, 'tokens'], tokenList(doc, [tokens[0]!, hashToken(token)]));
    output = token + '\n';
  }
  const written = doc.toString(WRITE);
  parseClientsFile(written, o.clients); // never write a file the gateway would refuse
  await writeFile(o.clients, written, { mode: 0o600 });
  process.stdout.write(output);
}
