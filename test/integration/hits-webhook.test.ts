/**
 * Webhook notices, as the force's receiver sees them: a real gateway process (its own TLS trust set
 * through NODE_EXTRA_CA_CERTS), a real HTTPS receiver with a throwaway certificate that fails the first
 * delivery, and the notice decrypted and verified with the force's key. It carries the dossier id and
 * a count, nothing else.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decryptAndVerify, parseArmoredPrivateKey, parseArmoredPublicKey } from '../../gateway/crypto/openpgp.js';
import { api, deleteKeys, fixture, REDIS_URL, ROOT, TOKENS, waitSettled } from '../helpers/gateway.js';

let dir: string;
let child: ChildProcess;
let receiver: https.Server;
let base: string;
let prefix: string;
let output = '';
const received: Array<{ headers: Record<string, unknown>; body: string; answered: number }> = [];

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cordon-webhook-'));
  const key = path.join(dir, 'tls.key');
  const cert = path.join(dir, 'tls.crt');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert,
  ], { stdio: 'ignore' });

  receiver = https.createServer({ key: await readFile(key), cert: await readFile(cert) }, (req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const answered = received.length === 0 ? 503 : 204; // the first delivery fails: the job must retry
      received.push({ headers: req.headers, body, answered });
      res.writeHead(answered).end();
    });
  });
  const hookPort = await new Promise<number>((resolve) => receiver.listen(0, '127.0.0.1', () => resolve((receiver.address() as net.AddressInfo).port)));

  const policies = path.join(dir, 'policies');
  await cp(path.join(ROOT, 'policies'), policies, { recursive: true });
  const sourceFile = path.join(policies, 'sources/west-midlands.yaml');
  await writeFile(sourceFile, `${await readFile(sourceFile, 'utf8')}  webhook: https://127.0.0.1:${hookPort}/cordon/hits\n`);

  prefix = `cordon-test-${randomBytes(4).toString('hex')}`;
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  child = spawn(process.execPath, ['--import', 'tsx', 'gateway/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      REDIS_URL,
      CORDON_STATE_DIR: path.join(dir, 'state'),
      CORDON_REDIS_PREFIX: prefix,
      CORDON_POLICY_DIR: policies,
      CORDON_CLIENTS: path.join(ROOT, 'policies/clients.sample.yaml'),
      NODE_EXTRA_CA_CERTS: cert,
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (await fetch(`${base}/readyz`).then((r) => r.status === 200, () => false)) break;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`gateway did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
  receiver?.close();
  const redis = new Redis(REDIS_URL);
  await deleteKeys(redis, prefix);
  await redis.quit();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('webhook notice when new hits arrive', () => {
  it('POSTs a signed notice encrypted to the force (dossier id and count only), retrying until it is taken', async () => {
    const force = TOKENS['west-midlands-rocu']!;
    const pushed = await api(base, 'POST', '/v1/dossiers', force, fixture('dossier-full.json'));
    const dossierId = pushed.json.id as string;
    const status = await waitSettled(base, dossierId);
    const packetId = status.deliveries.find((d: any) => d.partner === 'council-housing').packetId as string;
    const gatewayKey = await parseArmoredPublicKey((await api(base, 'GET', '/v1/keys/gateway')).text);
    const council = await parseArmoredPrivateKey(await readFile(path.join(ROOT, 'test/fixtures/keys/council-housing.sec.asc'), 'utf8'));
    const packet = JSON.parse((await decryptAndVerify((await api(base, 'GET', `/v1/packets/${packetId}`, TOKENS['council-housing'])).text, council, [gatewayKey])).data);
    const subject = packet.dossier.subjects.find((s: any) => s.name.given === 'Daniel').id;
    const hits = {
      schema: 'cordon.hits/v1',
      packet: packetId,
      hits: [{ subject, kind: 'tenancy', detail: { line1: '18 Cedar Road', postcode: 'CV6 5HX' }, matchedOn: ['name'], confidence: 'confirmed', partnerRecordRef: 'HSG-1' }],
    };
    const res = await api(base, 'POST', `/v1/packets/${packetId}/hits`, TOKENS['council-housing'], hits);
    expect(res.status).toBe(202);

    const deadline = Date.now() + 30_000;
    while (!received.some((r) => r.answered === 204)) {
      if (Date.now() > deadline) throw new Error(`no notice delivered: ${JSON.stringify(received.map((r) => r.answered))}\n${output}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(received[0]!.answered).toBe(503);
    const delivered = received.find((r) => r.answered === 204)!;
    expect(delivered.headers['content-type']).toBe('application/pgp-encrypted');
    expect(delivered.body).toContain('-----BEGIN PGP MESSAGE-----');
    expect(delivered.body).not.toContain(dossierId); // even the id travels encrypted

    const forceKey = await parseArmoredPrivateKey(await readFile(path.join(ROOT, 'test/fixtures/keys/west-midlands.sec.asc'), 'utf8'));
    const notice = JSON.parse((await decryptAndVerify(delivered.body, forceKey, [gatewayKey])).data);
    expect(notice).toEqual({ event: 'hits.available', dossier: dossierId, count: 1, at: expect.any(String) });

    // A resubmission stores nothing new, so nobody is notified again.
    const before = received.length;
    expect((await api(base, 'POST', `/v1/packets/${packetId}/hits`, TOKENS['council-housing'], hits)).json.accepted).toBe(0);
    await new Promise((r) => setTimeout(r, 1000));
    expect(received.length).toBe(before);
  });
});
