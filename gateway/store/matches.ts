/**
 * Redis storage of partners' answers (hits/matches.ts): per dossier one hash, field a keyed HMAC of
 * (partner, subject) and value the sealed answer (AES-256-GCM, bound by its AAD to the dossier and the
 * field), living exactly as long as the dossier's status record (it is filed among the record's
 * companions, erased with it). Beside it, per agreement, plain counts of answers given for governance.
 * Answers are replaced with a compare-and-set (store/scripts/matches-put.lua), so two submissions at
 * once never lose one another's change silently.
 */
import type { Redis } from 'ioredis';
import { seal, unseal } from '../crypto/seal.js';
import { GatewayError } from '../errors/index.js';
import { RECORD_TTL_SECONDS } from './dossiers.js';
import type { Keys } from './redis.js';
import { evalScript, loadScript } from './scripts.js';

const PUT_ANSWERS = loadScript('matches-put');

export type AnswerResult = 'hit' | 'no_trace';

/** A partner's answer for one subject, as the gateway keeps it (sealed). */
export interface StoredAnswer {
  partner: string;
  /** The dossier's own subject id (never the packet ref). */
  subject: string;
  packet: string;
  /** The answer in force; absent after a withdrawal with no answer since. */
  result?: AnswerResult;
  answeredAt?: string;
  agreement: { reference: string };
  signed?: boolean;
  /** The last withdrawal: when, and what it withdrew (the answer and/or the hits reported until then). */
  withdrawn?: { at: string; answer?: AnswerResult; hits: number };
}

/** One answer to write: its field, the new value, and the value read before (compare-and-set). */
export interface AnswerWrite {
  field: string;
  answer: StoredAnswer;
  before?: string;
}

export interface HeldAnswer {
  answer: StoredAnswer;
  /** The sealed value as read, for the compare-and-set. */
  sealed: string;
}

export type RateCounts = Record<string, Record<string, Record<string, number>>>;

export interface AnswerStore {
  /** The answers held under these fields. */
  get(dossierId: string, fields: string[]): Promise<Map<string, HeldAnswer>>;
  all(dossierId: string): Promise<StoredAnswer[]>;
  /**
   * Writes the answers if none changed since read (false otherwise: nothing written) and adds the counts,
   * in one atomic step. `not_found` when the dossier record is gone, `dossier_recalled` when it was recalled.
   */
  put(dossierId: string, writes: AnswerWrite[], counts: Array<{ partner: string; agreement: string; result: string; by: number }>): Promise<boolean>;
  /** Answers given per partner, agreement and result. */
  rates(): Promise<RateCounts>;
}

export class RedisAnswerStore implements AnswerStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly sealKey: Buffer,
  ) {}

  async get(dossierId: string, fields: string[]): Promise<Map<string, HeldAnswer>> {
    const out = new Map<string, HeldAnswer>();
    if (!fields.length) return out;
    const rows = await this.redis.hmget(this.keys.answers(dossierId), ...fields);
    fields.forEach((field, i) => {
      const sealed = rows[i];
      if (sealed) out.set(field, { sealed, answer: this.open(dossierId, field, sealed) });
    });
    return out;
  }

  async all(dossierId: string): Promise<StoredAnswer[]> {
    const rows = await this.redis.hgetall(this.keys.answers(dossierId));
    return Object.entries(rows).map(([field, sealed]) => this.open(dossierId, field, sealed));
  }

  async put(dossierId: string, writes: AnswerWrite[], counts: Array<{ partner: string; agreement: string; result: string; by: number }>): Promise<boolean> {
    const args: string[] = [String(Date.now() + RECORD_TTL_SECONDS * 1000), String(writes.length), String(counts.length)];
    for (const w of writes) args.push(w.field, seal(this.sealKey, JSON.stringify(w.answer), answerAad(dossierId, w.field)), w.before ?? '');
    for (const c of counts) args.push(`${c.partner}|${c.agreement}|${c.result}`, String(c.by));
    const k = this.keys;
    const [res] = (await evalScript(this.redis, PUT_ANSWERS, 4, k.dossier(dossierId), k.answers(dossierId), k.dossierCompanions(dossierId), k.answerRates(), ...args)) as [number, number];
    if (res === -3) return false;
    if (res === -2) throw new GatewayError('dossier_recalled', 'The dossier this packet was made from has been recalled by its originator; nothing was stored');
    if (res < 0) throw new GatewayError('not_found', 'The dossier this packet was made from is no longer held');
    return true;
  }

  async rates(): Promise<RateCounts> {
    const rows = await this.redis.hgetall(this.keys.answerRates());
    const out: RateCounts = {};
    for (const [field, n] of Object.entries(rows)) {
      const [partner, agreement, result] = field.split('|') as [string, string, string];
      ((out[partner] ??= {})[agreement] ??= {})[result] = Number(n);
    }
    return out;
  }

  private open(dossierId: string, field: string, sealed: string): StoredAnswer {
    return JSON.parse(unseal(this.sealKey, sealed, answerAad(dossierId, field)).toString('utf8')) as StoredAnswer;
  }
}

function answerAad(dossierId: string, field: string): string {
  return `answer:${dossierId}:${field}`;
}
