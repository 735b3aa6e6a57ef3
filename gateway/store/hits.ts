/**
 * Redis storage of hits and link items (the hits module's, gateway/hits). Everything with a value in it is sealed (AES-256-GCM, bound by
 * its AAD to the dossier and the hit id); in plaintext there are only opaque ids (dossier ids, hit ids,
 * keyed HMACs). Hits and the dossier's link items live exactly as long as the dossier's status record:
 * the scripts (store/scripts/hits-*.lua) read its expiry and give theirs the same.
 *
 * The per-source link index maps the keyed HMAC of a normalised value (see links.ts `matchTokens`) to
 * the dossiers of that source holding it, so cross-dossier links are found by unsealing only the
 * dossiers that share a value, never everything.
 */
import type { Redis } from 'ioredis';
import { hmacId, seal, sealBytes, unseal } from '../crypto/seal.js';
import { GatewayError } from '../errors/index.js';
import type { HitConfidence, HitKind } from '../dossier/types.js';
import { RECORD_TTL_SECONDS } from './dossiers.js';
import type { Keys } from './redis.js';
import { confirmWrites } from './replication.js';
import { evalScript, loadScript } from './scripts.js';

const ADD_HITS = loadScript('hits-add');
const PUT_LINKS = loadScript('hits-put-links');

/** A hit as the gateway keeps it (sealed): mapped back to the dossier's own subject id. */
export interface StoredHit {
  id: string;
  /** The dossier's own subject id (never the packet ref). */
  subject: string;
  partner: string;
  packet: string;
  kind: HitKind;
  detail: Record<string, string | number | boolean | null>;
  matchedOn: string[];
  confidence: HitConfidence;
  partnerRecordRef?: string;
  receivedAt: string;
  agreement: { reference: string };
  /** True when the hits arrived as an OpenPGP message signed with the partner's pinned key. */
  signed?: boolean;
  /** The peer force whose gateway relayed this hit (its partner is that force's partner). */
  via?: string;
}

/** The link items of a dossier's own data (`Item`: hits/links.ts), sealed under `links:<dossier id>`. */
export interface DossierLinks<Item = unknown> {
  dossier: string;
  reference: string;
  items: Item[];
}

export interface HitStore<Item = unknown> {
  /** Keyed HMAC of a normalised value, per source: what the link index is keyed by. */
  mac(source: string, kind: string, value: string): string;
  /** Which of these hit ids the dossier already holds. */
  existing(dossierId: string, ids: string[]): Promise<Set<string>>;
  /**
   * Stores the hits that are not there yet (first one wins) and files the dossier under the macs of
   * their values, in one atomic step. Returns how many were new and how many the dossier now holds.
   * `not_found` when the dossier record is gone; with `refuseRecalled`, `dossier_recalled` for a
   * dossier recalled meanwhile (nothing stored either way).
   */
  add(dossierId: string, source: string, hits: StoredHit[], macs: string[], options?: { refuseRecalled?: boolean }): Promise<{ added: number; total: number }>;
  hits(dossierId: string): Promise<StoredHit[]>;
  count(dossierId: string): Promise<number>;
  /** Stores the dossier's own link items once; false when they were already stored or the dossier is gone. */
  putDossierLinks(links: DossierLinks<Item>, source: string, macs: string[]): Promise<boolean>;
  dossierLinks(dossierId: string): Promise<DossierLinks<Item> | undefined>;
  /** Dossiers of `source` (other than `exclude`) still holding a value with one of these macs. */
  dossiersWith(source: string, macs: string[], exclude: string, limit?: number): Promise<string[]>;
}

export class RedisHitStore<Item = unknown> implements HitStore<Item> {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly sealKey: Buffer,
    private readonly macKey: (source: string) => Buffer,
  ) {}

  /** Keyed HMAC of a normalised value, per source: what the link index is keyed by. */
  mac(source: string, kind: string, value: string): string {
    return hmacId(this.macKey(source), kind, value);
  }

  /** Which of these hit ids the dossier already holds. */
  async existing(dossierId: string, ids: string[]): Promise<Set<string>> {
    if (!ids.length) return new Set();
    const rows = await this.redis.hmget(this.keys.hits(dossierId), ...ids);
    return new Set(ids.filter((_, i) => rows[i] !== null));
  }

  /**
   * Stores the hits that are not there yet (first one wins) and files the dossier under the macs of
   * their values, in one atomic step. Returns how many were new and how many the dossier now holds.
   * With `refuseRecalled`, a dossier recalled meanwhile gets nothing (`dossier_recalled`).
   */
  async add(dossierId: string, source: string, hits: StoredHit[], macs: string[], options: { refuseRecalled?: boolean } = {}): Promise<{ added: number; total: number }> {
    const args: string[] = [String(Date.now() + RECORD_TTL_SECONDS * 1000), String(hits.length)];
    for (const hit of hits) args.push(hit.id, seal(this.sealKey, JSON.stringify(hit), hitAad(dossierId, hit.id)));
    args.push(dossierId, options.refuseRecalled ? '1' : '0');
    const indexKeys = [...new Set(macs)].map((m) => this.keys.linkIndex(source, m));
    const [added, total] = (await evalScript(
      this.redis,
      ADD_HITS,
      2 + indexKeys.length,
      this.keys.dossier(dossierId),
      this.keys.hits(dossierId),
      ...indexKeys,
      ...args,
    )) as [number, number];
    if (added === -2) throw new GatewayError('dossier_recalled', 'The dossier this packet was made from has been recalled by its originator; nothing was stored');
    if (added < 0) throw new GatewayError('not_found', 'The dossier this packet was made from is no longer held');
    // Recorded hits are acknowledged only once a replica holds them (store/replication.ts).
    await confirmWrites(this.redis);
    return { added, total };
  }

  async hits(dossierId: string): Promise<StoredHit[]> {
    const rows = await this.redis.hgetall(this.keys.hits(dossierId));
    return Object.entries(rows).map(([id, sealed]) => JSON.parse(unseal(this.sealKey, sealed, hitAad(dossierId, id)).toString('utf8')) as StoredHit);
  }

  async count(dossierId: string): Promise<number> {
    return this.redis.hlen(this.keys.hits(dossierId));
  }

  /** Stores the dossier's own link items once; false when they were already stored or the dossier is gone. */
  async putDossierLinks(links: DossierLinks<Item>, source: string, macs: string[]): Promise<boolean> {
    const indexKeys = [...new Set(macs)].map((m) => this.keys.linkIndex(source, m));
    const res = (await evalScript(
      this.redis,
      PUT_LINKS,
      2 + indexKeys.length,
      this.keys.dossier(links.dossier),
      this.keys.dossierLinks(links.dossier),
      ...indexKeys,
      String(Date.now() + RECORD_TTL_SECONDS * 1000),
      sealBytes(this.sealKey, JSON.stringify(links), linksAad(links.dossier)),
      links.dossier,
    )) as number;
    return res === 1;
  }

  async dossierLinks(dossierId: string): Promise<DossierLinks<Item> | undefined> {
    // Bytes (sealBytes), or text as stored before: unseal opens both.
    const sealed = await this.redis.getBuffer(this.keys.dossierLinks(dossierId));
    if (!sealed) return undefined;
    return JSON.parse(unseal(this.sealKey, sealed, linksAad(dossierId)).toString('utf8')) as DossierLinks<Item>;
  }

  /** Dossiers of `source` (other than `exclude`) still holding a value with one of these macs. */
  async dossiersWith(source: string, macs: string[], exclude: string, limit = 100): Promise<string[]> {
    const unique = [...new Set(macs)];
    if (!unique.length) return [];
    const pipeline = this.redis.pipeline();
    const now = String(Date.now());
    for (const m of unique) pipeline.zrangebyscore(this.keys.linkIndex(source, m), now, '+inf');
    const rows = (await pipeline.exec()) ?? [];
    const out = new Set<string>();
    for (const [err, ids] of rows) {
      if (err) throw err;
      for (const id of ids as string[]) if (id !== exclude) out.add(id);
    }
    return [...out].sort().slice(0, limit);
  }
}

function hitAad(dossierId: string, hitId: string): string {
  return `hit:${dossierId}:${hitId}`;
}

function linksAad(dossierId: string): string {
  return `links:${dossierId}`;
}
