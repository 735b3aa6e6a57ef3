/**
 * The partner client: what a partner agency's system does with its Cordon mailbox, as a typed module
 * (the `cordon partner` CLI is a thin shell over it).
 *
 *   pull    drains `GET /v1/packets?state=delivered`; each packet is decrypted with the partner's key and
 *           its signature checked against the pinned gateway key only (anything else is refused,
 *           reported and not acknowledged); written as JSON (0600); then acknowledged, and only then.
 *           Recall notices remove the recalled packets' files; expired packets' files are removed.
 *           Resumable: a packet retrieved but not written or not acknowledged by a run that died is
 *           picked up by the next one.
 *   report  posts hits, signed with the partner's key and encrypted to the gateway's.
 *   answer  posts hit / no trace per subject ref, signed likewise.
 */
import { decryptAndVerify, encryptAndSign, type GatewayKey } from '../crypto/openpgp.js';
import type { HitsSubmission } from '../dossier/types.js';
import { GatewayError } from '../errors/index.js';
import { answerError, ClientError, GatewayHttp, type HttpOptions } from './http.js';
import type { PinnedGateway } from './keys.js';
import { OutDir, type PacketFile } from './outdir.js';

export interface PacketListing {
  id: string;
  createdAt: string;
  expiresAt: string;
  state: string;
  type: 'packet' | 'match' | 'recall';
  recalls?: string;
}

export interface PartnerClientOptions extends HttpOptions {
  /** The partner's own secret key (gateway/client/keys.ts loadOwnKey). */
  key: GatewayKey;
  /** The gateway's pinned key (loadPinnedGateway). */
  gateway: PinnedGateway;
  /** Progress lines (the CLI writes them to stderr). */
  progress?: (line: string) => void;
  now?: () => Date;
}

export interface PullSummary {
  written: string[];
  acknowledged: string[];
  /** Signature not by the pinned key, or not decryptable: kept out, not acknowledged. */
  refused: Array<{ id: string; reason: string }>;
  /** Files removed: the packet expired, or a recall notice withdrew it. */
  removed: Array<{ id: string; why: 'expired' | 'recalled'; notice?: string }>;
  /** Gone from the gateway before they could be fetched (expired or recalled meanwhile). */
  gone: string[];
  /** Refused by an earlier run and not fetched again. */
  refusedEarlier: number;
  /** Set when the run stopped part-way (the next run resumes). */
  stopped?: string;
}

export interface AnswerResult {
  subject: string;
  result: 'hit' | 'no_trace' | 'withdrawn';
}

export class PartnerClient {
  readonly http: GatewayHttp;
  private readonly progress: (line: string) => void;
  private readonly now: () => Date;

  constructor(private readonly o: PartnerClientOptions) {
    this.http = new GatewayHttp(o);
    this.progress = o.progress ?? (() => undefined);
    this.now = o.now ?? (() => new Date());
  }

  /** One page of the mailbox: `delivered` ones (not retrieved yet, oldest first) or the newest of all. */
  async list(o: { delivered?: boolean; limit?: number } = {}): Promise<PacketListing[]> {
    const q = new URLSearchParams();
    if (o.delivered) q.set('state', 'delivered');
    q.set('limit', String(o.limit ?? 100));
    return (await this.http.json<{ packets: PacketListing[] }>('GET', `/v1/packets?${q}`)).packets;
  }

  /** The packet's plaintext, decrypted and verified against the pinned gateway key; undefined when it is gone (404). */
  async open(id: string): Promise<{ content: unknown; signedBy: string } | undefined> {
    const res = await this.http.request('GET', `/v1/packets/${encodeURIComponent(id)}`);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw answerError('GET', `/v1/packets/${id}`, res);
    let data: string;
    let signedBy: string;
    try {
      ({ data, signerFingerprint: signedBy } = await decryptAndVerify(res.text, this.o.key.privateKey, [this.o.gateway.verify], this.now()));
    } catch (err) {
      if (err instanceof GatewayError) throw new ClientError('refused', `packet ${id}: ${err.message} (pinned gateway key ${this.o.gateway.fingerprint})`);
      throw err;
    }
    try {
      return { content: JSON.parse(data), signedBy };
    } catch {
      throw new ClientError('refused', `packet ${id}: the plaintext is not JSON`);
    }
  }

  async acknowledge(id: string): Promise<void> {
    await this.http.ok('POST', `/v1/packets/${encodeURIComponent(id)}/ack`);
  }

  /** Drains the mailbox into `outDir` (see the module comment). Throws `locked` when another run holds the directory. */
  async pull(outDir: string, o: { retryRefused?: boolean } = {}): Promise<PullSummary> {
    const out = await OutDir.open(outDir);
    const release = await out.lock();
    const sum: PullSummary = { written: [], acknowledged: [], refused: [], removed: [], gone: [], refusedEarlier: 0 };
    const state = await out.readState();
    if (o.retryRefused) state.refused = {};
    try {
      await this.sweepExpired(out, sum);
      // Resume first: what an earlier run retrieved but did not finish (the delivered list no longer shows it).
      const unfinished = (await this.list({ limit: 500 })).filter((p) => p.state === 'retrieved').reverse();
      for (const p of unfinished) {
        if (state.refused[p.id]) sum.refusedEarlier++;
        else await this.take(out, p, sum, state);
      }
      const seen = new Set<string>();
      for (;;) {
        const page = (await this.list({ delivered: true, limit: 100 })).filter((p) => !seen.has(p.id));
        if (page.length === 0) break;
        for (const p of page) {
          seen.add(p.id);
          await this.take(out, p, sum, state);
        }
      }
    } catch (err) {
      if (!(err instanceof ClientError) || sum.acknowledged.length + sum.refused.length + sum.removed.length === 0) throw err;
      sum.stopped = err.message;
    } finally {
      await out.writeState(state).catch(() => undefined);
      await release();
    }
    return sum;
  }

  /** One listed packet: fetch, verify, write, then acknowledge. */
  private async take(out: OutDir, p: PacketListing, sum: PullSummary, state: { refused: Record<string, { at: string; reason: string }> }): Promise<void> {
    if (p.state === 'retrieved' && (await out.has(p.id))) {
      // Written by a run that stopped before acknowledging it.
      await this.acknowledge(p.id);
      sum.acknowledged.push(p.id);
      this.progress(`acknowledged ${p.id} (written earlier)`);
      return;
    }
    let opened: Awaited<ReturnType<PartnerClient['open']>>;
    try {
      opened = await this.open(p.id);
    } catch (err) {
      if (!(err instanceof ClientError) || err.kind !== 'refused' || err.gateway) throw err;
      sum.refused.push({ id: p.id, reason: err.message });
      state.refused[p.id] = { at: this.now().toISOString(), reason: err.message };
      this.progress(`REFUSED ${p.id}: ${err.message}; not acknowledged`);
      return;
    }
    if (opened === undefined) {
      sum.gone.push(p.id);
      this.progress(`${p.id} is gone from the gateway (expired or recalled)`);
      return;
    }
    const file: PacketFile = { id: p.id, type: p.type, expiresAt: p.expiresAt, retrievedAt: this.now().toISOString(), signedBy: opened.signedBy, ...(p.recalls ? { recalls: p.recalls } : {}), content: opened.content };
    if (p.type === 'recall') {
      // The notice names the packet it recalls (and the match request before it, when there was one).
      const recall = (opened.content as { recall?: { packet?: unknown; matchRequest?: unknown; reason?: unknown } }).recall;
      const targets = [recall?.packet, recall?.matchRequest, p.recalls].filter((x): x is string => typeof x === 'string');
      for (const id of new Set(targets)) {
        if (await out.remove(id)) {
          sum.removed.push({ id, why: 'recalled', notice: p.id });
          this.progress(`removed ${id}: recalled (${String(recall?.reason ?? 'recall')}) by notice ${p.id}`);
        }
      }
    }
    await out.write(file);
    sum.written.push(p.id);
    await this.acknowledge(p.id);
    sum.acknowledged.push(p.id);
    this.progress(`wrote ${out.file(p.id)} (${p.type}) and acknowledged it`);
  }

  private async sweepExpired(out: OutDir, sum: PullSummary): Promise<void> {
    const now = this.now().getTime();
    for (const f of await out.list()) {
      if (Date.parse(f.expiresAt) <= now && (await out.remove(f.id))) {
        sum.removed.push({ id: f.id, why: 'expired' });
        this.progress(`removed ${f.id}: expired at ${f.expiresAt}`);
      }
    }
  }

  /** Signs with the partner's key and encrypts to the pinned gateway key: what `report` and `answer` post. */
  private async sealed(body: unknown): Promise<{ type: string; data: string }> {
    return { type: 'application/pgp-encrypted', data: await encryptAndSign(JSON.stringify(body), this.o.gateway.recipient, this.o.key, this.now()) };
  }

  /** Posts one hits submission (already checked against the schema: hits-file.ts), signed. */
  async report(submission: HitsSubmission): Promise<{ packet: string; received: number; accepted: number; duplicates: number }> {
    const res = await this.http.ok('POST', `/v1/packets/${encodeURIComponent(submission.packet)}/hits`, await this.sealed(submission));
    return JSON.parse(res.text) as { packet: string; received: number; accepted: number; duplicates: number };
  }

  /** Posts hit / no trace (or withdrawn) per subject ref of a packet or match request, signed. */
  async answer(packet: string, results: AnswerResult[]): Promise<{ packet: string; received: number; accepted: number; duplicates: number; withdrawn: number }> {
    if (results.length === 0) throw new ClientError('config', 'no answers given (--hit REF, --none REF, or --rest no_trace)');
    const res = await this.http.ok('POST', `/v1/packets/${encodeURIComponent(packet)}/matches`, await this.sealed({ schema: 'cordon.matches/v1', packet, results }));
    return JSON.parse(res.text) as { packet: string; received: number; accepted: number; duplicates: number; withdrawn: number };
  }
}

/** The subject refs a packet file holds (a packet's `dossier.subjects[].id`, a match request's `subjects[].ref`). */
export function packetRefs(file: PacketFile): string[] {
  const c = file.content as { dossier?: { subjects?: Array<{ id?: unknown }> }; subjects?: Array<{ ref?: unknown }> };
  const refs = [...(c.dossier?.subjects ?? []).map((s) => s.id), ...(c.subjects ?? []).map((s) => s.ref)];
  return refs.filter((r): r is string => typeof r === 'string');
}
