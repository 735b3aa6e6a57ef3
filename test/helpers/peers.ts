/**
 * Two (or more) real gateways exchanging with each other, for the cross-border tests: a copy of the
 * sample policies and a state directory per side, peer files pointing at the other side's gateway key
 * and URL, clients files with the peers' credentials, and the decryption the tests share.
 */
import { cp, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { hashToken } from '../../gateway/config/clients.js';
import { decryptAndVerify, loadOrCreateGatewayKey, parseArmoredPrivateKey, type GatewayKey } from '../../gateway/crypto/openpgp.js';
import { freePort } from '../../gateway/store/private-redis.js';
import { ROOT } from './gateway.js';

export interface PreparedSide {
  policyDir: string;
  stateDir: string;
  key: GatewayKey;
  port: number;
}

/** A side's policy copy and state directory under `tmp`, its gateway key, and a free port. */
export async function prepareSide(tmp: string, name: string): Promise<PreparedSide> {
  const policyDir = path.join(tmp, `${name}-policies`);
  const stateDir = path.join(tmp, `${name}-state`);
  await cp(path.join(ROOT, 'policies'), policyDir, { recursive: true });
  await mkdir(path.join(stateDir, 'peers'), { recursive: true, mode: 0o700 });
  const key = await loadOrCreateGatewayKey(stateDir);
  return { policyDir, stateDir, key, port: await freePort() };
}

/** The sample clients file plus `extra` entries (YAML list items), written into `dir`. */
export async function clientsFile(dir: string, extra: string): Promise<string> {
  const file = path.join(dir, 'clients.yaml');
  const sample = await readFile(path.join(ROOT, 'policies/clients.sample.yaml'), 'utf8');
  await writeFile(file, sample.trimEnd() + '\n' + extra);
  return file;
}

/** A clients-file entry for a peer gateway's credential (for `clientsFile`'s `extra`). */
export function peerClient(id: string, peer: string, token: string): string {
  return `  - id: ${id}\n    role: peer\n    peer: ${peer}\n    tokens: ["${hashToken(token)}"]\n`;
}

/**
 * Writes `peers/<id>.yaml` pointing at a real peer gateway (its URL and gateway key), removing the
 * sample files in `remove`. The body (agreement, fields, rules) and the handling-condition codes it
 * enforces are the sample warwickshire peer's.
 */
export async function pointPeer(dir: string, remove: string[], id: string, name: string, url: string, key: GatewayKey, force = id): Promise<void> {
  for (const f of remove) await unlink(path.join(dir, f)).catch(() => undefined);
  const keyFile = `keys/${id}-gateway.asc`;
  await writeFile(path.join(dir, keyFile), key.publicArmored);
  const sample = await readFile(path.join(ROOT, 'policies/peers/warwickshire.yaml'), 'utf8');
  // The handling-condition codes the sample peer declares it enforces travel with the header.
  const enforces = /^ {2}enforcesConditions: .*$/m.exec(sample)?.[0];
  const header = `peer:\n  id: ${id}\n  name: ${name}\n  force: ${force}\n  url: ${url}\n  key:\n    file: ${keyFile}\n    fingerprint: "${key.fingerprint}"\n${enforces ? `${enforces}\n` : ''}`;
  await writeFile(path.join(dir, `peers/${id}.yaml`), header + sample.slice(sample.indexOf('\nagreement:')));
}

/** Decrypts a message as `owner` (a test fixture key) and checks it is signed by `signer`; parses the JSON. */
export async function openAs(owner: string, armored: string, signer: GatewayKey): Promise<any> {
  const priv = await parseArmoredPrivateKey(await readFile(path.join(ROOT, `test/fixtures/keys/${owner}.sec.asc`), 'utf8'));
  const { data } = await decryptAndVerify(armored, priv, [signer.publicKey]);
  return JSON.parse(data);
}
