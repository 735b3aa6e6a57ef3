/** `cordon keys import|list`: public keys live beside the policies, pinned by fingerprint in each file. */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { readPublicKeyInfo, normaliseFingerprint } from '../../gateway/crypto/openpgp.js';
import { GatewayError } from '../../gateway/errors/index.js';

type Kind = 'partner' | 'source' | 'peer';
const FOLDER: Record<Kind, string> = { partner: 'partners', source: 'sources', peer: 'peers' };
const ID = /^[a-z0-9][a-z0-9-]{0,63}$/;

export async function keysImport(o: { partner?: string; source?: string; peer?: string; file: string; policies: string }): Promise<void> {
  const chosen = (['partner', 'source', 'peer'] as const).filter((k) => o[k] !== undefined);
  if (chosen.length !== 1) throw new GatewayError('config_invalid', 'name exactly one of --partner, --source or --peer');
  const kind = chosen[0]!;
  const id = o[kind]!;
  if (!ID.test(id)) throw new GatewayError('config_invalid', `"${id}" is not a valid id`);
  const configFile = path.join(o.policies, FOLDER[kind], `${id}.yaml`);
  let text: string;
  try {
    text = await readFile(configFile, 'utf8');
  } catch {
    throw new GatewayError('config_invalid', `${configFile} does not exist: create the ${kind}'s configuration first`);
  }
  const armored = await readFile(o.file, 'utf8');
  const info = await readPublicKeyInfo(armored);
  if (info.isPrivate) throw new GatewayError('key_invalid', 'this is a PRIVATE key: import only the public key (gpg --export --armor)');
  if (info.revoked) throw new GatewayError('key_invalid', 'this key is revoked');
  if (info.expiresAt && info.expiresAt.getTime() <= Date.now()) throw new GatewayError('key_invalid', `this key expired on ${info.expiresAt.toISOString()}`);

  const relative = `keys/${id}.asc`;
  await writeFile(path.join(o.policies, relative), armored.endsWith('\n') ? armored : armored + '\n');
  const doc = YAML.parseDocument(text);
  doc.setIn([kind, 'key', 'file'], relative);
  doc.setIn([kind, 'key', 'fingerprint'], info.fingerprint);
  await writeFile(configFile, doc.toString());
  process.stdout.write(`imported ${info.userIds.join(', ')}\n  fingerprint ${info.fingerprint}\n  pinned in ${configFile}\n`);
}

export async function keysList(dir: string): Promise<void> {
  const rows: string[][] = [['kind', 'id', 'fingerprint (pinned)', 'state', 'expires']];
  for (const kind of ['partner', 'source', 'peer'] as const) {
    const files = await readdir(path.join(dir, FOLDER[kind])).then(
      (names) => names.filter((f) => f.endsWith('.yaml')).sort(),
      () => [] as string[],
    );
    for (const f of files) {
      const doc = YAML.parse(await readFile(path.join(dir, FOLDER[kind], f), 'utf8')) as Record<string, { key?: { file?: unknown; fingerprint?: unknown } }> | null;
      const key = doc?.[kind]?.key ?? {};
      const pinned = typeof key.fingerprint === 'string' ? normaliseFingerprint(key.fingerprint) : '';
      let state = 'ok';
      let expires = 'never';
      try {
        const info = await readPublicKeyInfo(await readFile(path.join(dir, String(key.file)), 'utf8'));
        if (info.isPrivate) state = 'PRIVATE KEY (remove it)';
        else if (info.fingerprint !== pinned) state = `MISMATCH (file has ${info.fingerprint})`;
        else if (info.revoked) state = 'REVOKED';
        else if (info.expiresAt && info.expiresAt.getTime() <= Date.now()) state = 'EXPIRED';
        if (info.expiresAt) expires = info.expiresAt.toISOString().slice(0, 10);
      } catch {
        state = `MISSING or unreadable (${key.file})`;
      }
      rows.push([kind, f.replace(/\.yaml$/, ''), pinned || '(none)', state, expires]);
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd() + '\n');
}
