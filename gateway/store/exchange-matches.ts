/**
 * Match requests this gateway received from peers (gateway/exchange/match-in.ts), in Redis: per request
 * a hash (`exchange:mrq:<id>`: the peer, its envelope, when, until when, the agreement and the sealed
 * subjects, refs and identifiers only), its force's answers per ref (`exchange:mrq:<id>:answers`, each
 * sealed) and an index of the requests held (`exchange:mrqs`, scored by arrival). Everything expires at
 * the request's `expiresAt` (the agreement's retention); a recall erases the subjects at once.
 */
import type { Redis } from 'ioredis';
import { seal, unseal } from '../crypto/seal.js';
import type { Keys } from './redis.js';

export type MatchAnswer = 'hit' | 'no_trace';

export interface InboundMatch {
  id: string;
  peer: string;
  /** The peer's match envelope id (what the answers envelope quotes). */
  envelope: string;
  receivedAt: string;
  expiresAt: string;
  agreement: string;
  /** Refs and identifiers only; absent once recalled. */
  subjects?: Array<Record<string, unknown>>;
  /** The peer's recall of the dossier it asked about: nothing more is answered. */
  recall?: { reason: string; at: string };
}

export class ExchangeMatchStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly sealKey: Buffer,
  ) {}

  private key(id: string) {
    return `${this.keys.prefix}:exchange:mrq:${id}`;
  }
  private answersKey(id: string) {
    return `${this.keys.prefix}:exchange:mrq:${id}:answers`;
  }
  private indexKey() {
    return `${this.keys.prefix}:exchange:mrqs`;
  }

  async put(m: InboundMatch): Promise<void> {
    const until = Date.parse(m.expiresAt);
    await this.redis
      .multi()
      .hset(this.key(m.id), {
        peer: m.peer,
        envelope: m.envelope,
        receivedAt: m.receivedAt,
        expiresAt: m.expiresAt,
        agreement: m.agreement,
        subjects: seal(this.sealKey, JSON.stringify(m.subjects ?? []), `mrq:${m.id}`),
      })
      .pexpireat(this.key(m.id), until)
      .zadd(this.indexKey(), Date.parse(m.receivedAt), m.id)
      .exec();
  }

  async get(id: string): Promise<InboundMatch | undefined> {
    const h = await this.redis.hgetall(this.key(id));
    if (!h.peer || !h.envelope) return undefined;
    return {
      id,
      peer: h.peer,
      envelope: h.envelope,
      receivedAt: h.receivedAt ?? '',
      expiresAt: h.expiresAt ?? '',
      agreement: h.agreement ?? '',
      ...(h.subjects ? { subjects: JSON.parse(unseal(this.sealKey, h.subjects, `mrq:${id}`).toString('utf8')) as Array<Record<string, unknown>> } : {}),
      ...(h.recall ? { recall: JSON.parse(h.recall) as { reason: string; at: string } } : {}),
    };
  }

  /** The ids of the requests held, newest first (those gone with their retention are dropped from the index). */
  async list(limit = 200): Promise<string[]> {
    const ids = await this.redis.zrevrange(this.indexKey(), 0, limit - 1);
    const alive = await Promise.all(ids.map((id) => this.redis.exists(this.key(id))));
    const gone = ids.filter((_, i) => alive[i] === 0);
    if (gone.length) await this.redis.zrem(this.indexKey(), ...gone);
    return ids.filter((_, i) => alive[i] === 1);
  }

  async answers(id: string): Promise<Record<string, MatchAnswer>> {
    const rows = await this.redis.hgetall(this.answersKey(id));
    return Object.fromEntries(Object.entries(rows).map(([ref, sealed]) => [ref, unseal(this.sealKey, sealed, `mrq:${id}:${ref}`).toString('utf8') as MatchAnswer]));
  }

  /** Writes these answers (ref → result) beside the ones held; they expire with the request. */
  async putAnswers(id: string, answers: Record<string, MatchAnswer>, expiresAt: string): Promise<void> {
    const fields = Object.entries(answers).flatMap(([ref, result]) => [ref, seal(this.sealKey, result, `mrq:${id}:${ref}`)]);
    if (!fields.length) return;
    await this.redis.multi().hset(this.answersKey(id), ...fields).pexpireat(this.answersKey(id), Date.parse(expiresAt)).exec();
  }

  /** The peer recalled the dossier it asked about: its subjects are erased at once (the first mark stays). */
  async markRecalled(id: string, mark: { reason: string; at: string }): Promise<void> {
    await this.redis.multi().hsetnx(this.key(id), 'recall', JSON.stringify(mark)).hdel(this.key(id), 'subjects').exec();
  }
}
