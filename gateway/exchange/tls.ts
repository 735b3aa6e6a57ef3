/**
 * Transport for the exchange: POSTs to a peer gateway over HTTPS with the peer's pinned CA (when its
 * file names one: then only that CA is trusted) and this gateway's client certificate
 * (`CORDON_STATE_DIR/tls/client.crt` + `client.key`, when present) for mutual TLS; plain HTTP only to
 * loopback (the policy schema refuses anything else). And the server side: `CORDON_TLS_CERT` and
 * `CORDON_TLS_KEY` (read and checked with the other settings, config/env.ts) make the API listen on
 * HTTPS and ask every client for a certificate, which the exchange route checks against the peer's
 * pinned `tls.clientCertFingerprint`.
 */
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import type { ServerTls } from '../config/env.js';
import type { PeerPolicy } from '../policy/types.js';

export interface PostResult {
  status: number;
  text: string;
}

async function clientIdentity(stateDir: string): Promise<{ cert: string; key: string } | undefined> {
  try {
    const [cert, key] = await Promise.all([
      readFile(path.join(stateDir, 'tls', 'client.crt'), 'utf8'),
      readFile(path.join(stateDir, 'tls', 'client.key'), 'utf8'),
    ]);
    return { cert, key };
  } catch {
    return undefined;
  }
}

export async function postToPeer(peer: PeerPolicy['peer'], route: string, headers: Record<string, string>, body: string, stateDir: string, timeoutMs: number): Promise<PostResult> {
  const url = new URL(route, peer.url + '/');
  if (url.protocol === 'http:') {
    const res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
    return { status: res.status, text: await res.text() };
  }
  const identity = await clientIdentity(stateDir);
  return new Promise<PostResult>((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        ...(peer.tls?.ca ? { ca: peer.tls.ca } : {}),
        ...(identity ? { cert: identity.cert, key: identity.key } : {}),
        timeout: timeoutMs,
        minVersion: 'TLSv1.2',
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url.host} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** HTTPS server options for the API's certificate and key (`CORDON_TLS_CERT` / `CORDON_TLS_KEY`, read and checked in config/env.ts). */
export function serverTlsOptions(tls: Pick<ServerTls, 'cert' | 'key'>): https.ServerOptions {
  return {
    cert: tls.cert,
    key: tls.key,
    // Every client is asked for a certificate; the exchange route pins peers' by fingerprint.
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
  };
}
