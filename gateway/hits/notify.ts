/**
 * Webhook notices: when new hits arrive for a dossier whose source registered a `webhook` (https only),
 * the gateway POSTs a small notice — the dossier id and how many hits it now holds, nothing else — as
 * an OpenPGP message signed by the gateway and encrypted to the source's pinned key
 * (`application/pgp-encrypted`), so the receiver can check where it came from and nobody else can read
 * it. Delivery runs as a queued job (queue/notify-queue.ts; job data: the dossier id only) and is retried
 * with backoff until the receiver answers 2xx. The source then fetches the bundle with GET /v1/dossiers/:id/hits.
 */
import https from 'node:https';
import { encryptAndSign, type GatewayKey, type RecipientKey } from '../crypto/openpgp.js';
import type { LiveSet } from '../policy/live.js';
import type { DossierStore } from '../store/dossiers.js';
import type { SourceKeys } from './source-keys.js';
import type { HitStore } from './store.js';

export interface NotifierDeps {
  store: DossierStore;
  hitStore: HitStore;
  live: () => LiveSet<RecipientKey>;
  gatewayKey: GatewayKey;
  sourceKeys: SourceKeys;
  /** Extra trusted CA certificates (PEM) for the webhook's TLS, e.g. a private CA. */
  ca?: string | string[];
  timeoutMs?: number;
}

export interface Notice {
  event: 'hits.available';
  dossier: string;
  count: number;
  at: string;
}

export class HitNotifier {
  constructor(private readonly deps: NotifierDeps) {}

  /** Sends the notice for one dossier; throws (so the job is retried) unless the receiver answers 2xx. */
  async deliver(dossierId: string): Promise<'sent' | 'no_webhook' | 'gone'> {
    const record = await this.deps.store.get(dossierId);
    if (!record) return 'gone';
    const set = this.deps.live().set;
    const webhook = set.sources.get(record.source)?.source.webhook;
    if (!webhook) return 'no_webhook';
    const url = new URL(webhook);
    if (url.protocol !== 'https:') throw new Error('webhook URLs must use https');
    const now = new Date();
    const key = await this.deps.sourceKeys.get(set, record.source, now);
    const notice: Notice = { event: 'hits.available', dossier: dossierId, count: await this.deps.hitStore.count(dossierId), at: now.toISOString() };
    const message = await encryptAndSign(JSON.stringify(notice), key, this.deps.gatewayKey, now);
    const status = await post(url, message, this.deps.ca, this.deps.timeoutMs ?? 10_000);
    if (status < 200 || status > 299) throw new Error(`webhook ${url.host} answered ${status}`);
    return 'sent';
  }
}

function post(url: URL, body: string, ca: string | string[] | undefined, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/pgp-encrypted',
          'content-length': Buffer.byteLength(body),
          'user-agent': 'cordon-gateway',
          'x-cordon-event': 'hits.available',
        },
        timeout: timeoutMs,
        ...(ca ? { ca } : {}),
      },
      (res) => {
        res.resume(); // the answer's body is not needed
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`webhook ${url.host} did not answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}
