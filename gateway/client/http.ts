/**
 * The clients' side of the gateway's HTTP API (fetch only): bearer token, JSON errors read into a typed
 * error, retries where a retry is safe (the network, 429 and 503 with their Retry-After), and the exit
 * codes a scheduler acts on.
 */

/**
 * What went wrong, as a scheduler reads it. `config`: flags, keys, files (nothing was sent); `network`:
 * the gateway could not be reached or kept failing (retry later); `refused`: the gateway refused what
 * was sent, or something it sent was refused (a bad signature); `partial`: some of the work is done,
 * the next run resumes; `locked`: another run holds the lock.
 */
export type ClientErrorKind = 'config' | 'network' | 'refused' | 'partial' | 'locked';

/** Exit codes (documented in docs/partners.md). 1 stays for the unexpected. */
export const EXIT_CODES: Readonly<Record<'ok' | ClientErrorKind, number>> = Object.freeze({
  ok: 0,
  config: 2,
  network: 3,
  refused: 4,
  partial: 5,
  locked: 6,
});

export class ClientError extends Error {
  constructor(
    readonly kind: ClientErrorKind,
    message: string,
    /** The gateway's answer, when it gave one. */
    readonly gateway?: { status: number; code?: string; details?: Array<{ path?: string; message: string }>; requestId?: string },
  ) {
    super(message);
    this.name = 'ClientError';
  }
}

export interface HttpOptions {
  /** The gateway's base URL (`https://cordon.example`). */
  url: string;
  token: string;
  /** For tests and embedding; default the global fetch. */
  fetch?: typeof fetch;
  /** Attempts for a request that may be retried (default 4). */
  attempts?: number;
  /** Per-request timeout (default 30 s). */
  timeoutMs?: number;
  /** Longest wait between attempts (default 10 s). */
  maxBackoffMs?: number;
}

export interface HttpAnswer {
  status: number;
  contentType: string;
  text: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class GatewayHttp {
  readonly base: string;
  private readonly fetch: typeof fetch;

  constructor(private readonly o: HttpOptions) {
    let url: URL;
    try {
      url = new URL(o.url);
    } catch {
      throw new ClientError('config', `the gateway URL ${JSON.stringify(o.url)} is not a URL`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ClientError('config', `the gateway URL must be http(s), not ${url.protocol}`);
    if (!o.token) throw new ClientError('config', 'no token given (--token or CORDON_TOKEN)');
    this.base = o.url.replace(/\/+$/, '');
    this.fetch = o.fetch ?? fetch;
  }

  /**
   * One request; answers any status but retried ones. Every request may be retried: the routes the
   * clients use are idempotent on the gateway (an acknowledgement, the same hits or answers again are
   * counted as duplicates, never stored twice).
   */
  async request(method: string, route: string, body?: { type: string; data: string }): Promise<HttpAnswer> {
    const attempts = this.o.attempts ?? 4;
    let last = '';
    for (let attempt = 1; attempt <= attempts; attempt++) {
      let res: Response;
      try {
        res = await this.fetch(`${this.base}${route}`, {
          method,
          headers: { authorization: `Bearer ${this.o.token}`, accept: 'application/json, application/pgp-encrypted', ...(body ? { 'content-type': body.type } : {}) },
          ...(body ? { body: body.data } : {}),
          signal: AbortSignal.timeout(this.o.timeoutMs ?? 30_000),
          redirect: 'error',
        });
      } catch (err) {
        last = `cannot reach the gateway at ${this.base}: ${(err as Error).message}`;
        if (attempt < attempts) await sleep(this.backoff(attempt));
        continue;
      }
      const text = await res.text();
      if ((res.status === 429 || res.status === 503 || res.status === 502 || res.status === 504) && attempt < attempts) {
        const retryAfter = Number(res.headers.get('retry-after'));
        last = `${method} ${route}: ${res.status}`;
        await sleep(Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter * 1000, this.o.maxBackoffMs ?? 10_000) : this.backoff(attempt));
        continue;
      }
      return { status: res.status, contentType: res.headers.get('content-type') ?? '', text };
    }
    throw new ClientError('network', last || `${method} ${route} failed`);
  }

  /** A request that must answer 2xx: anything else is a ClientError (`refused` for 4xx, `network` for 5xx). */
  async ok(method: string, route: string, body?: { type: string; data: string }): Promise<HttpAnswer> {
    const res = await this.request(method, route, body);
    if (res.status >= 200 && res.status < 300) return res;
    throw answerError(method, route, res);
  }

  async json<T>(method: string, route: string, body?: unknown): Promise<T> {
    const res = await this.ok(method, route, body === undefined ? undefined : { type: 'application/json', data: JSON.stringify(body) });
    try {
      return JSON.parse(res.text) as T;
    } catch {
      throw new ClientError('network', `${method} ${route}: the gateway answered ${res.status} with something that is not JSON`);
    }
  }

  private backoff(attempt: number): number {
    return Math.min(250 * 2 ** attempt, this.o.maxBackoffMs ?? 10_000);
  }
}

/** The gateway's JSON error as a ClientError. */
export function answerError(method: string, route: string, res: HttpAnswer): ClientError {
  let error: { code?: string; message?: string; details?: Array<{ path?: string; message: string }>; requestId?: string } | undefined;
  try {
    error = (JSON.parse(res.text) as { error?: typeof error }).error;
  } catch {
    error = undefined;
  }
  const what = error?.code ? `${res.status} ${error.code}: ${error.message ?? ''}` : `${res.status}`;
  const gateway = { status: res.status, ...(error?.code ? { code: error.code } : {}), ...(error?.details ? { details: error.details } : {}), ...(error?.requestId ? { requestId: error.requestId } : {}) };
  const kind = res.status === 401 || res.status === 403 ? 'config' : res.status >= 500 ? 'network' : 'refused';
  return new ClientError(kind, `${method} ${route}: ${what}`.trim(), gateway);
}
