/**
 * The POST to a peer gateway (gateway/exchange/tls.ts) against real loopback HTTP servers playing a
 * misbehaving peer: an answer larger than 64 KiB is abandoned at the cap, an answer dribbled a byte at
 * a time is abandoned at the overall deadline (each byte would reset a mere idle timeout), and a
 * well-behaved answer still comes back whole. Through the exchange context, either failure is a
 * retryable error (not a peer refusal), so the job is retried and then dead-lettered with the reason.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type ServerResponse } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postToPeer } from '../../gateway/exchange/tls.js';
import type { PeerPolicy } from '../../gateway/policy/types.js';
import { freePort } from '../../gateway/store/private-redis.js';

let server: Server;
let base: string;
let stateDir: string;
const MAX_PEER_RESPONSE_BYTES = 65536;
const open = new Set<ServerResponse>();
/** How the server answers, by path. */
const behaviours: Record<string, (res: ServerResponse) => void> = {
  '/flood/v1/exchange/inbound': (res) => {
    res.writeHead(202, { 'content-type': 'application/json' });
    const chunk = Buffer.alloc(16 * 1024, 0x61);
    // Far more than the cap, as fast as the socket takes it.
    let sent = 0;
    const pump = () => {
      while (sent < 4 * 1024 * 1024) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  },
  '/dribble/v1/exchange/inbound': (res) => {
    res.writeHead(202, { 'content-type': 'application/json' });
    open.add(res);
    const timer = setInterval(() => res.write(' '), 50);
    res.on('close', () => clearInterval(timer));
  },
  '/fine/v1/exchange/inbound': (res) => {
    res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ type: 'dossier', id: 'dos_' + '0'.repeat(32) }));
  },
};

function peer(route: string): PeerPolicy['peer'] {
  return { id: 'warwickshire', name: 'Warwickshire Police', force: 'warwickshire', url: `${base}/${route}`, key: { file: 'keys/warwickshire.asc', fingerprint: 'X' }, competentAuthority: true };
}

beforeAll(async () => {
  stateDir = await mkdtemp(path.join(os.tmpdir(), 'cordon-transport-'));
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => (behaviours[req.url ?? ''] ?? ((r: ServerResponse) => r.writeHead(404).end()))(res));
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  for (const res of open) res.destroy();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  await rm(stateDir, { recursive: true, force: true });
});

describe('the POST to a peer gateway reads a bounded answer within one deadline', () => {
  it('an answer over 64 KiB is abandoned at the cap', async () => {
    const started = Date.now();
    const err = await postToPeer(peer('flood'), 'v1/exchange/inbound', { 'content-type': 'application/pgp-encrypted' }, 'x', stateDir, 10_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain(`larger than ${MAX_PEER_RESPONSE_BYTES} bytes`);
    expect(MAX_PEER_RESPONSE_BYTES).toBe(64 * 1024);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('an answer dribbled a byte every 50 ms is abandoned at the overall deadline, not kept alive by each byte', async () => {
    const started = Date.now();
    const err = await postToPeer(peer('dribble'), 'v1/exchange/inbound', { 'content-type': 'application/pgp-encrypted' }, 'x', stateDir, 600).catch((e: unknown) => e);
    const took = Date.now() - started;
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/no complete answer .* within 600 ms/);
    expect(took).toBeGreaterThanOrEqual(550);
    expect(took).toBeLessThan(3_000);
  });

  it('a well-behaved peer answers as before', async () => {
    const res = await postToPeer(peer('fine'), 'v1/exchange/inbound', { 'content-type': 'application/pgp-encrypted' }, 'x', stateDir, 5_000);
    expect(res.status).toBe(202);
    expect(JSON.parse(res.text)).toMatchObject({ type: 'dossier' });
  });
});
