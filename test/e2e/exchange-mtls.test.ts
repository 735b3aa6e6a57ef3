/**
 * Mutual TLS between peer gateways, on top of the OpenPGP signature: B listens on HTTPS
 * (CORDON_TLS_CERT/KEY) and pins West Midlands' client certificate; A trusts only the CA named in its
 * peer file and presents its client certificate from CORDON_STATE_DIR/tls. Without the certificate the
 * peer credential alone is refused.
 */
import { execFileSync } from 'node:child_process';
import https from 'node:https';
import { cp, mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken, newToken } from '../../gateway/config/clients.js';
import { loadConfig } from '../../gateway/config/env.js';
import { loadOrCreateGatewayKey, type GatewayKey } from '../../gateway/crypto/openpgp.js';
import { freePort } from '../../gateway/store/private-redis.js';
import { api, fixture, ROOT, startTestGateway, TOKENS, waitSettled, type TestGateway } from '../helpers/gateway.js';

const FPS = JSON.parse(await readFile(path.join(ROOT, 'test/fixtures/keys/fingerprints.json'), 'utf8')) as Record<string, string>;
let tmp: string;
let A: TestGateway;
let B: TestGateway;
let ca: string;
const tokenAtoB = newToken();

function openssl(args: string[], cwd: string): string {
  return execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

/** A CA, B's server certificate for 127.0.0.1, and A's client certificate; returns A's cert fingerprint. */
function makeCerts(dir: string): string {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Cordon test peer CA'], dir);
  for (const [name, ext] of [
    ['server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth'],
    ['client', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=cordon-${name}`], dir);
    execFileSync('sh', ['-c', `printf '${ext}\\n' > ${name}.ext`], { cwd: dir });
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`], dir);
  }
  const out = openssl(['x509', '-in', 'client.crt', '-noout', '-fingerprint', '-sha256'], dir);
  return out.trim().split('=')[1]!;
}

async function policyCopy(name: string): Promise<string> {
  const dir = path.join(tmp, `${name}-policies`);
  await cp(path.join(ROOT, 'policies'), dir, { recursive: true });
  await unlink(path.join(dir, 'peers/warwickshire.yaml'));
  return dir;
}

async function peerFile(dir: string, id: string, url: string, key: GatewayKey, tls: string) {
  await writeFile(path.join(dir, `keys/${id}-gateway.asc`), key.publicArmored);
  const sample = await readFile(path.join(ROOT, 'policies/peers/warwickshire.yaml'), 'utf8');
  const header = `peer:\n  id: ${id}\n  name: ${id}\n  force: ${id}\n  url: ${url}\n  key:\n    file: keys/${id}-gateway.asc\n    fingerprint: "${key.fingerprint}"\n${tls}`;
  await writeFile(path.join(dir, `peers/${id}.yaml`), header + sample.slice(sample.indexOf('\nagreement:')));
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'cordon-mtls-'));
  const certs = path.join(tmp, 'certs');
  await mkdir(certs);
  const clientFp = makeCerts(certs);
  ca = await readFile(path.join(certs, 'ca.pem'), 'utf8');
  const aState = path.join(tmp, 'a-state');
  const bState = path.join(tmp, 'b-state');
  await mkdir(path.join(aState, 'tls'), { recursive: true, mode: 0o700 });
  await mkdir(path.join(aState, 'peers'), { recursive: true, mode: 0o700 });
  await mkdir(bState, { recursive: true, mode: 0o700 });
  await cp(path.join(certs, 'client.crt'), path.join(aState, 'tls/client.crt'));
  await cp(path.join(certs, 'client.key'), path.join(aState, 'tls/client.key'));
  await writeFile(path.join(aState, 'peers/warwickshire.token'), tokenAtoB, { mode: 0o600 });
  const aKey = await loadOrCreateGatewayKey(aState);
  const bKey = await loadOrCreateGatewayKey(bState);
  const [aPort, bPort] = [await freePort(), await freePort()];

  const aDir = await policyCopy('a');
  await writeFile(path.join(aDir, 'keys/warwickshire-ca.pem'), ca);
  await peerFile(aDir, 'warwickshire', `https://127.0.0.1:${bPort}`, bKey, '  tls:\n    ca: keys/warwickshire-ca.pem\n');
  const bDir = await policyCopy('b');
  await unlink(path.join(bDir, 'sources/west-midlands.yaml'));
  await writeFile(path.join(bDir, 'sources/warwickshire.yaml'), `source:\n  id: warwickshire\n  name: Warwickshire Police\n  key:\n    file: keys/warwickshire.asc\n    fingerprint: "${FPS.warwickshire}"\n`);
  await peerFile(bDir, 'west-midlands', `http://127.0.0.1:${aPort}`, aKey, `  tls:\n    clientCertFingerprint: "${clientFp}"\n`);
  const sample = (await readFile(path.join(ROOT, 'policies/clients.sample.yaml'), 'utf8')).trimEnd() + '\n';
  const bClients = path.join(bState, 'clients.yaml');
  await writeFile(bClients, sample + `  - id: west-midlands-gateway\n    role: peer\n    peer: west-midlands\n    tokens: ["${hashToken(tokenAtoB)}"]\n`);

  // B alone listens on HTTPS: CORDON_TLS_CERT/KEY, read and checked with the other settings.
  const { tls } = loadConfig({ CORDON_TLS_CERT: path.join(certs, 'server.crt'), CORDON_TLS_KEY: path.join(certs, 'server.key') }, ROOT);
  expect(tls).toBeDefined();
  B = await startTestGateway({ policyDir: bDir, stateDir: bState, port: bPort, clientsFile: bClients, tls });
  A = await startTestGateway({ policyDir: aDir, stateDir: aState, port: aPort });
}, 60_000);

afterAll(async () => {
  await Promise.all([A?.stop(), B?.stop()]);
  await rm(tmp, { recursive: true, force: true });
});

describe('mutual TLS between peer gateways', () => {
  it('delivers over HTTPS with the pinned CA and the client certificate', async () => {
    expect(B.url).toMatch(/^https:/);
    const dossier = fixture('dossier-minimal.json') as any;
    dossier.requests = { checks: ['vehicles'], peers: ['warwickshire'] };
    const sent = await api(A.url, 'POST', '/v1/dossiers', TOKENS['west-midlands-rocu'], dossier);
    expect(sent.status).toBe(202);
    await waitSettled(A.url, sent.json.id);
    const deadline = Date.now() + 20_000;
    let peer: any;
    while (Date.now() < deadline) {
      peer = (await api(A.url, 'GET', `/v1/dossiers/${sent.json.id}`, TOKENS['west-midlands-rocu'])).json.peers?.[0];
      if (peer?.state === 'sent' || peer?.state === 'failed') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(peer).toMatchObject({ peer: 'warwickshire', state: 'sent' });
    expect(await B.redis.exists(`${B.prefix}:dossier:${peer.remoteDossier}`)).toBe(1);
  }, 30_000);

  it('refuses the peer credential without the pinned client certificate', async () => {
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = https.request(`${B.url}/v1/exchange/inbound`, { method: 'POST', ca, headers: { authorization: `Bearer ${tokenAtoB}`, 'content-type': 'application/pgp-encrypted' } }, (r) => {
        let body = '';
        r.on('data', (c) => (body += c));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end('-----BEGIN PGP MESSAGE-----\n\nxx\n-----END PGP MESSAGE-----\n');
    });
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body).error.code).toBe('forbidden');
  }, 30_000);
});
