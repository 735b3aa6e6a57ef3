/**
 * Transport for the exchange: POSTs to a peer gateway over HTTPS with the peer's pinned CA (when its
 * file names one: then only that CA is trusted) and this gateway's client certificate
 * (`CORDON_STATE_DIR/tls/client.crt` + `client.key`, when present) for mutual TLS; plain HTTP only to
 * loopback (the policy schema refuses anything else). And the server side: `CORDON_TLS_CERT` and
 * `CORDON_TLS_KEY` (read and checked with the other settings, config/env.ts) make the API listen on
 * HTTPS and ask every client for a certificate, which the exchange route checks against the peer's
 * pinned `tls.clientCertFingerprint`. A peer's answer is read within one overall deadline and up to
 * 64 KiB (MAX_PEER_RESPONSE_BYTES): a slow or flooding peer cannot hold or fill a worker.
 */
import { readFile } from 'node:fs/promises';
import http from 'node:http';
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

/** The most of a peer's answer that is read: an envelope receipt is a few hundred bytes. */
export const MAX_PEER_RESPONSE_BYTES = 64 * 1024;

/**
 * POSTs `body` to the peer and reads its answer, within `timeoutMs` for the whole exchange (connect,
 * send, headers and body): a peer that dribbles its answer, or never finishes it, is cut off at the
 * deadline, and one that sends more than MAX_PEER_RESPONSE_BYTES is cut off there. Either rejects
 * (the exchange job is retried, then dead-lettered with that reason). No redirect is followed.
 */
export async function postToPeer(peer: PeerPolicy['peer'], route: string, headers: Record<string, string>, body: string, stateDir: string, timeoutMs: number): Promise<PostResult> {
  const url = new URL(route, peer.url + '/');
  const secure = url.protocol === 'https:';
  const identity = secure ? await clientIdentity(stateDir) : undefined;
  const options: https.RequestOptions = {
    method: 'POST',
    headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
    timeout: timeoutMs,
    ...(secure
      ? {
          ...(peer.tls?.ca ? { ca: peer.tls.ca } : {}),
          ...(identity ? { cert: identity.cert, key: identity.key } : {}),
          minVersion: 'TLSv1.2' as const,
        }
      : {}),
  };
  return new Promise<PostResult>((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | undefined, result?: PostResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      if (err) reject(err);
      else resolve(result!);
    };
    const req = (secure ? https.request : http.request)(url, options, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_PEER_RESPONSE_BYTES) {
          const err = new Error(`the answer from ${url.host} is larger than ${MAX_PEER_RESPONSE_BYTES} bytes: abandoned`);
          finish(err);
          req.destroy(err);
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => finish(err));
      res.on('aborted', () => finish(new Error(`the answer from ${url.host} was cut off`)));
    });
    // The whole exchange, not just each read: a peer trickling bytes never resets this.
    const deadline = setTimeout(() => {
      const err = new Error(`no complete answer from ${url.host} within ${timeoutMs} ms: abandoned`);
      finish(err);
      req.destroy(err);
    }, timeoutMs);
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url.host} within ${timeoutMs} ms`)));
    req.on('error', (err) => finish(err));
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
