/**
 * The partner's side of blind matching, for the partner client (`npx cordon partner match`): reads the
 * partner's own records locally (CSV or JSON Lines), derives their match keys with the gateway's own
 * normaliser (blind/keys.ts), and publishes a setup message of their OPRF outputs (blind/psi.ts), signed
 * with the partner's key and encrypted to the gateway. Records never leave in the clear; the setup is
 * rebuilt only when the records change, and each key's output is cached so a change costs only the
 * records that changed. It then answers the blind-match requests in the partner's mailbox, refusing
 * any over its own cap on request size or on requests per day per agreement: the partner's protection
 * against being probed, whatever the gateway says. No express, no Redis: this runs at the partner.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { decryptAndVerify, encryptAndSign, parseArmoredPrivateKey, parseRecipientKey, readPublicKeyInfo, type GatewayKey, type RecipientKey } from '../crypto/openpgp.js';
import { matchKeys, recordFacts, type KeyType } from '../blind/keys.js';
import { answerRequest, BlindRefused, generateServerKey, makeSetup, prfOutput, type BlindRequest, type ServerKey, type SetupMessage } from '../blind/psi.js';

export interface BlindPartnerOptions {
  gateway: string;
  token: string;
  /** The partner's own OpenPGP secret key (armored): decrypts packets, signs what it sends. */
  secretKeyArmored: string;
  /** The gateway's public key (armored); fetched from GET /v1/keys/gateway when absent. */
  gatewayKeyArmored?: string;
  /** Where the OPRF key, the output cache, the last setup and the request counts are kept (private). */
  stateDir: string;
  /** Key types to derive from the records (the agreement's blindKeys). */
  keyTypes: KeyType[];
  /** Largest request answered (elements). Default 256. */
  maxElements?: number;
  /** Requests answered per agreement per UTC day. Default 50. */
  maxRequestsPerDay?: number;
  log?: (line: string) => void;
}

export interface PublishResult {
  published: boolean;
  digest: string;
  records: number;
  keys: number;
  /** Keys whose output came from the cache (not recomputed). */
  cached: number;
  ms: number;
}

export interface AnswerOutcome {
  packet: string;
  outcome: 'answered' | 'refused';
  reason?: string;
}

/** This client's own refusals (BlindRefused codes): final, never retried. */
const REFUSALS: ReadonlySet<string> = new Set(['request_too_large', 'rate_limited', 'incompatible', 'malformed']);
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/** Parses CSV (header row; quoted fields) or JSON Lines, by extension or by the first character. */
export function parseRecords(text: string, file = ''): Array<Record<string, unknown>> {
  const trimmed = text.replace(/^\uFEFF/, '');
  if (file.endsWith('.jsonl') || file.endsWith('.ndjson') || trimmed.trimStart().startsWith('{')) {
    return trimmed.split(/\r?\n/).filter((l) => l.trim()).map((l, i) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        throw new Error(`line ${i + 1} is not JSON`);
      }
    });
  }
  const rows = csvRows(trimmed);
  const header = (rows.shift() ?? []).map((h) => h.trim());
  return rows.filter((r) => r.some((c) => c.trim())).map((r) => Object.fromEntries(header.map((h, i) => [h, r[i] ?? ''])));
}

function csvRows(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  const endCell = () => {
    row.push(cell);
    cell = '';
  };
  const endRow = () => {
    endCell();
    rows.push(row);
    row = [];
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') endCell();
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      endRow();
    } else cell += c;
  }
  if (cell || row.length) endRow();
  return rows;
}

export class BlindPartner {
  private constructor(
    private readonly opts: BlindPartnerOptions,
    private readonly key: ServerKey,
    private readonly signer: GatewayKey,
    private readonly gatewayKey: RecipientKey,
  ) {}

  static async open(opts: BlindPartnerOptions): Promise<BlindPartner> {
    await mkdir(opts.stateDir, { recursive: true, mode: 0o700 });
    const keyFile = path.join(opts.stateDir, 'oprf-key.json');
    let key: ServerKey;
    try {
      const raw = JSON.parse(await readFile(keyFile, 'utf8')) as { secretKey: string; publicKey: string };
      key = { secretKey: new Uint8Array(Buffer.from(raw.secretKey, 'base64')), publicKey: new Uint8Array(Buffer.from(raw.publicKey, 'base64')) };
    } catch {
      key = generateServerKey();
      await writeFile(keyFile, JSON.stringify({ secretKey: b64(key.secretKey), publicKey: b64(key.publicKey) }), { mode: 0o600 });
    }
    const privateKey = await parseArmoredPrivateKey(opts.secretKeyArmored);
    const publicKey = privateKey.toPublic();
    const signer: GatewayKey = { privateKey, publicKey, publicArmored: publicKey.armor(), fingerprint: privateKey.getFingerprint().toUpperCase() };
    const gatewayArmored = opts.gatewayKeyArmored ?? (await (await fetch(new URL('/v1/keys/gateway', opts.gateway))).text());
    const gatewayKey = await parseRecipientKey(gatewayArmored, (await readPublicKeyInfo(gatewayArmored)).fingerprint);
    return new BlindPartner(opts, key, signer, gatewayKey);
  }

  /** Builds the setup message from the records (reusing cached outputs) and publishes it if it changed. */
  async publish(records: Array<Record<string, unknown>>): Promise<PublishResult> {
    const started = Date.now();
    const log = this.opts.log ?? (() => undefined);
    const inputs = records.flatMap((r) => matchKeys(recordFacts(r), this.opts.keyTypes).map((k) => k.input));
    const cacheFile = path.join(this.opts.stateDir, 'outputs.json');
    const cache = await readJson<Record<string, string>>(cacheFile, {});
    const publicKey = b64(this.key.publicKey);
    const fresh: Record<string, string> = {};
    let cached = 0;
    const outputs: Uint8Array[] = [];
    inputs.forEach((input, i) => {
      const id = createHash('sha256').update(publicKey).update(input).digest('base64');
      let out = cache[id];
      if (out) cached++;
      else out = b64(prfOutput(this.key, input).subarray(0, 8));
      fresh[id] = out;
      outputs.push(new Uint8Array(Buffer.from(out, 'base64')));
      if ((i + 1) % 10_000 === 0) log(`setup: ${i + 1}/${inputs.length} keys (${cached} cached, ${((Date.now() - started) / 1000).toFixed(1)} s)`);
    });
    const sorted = [...outputs].map(b64).sort().join();
    const contentDigest = createHash('sha256').update(publicKey).update(sorted).digest('hex');
    const lastFile = path.join(this.opts.stateDir, 'setup.json');
    const last = await readJson<{ content?: string; digest?: string }>(lastFile, {});
    const held = await this.http('GET', '/v1/blind/setup').catch(() => undefined);
    if (last.content === contentDigest && held?.status === 200 && (held.json as { digest?: string }).digest === last.digest) {
      log(`setup: unchanged (${inputs.length} keys from ${records.length} records), not published again`);
      return { published: false, digest: last.digest!, records: records.length, keys: inputs.length, cached, ms: Date.now() - started };
    }
    const setup: SetupMessage = makeSetup(this.key.publicKey, outputs);
    const res = await this.http('POST', '/v1/blind/setup', await this.seal(setup));
    if (res.status !== 202) throw new Error(`the gateway refused the setup message: ${res.status} ${JSON.stringify(res.json)}`);
    const digest = (res.json as { digest: string }).digest;
    await writeJsonAtomic(cacheFile, fresh);
    await writeJsonAtomic(lastFile, { content: contentDigest, digest });
    log(`setup: published ${digest} (${inputs.length} keys from ${records.length} records, ${setup.n} with padding, ${Math.round((setup.set.length * 3) / 4 / 1024)} KB)`);
    return { published: true, digest, records: records.length, keys: inputs.length, cached, ms: Date.now() - started };
  }

  /** Answers every blind-match request in the mailbox this client has not answered (or refused) yet, within the caps. */
  async answerPending(): Promise<AnswerOutcome[]> {
    const list = await this.http('GET', '/v1/packets?limit=500');
    if (list.status !== 200) throw new Error(`the gateway did not list the mailbox: ${list.status} ${list.text}`);
    const doneFile = path.join(this.opts.stateDir, 'answered.json');
    const done = new Set(await readJson<string[]>(doneFile, []));
    const packets = ((list.json as { packets?: Array<{ id: string; type: string }> }).packets ?? []).filter((p) => p.type === 'blind-match' && !done.has(p.id)).reverse();
    const out: AnswerOutcome[] = [];
    for (const p of packets) {
      const outcome = await this.answerOne(p.id);
      out.push(outcome);
      // A refusal by this client stands; a failure at the gateway (e.g. no setup yet) is tried again next time.
      if (outcome.outcome === 'answered' || REFUSALS.has(outcome.reason ?? '')) done.add(p.id);
    }
    const listed = new Set(((list.json as { packets?: Array<{ id: string }> }).packets ?? []).map((p) => p.id));
    await writeJsonAtomic(doneFile, [...done].filter((id) => listed.has(id)));
    return out;
  }

  async answerOne(packetId: string): Promise<AnswerOutcome> {
    const log = this.opts.log ?? (() => undefined);
    const res = await this.http('GET', `/v1/packets/${packetId}`);
    if (res.status !== 200) return { packet: packetId, outcome: 'refused', reason: `not retrievable (${res.status})` };
    const { data } = await decryptAndVerify(res.text, this.signer.privateKey, [this.gatewayKey.key]);
    const plain = JSON.parse(data) as { blindMatch?: { agreement?: { reference?: string } }; request?: BlindRequest };
    const reference = plain.blindMatch?.agreement?.reference ?? 'unknown';
    try {
      if (!plain.request) throw new BlindRefused('malformed', 'not a blind-match request');
      await this.count(reference, plain.request.elements?.length ?? 0);
      const answer = answerRequest(this.key, packetId, plain.request, this.opts.maxElements ?? 256);
      const posted = await this.http('POST', `/v1/packets/${packetId}/blind-answer`, await this.seal(answer));
      if (posted.status !== 202) return { packet: packetId, outcome: 'refused', reason: `gateway answered ${posted.status} ${JSON.stringify(posted.json)}` };
      log(`answered ${packetId} (${plain.request.elements.length} elements, agreement ${reference})`);
      return { packet: packetId, outcome: 'answered' };
    } catch (err) {
      if (!(err instanceof BlindRefused)) throw err;
      log(`refused ${packetId}: ${err.message}`);
      return { packet: packetId, outcome: 'refused', reason: err.code };
    }
  }

  /** Counts a request against the per-agreement daily cap (refused over it, counted before answering). */
  private async count(reference: string, elements: number): Promise<void> {
    if (elements > (this.opts.maxElements ?? 256)) return; // refused by answerRequest, not counted
    const file = path.join(this.opts.stateDir, 'requests.json');
    const day = new Date().toISOString().slice(0, 10);
    const counts = await readJson<Record<string, number>>(file, {});
    const key = `${day}|${reference}`;
    const limit = this.opts.maxRequestsPerDay ?? 50;
    if ((counts[key] ?? 0) >= limit) throw new BlindRefused('rate_limited', `agreement ${reference} has had its ${limit} blind-match requests today`);
    counts[key] = (counts[key] ?? 0) + 1;
    for (const k of Object.keys(counts)) if (!k.startsWith(day)) delete counts[k];
    await writeJsonAtomic(file, counts);
  }

  /** Signed with the partner's key, encrypted to the gateway: the gateway takes it as the partner's own. */
  private async seal(body: unknown): Promise<{ armored: string }> {
    return { armored: await encryptAndSign(JSON.stringify(body), this.gatewayKey, this.signer) };
  }

  private async http(method: 'GET' | 'POST', route: string, body?: { armored: string }): Promise<{ status: number; json: unknown; text: string }> {
    const res = await fetch(new URL(route, this.opts.gateway), {
      method,
      headers: { authorization: `Bearer ${this.opts.token}`, ...(body ? { 'content-type': 'application/pgp-encrypted' } : {}) },
      ...(body ? { body: body.armored } : {}),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, json, text };
  }
}

async function readJson<T>(file: string, fallback: T): Promise<T> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch {
    return fallback;
  }
}

async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(value), { mode: 0o600 });
  await rename(tmp, file);
}
