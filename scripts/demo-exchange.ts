/**
 * `npm run demo:exchange`: two forces' gateways on loopback, each with its own private redis-server,
 * state directory and sample configuration — West Midlands (A) and Warwickshire (B), each pinning the
 * other's real gateway key. A's source pushes the example dossier with `requests.peers:
 * ["warwickshire"]`; B fans it out to its own partners; B's council housing pulls its packet and reports
 * a hit; the hit comes back to A's bundle, marked `via: warwickshire`. TEST keys and sample credentials
 * only: never real data. Needs redis-server on PATH.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- a demo reading JSON answers loosely */
import { cp, mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { hashToken, newToken } from '../gateway/config/clients.js';
import { loadConfig } from '../gateway/config/env.js';
import { decryptAndVerify, loadOrCreateGatewayKey, parseArmoredPrivateKey, type GatewayKey } from '../gateway/crypto/openpgp.js';
import { startGateway, type RunningGateway } from '../gateway/main.js';
import { freePort } from '../gateway/store/private-redis.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TOKENS = JSON.parse(await readFile(path.join(ROOT, 'test/fixtures/sample-tokens.json'), 'utf8')) as Record<string, string>;
const FPS = JSON.parse(await readFile(path.join(ROOT, 'test/fixtures/keys/fingerprints.json'), 'utf8')) as Record<string, string>;

const say = (line: string) => process.stdout.write(line + '\n');

async function call(base: string, method: string, route: string, token: string, body?: unknown, type = 'application/json') {
  const res = await fetch(base + route, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': type } : {}) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json };
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function open(owner: string, armored: string, signer: GatewayKey): Promise<any> {
  const priv = await parseArmoredPrivateKey(await readFile(path.join(ROOT, `test/fixtures/keys/${owner}.sec.asc`), 'utf8'));
  return JSON.parse((await decryptAndVerify(armored, priv, [signer.publicKey])).data);
}

async function side(tmp: string, name: string) {
  const policyDir = path.join(tmp, `${name}-policies`);
  const stateDir = path.join(tmp, `${name}-state`);
  await cp(path.join(ROOT, 'policies'), policyDir, { recursive: true });
  await mkdir(path.join(stateDir, 'peers'), { recursive: true, mode: 0o700 });
  return { policyDir, stateDir, key: await loadOrCreateGatewayKey(stateDir), port: await freePort() };
}

async function peerFile(dir: string, id: string, name: string, url: string, key: GatewayKey) {
  await writeFile(path.join(dir, `keys/${id}-gateway.asc`), key.publicArmored);
  const sample = await readFile(path.join(ROOT, 'policies/peers/warwickshire.yaml'), 'utf8');
  const header = `peer:\n  id: ${id}\n  name: ${name}\n  force: ${id}\n  url: ${url}\n  key:\n    file: keys/${id}-gateway.asc\n    fingerprint: "${key.fingerprint}"\n`;
  await writeFile(path.join(dir, `peers/${id}.yaml`), header + sample.slice(sample.indexOf('\nagreement:')));
}

async function main() {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'cordon-demo-exchange-'));
  const running: RunningGateway[] = [];
  try {
    const a = await side(tmp, 'west-midlands');
    const b = await side(tmp, 'warwickshire');
    const aUrl = `http://127.0.0.1:${a.port}`;
    const bUrl = `http://127.0.0.1:${b.port}`;
    await unlink(path.join(a.policyDir, 'peers/warwickshire.yaml'));
    await peerFile(a.policyDir, 'warwickshire', 'Warwickshire Police', bUrl, b.key);
    await unlink(path.join(b.policyDir, 'peers/warwickshire.yaml'));
    await unlink(path.join(b.policyDir, 'sources/west-midlands.yaml'));
    await writeFile(
      path.join(b.policyDir, 'sources/warwickshire.yaml'),
      `source:\n  id: warwickshire\n  name: Warwickshire Police\n  key:\n    file: keys/warwickshire.asc\n    fingerprint: "${FPS.warwickshire}"\n`,
    );
    await peerFile(b.policyDir, 'west-midlands', 'West Midlands Police', aUrl, a.key);
    const aToB = newToken();
    const bToA = newToken();
    const sample = (await readFile(path.join(ROOT, 'policies/clients.sample.yaml'), 'utf8')).trimEnd() + '\n';
    await writeFile(path.join(a.stateDir, 'clients.yaml'), sample + `  - id: warwickshire-gateway\n    role: peer\n    peer: warwickshire\n    tokens: ["${hashToken(bToA)}"]\n`);
    await writeFile(path.join(b.stateDir, 'clients.yaml'), sample + `  - id: west-midlands-gateway\n    role: peer\n    peer: west-midlands\n    tokens: ["${hashToken(aToB)}"]\n`);
    await writeFile(path.join(a.stateDir, 'peers/warwickshire.token'), aToB, { mode: 0o600 });
    await writeFile(path.join(b.stateDir, 'peers/west-midlands.token'), bToA, { mode: 0o600 });

    const start = (s: typeof a) =>
      startGateway(
        { ...loadConfig({ CORDON_POLICY_DIR: s.policyDir }, ROOT), port: s.port, redisUrl: undefined, stateDir: s.stateDir, clientsFile: path.join(s.stateDir, 'clients.yaml'), logLevel: 'silent' },
        pino({ level: 'silent' }),
      );
    running.push(await start(a), await start(b));
    say(`West Midlands gateway  ${aUrl}  key ${a.key.fingerprint}`);
    say(`Warwickshire gateway   ${bUrl}  key ${b.key.fingerprint}`);

    const dossier = JSON.parse(await readFile(path.join(ROOT, 'examples/dossier-full.json'), 'utf8'));
    dossier.requests = { ...(dossier.requests ?? { checks: ['addresses'] }), peers: ['warwickshire'] };
    const force = TOKENS['west-midlands-rocu']!;
    const sent = await call(aUrl, 'POST', '/v1/dossiers', force, dossier);
    if (sent.status !== 202) throw new Error(`push refused: ${sent.text}`);
    const id = sent.json.id as string;
    say(`\n1. West Midlands pushed ${id} asking for a cross-border check with warwickshire`);
    const peer = await until('the envelope to be sent', async () => {
      const s = await call(aUrl, 'GET', `/v1/dossiers/${id}`, force);
      const p = s.json?.peers?.[0];
      return p && p.state !== 'queued' ? p : undefined;
    });
    say(`2. envelope ${peer.envelopeId} to warwickshire: ${peer.state}${peer.reason ? ` (${peer.reason})` : ''}; dossier there: ${peer.remoteDossier}`);

    const housing = TOKENS['council-housing']!;
    const listed = await until('a packet for Warwickshire council housing', async () => (await call(bUrl, 'GET', '/v1/packets', housing)).json?.packets?.[0]);
    const packet = await open('council-housing', (await call(bUrl, 'GET', `/v1/packets/${listed.id}`, housing)).text, b.key);
    const subjects = (packet.dossier.subjects ?? []) as any[];
    say(`3. Warwickshire council housing decrypted ${listed.id}: ${subjects.length} subjects (${subjects.map((s) => s.name?.given).join(', ')}), under Warwickshire's own policy`);
    const daniel = subjects.find((s) => s.name?.given === 'Daniel') ?? subjects[0];
    const hits = await call(bUrl, 'POST', `/v1/packets/${listed.id}/hits`, housing, {
      schema: 'cordon.hits/v1',
      packet: listed.id,
      hits: [{ subject: daniel.id, kind: 'tenancy', detail: { line1: '4 Mill Lane', town: 'Nuneaton', postcode: 'CV11 4AB', tenure: 'council' }, matchedOn: ['name', 'dateOfBirth'], confidence: 'confirmed', partnerRecordRef: 'NBBC-7731' }],
    });
    say(`4. it reported a tenancy hit on ${daniel.id}: ${hits.status} ${JSON.stringify(hits.json)}`);

    const bundle = await until('the hit in the West Midlands bundle', async () => {
      const r = await call(aUrl, 'GET', `/v1/dossiers/${id}/hits`, force);
      if (r.status !== 200) return undefined;
      const b = await open('west-midlands', r.text, a.key);
      return b.bundle.count > 0 ? b : undefined;
    });
    say(`5. West Midlands bundle for ${id} (decrypted with its own key):`);
    say(JSON.stringify(bundle.subjects, null, 2));
  } finally {
    for (const gw of running.reverse()) await gw.close().catch(() => undefined);
    await rm(tmp, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`demo:exchange failed: ${err.message}\n`);
    process.exit(1);
  },
);
