/**
 * What every part of the exchange shares: its dependencies, its records (store/exchange.ts), this
 * gateway's force, the peers' pinned keys, the envelope ids (derived, so every retry or repeat carries
 * the same id) and the POST to a peer gateway with its refusal rules.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { AuditLog } from '../audit/log.js';
import type { Keyring } from '../crypto/keyring.js';
import type { GatewayKey, RecipientKey } from '../crypto/openpgp.js';
import { hmacId } from '../crypto/seal.js';
import { GatewayError } from '../errors/index.js';
import type { HitStore } from '../hits/store.js';
import type { SourceKeys } from '../hits/source-keys.js';
import { agreementStatus } from '../policy/agreement.js';
import type { LiveSet } from '../policy/live.js';
import type { PeerPolicy } from '../policy/types.js';
import { PermanentExchangeError, type ExchangeQueue } from '../queue/exchange-queue.js';
import type { RecallReason } from '../recall/recall.js';
import type { DossierStore } from '../store/dossiers.js';
import type { ExchangeStore } from '../store/exchange.js';
import type { ExchangeMatchStore } from '../store/exchange-matches.js';
import type { FollowUpStore } from '../store/followups.js';
import type { AnswerStore } from '../store/matches.js';
import type { Block } from '../policy/types.js';
import { sealEnvelope, type EnvelopeHeader, type Freshness } from './envelope.js';
import type { PeerDirectory } from './peers.js';
import { postToPeer } from './tls.js';

export const PEER_SOURCE_PREFIX = 'peer:';

export function isPeerSource(source: string): boolean {
  return source.startsWith(PEER_SOURCE_PREFIX);
}

/**
 * Why the agreement with a peer does not allow exchanging with it at `now` (not yet in force, past its
 * review date, a date that cannot be read: policy/agreement.ts, the one place that decides), or
 * undefined when it does. Checked on every inbound envelope and before every relay.
 */
export function peerAgreementLapsed(policy: PeerPolicy, now: Date): { code: 'agreement_expired' | 'agreement_not_in_force'; message: string } | undefined {
  const status = agreementStatus(policy.agreement, now);
  const { reference, inForceFrom, reviewBy } = policy.agreement;
  if (status.state === 'expired') return { code: status.reason, message: `Agreement ${reference} with peer ${policy.peer.id} was due for review by ${reviewBy}: exchange under it has stopped` };
  if (status.state === 'not_in_force') {
    const why = status.unreadable ? `has a date that cannot be read (in force from ${inForceFrom}, review by ${reviewBy})` : `is in force only from ${inForceFrom}`;
    return { code: status.reason, message: `Agreement ${reference} with peer ${policy.peer.id} ${why}: nothing is exchanged under it` };
  }
  return undefined;
}

export interface ExchangeDeps {
  /** The exchange's own records (peer deliveries, envelopes, origins, replay records). */
  records: ExchangeStore;
  store: DossierStore;
  audit: AuditLog;
  live: () => LiveSet<RecipientKey>;
  peers: PeerDirectory;
  gatewayKey: GatewayKey;
  keyring: Keyring;
  hitStore: HitStore;
  /** Peers' answers to match envelopes, kept like partners' under `peer:<id>` (match-out.ts). */
  answerStore: AnswerStore;
  /** Follow-ups after a peer's hits (match-followup.ts), under `peer:<id>`. */
  followUps: FollowUpStore;
  /** Match requests received from peers (match-in.ts). */
  matchStore: ExchangeMatchStore;
  /** The sources' pinned keys: a match request is shown to this gateway's force encrypted to its key. */
  sourceKeys: SourceKeys;
  /** Where `peers/<id>.token` (the bearer token this gateway presents to that peer) lives. */
  stateDir: string;
  /** This gateway's force id (`CORDON_FORCE_ID`); default: the single source in the policy set. */
  forceId?: string;
  queue: () => ExchangeQueue;
  /** For inbound dossiers (api role): queue the local fan-out. */
  enqueueDossier?: (id: string) => Promise<void>;
  /** For inbound recalls (api role): recall, here, a dossier received from a peer, as `actor` (`peer:<id>`). */
  recall?: (dossierId: string, actor: string, reason: RecallReason) => Promise<{ state: string }>;
  retention?: { schedule(member: string, due: Date): Promise<void> };
  fetchTimeoutMs?: number;
  /** How long an envelope stays fresh, and how far ahead a peer's clock may be (envelope.ts). */
  freshness?: Freshness;
}

/** A peer's 4xx refusal of an envelope, with its error code: not retried. */
export class PeerRefusal extends PermanentExchangeError {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

export class ExchangeContext {
  readonly records: ExchangeStore;

  constructor(readonly deps: ExchangeDeps) {
    this.records = deps.records;
  }

  envelopeId(dossierId: string, peer: string): string {
    return 'env_' + hmacId(this.deps.keyring.envelopeId, 'dossier', dossierId, peer);
  }

  /** The recall envelope of a dossier to a peer: one per (dossier, peer), whatever the retries or repeats. */
  recallEnvelopeId(dossierId: string, peer: string): string {
    return 'env_' + hmacId(this.deps.keyring.envelopeId, 'recall', dossierId, peer);
  }

  /** The hits relay envelope of a dossier once it has `total` hits. */
  hitsEnvelopeId(dossierId: string, total: number): string {
    return 'env_' + hmacId(this.deps.keyring.envelopeId, 'hits', dossierId, String(total));
  }

  /** This gateway's force: `CORDON_FORCE_ID`, or the only source configured. */
  forceId(): string {
    if (this.deps.forceId) return this.deps.forceId;
    const sources = [...this.deps.live().set.sources.keys()];
    if (sources.length === 1) return sources[0]!;
    throw new GatewayError('config_invalid', 'Set CORDON_FORCE_ID: the policy set has more than one source, so this gateway\u2019s force is ambiguous');
  }

  /**
   * The peer's policy and pinned key, for anything about to be sent to it (a dossier, relayed hits, a
   * recall): a peer no longer configured, whose agreement is not in force now, or whose key cannot be
   * used gets nothing (a permanent failure: the job is dead-lettered and audited with the reason).
   */
  async peerAndKey(peer: string): Promise<{ policy: PeerPolicy; key: RecipientKey }> {
    const view = this.deps.peers.view();
    const policy = view.policies.get(peer);
    if (!policy) throw new PermanentExchangeError(`peer ${peer} is no longer configured`);
    const lapsed = peerAgreementLapsed(policy, new Date());
    if (lapsed) throw new PermanentExchangeError(`${lapsed.code}: ${lapsed.message}; nothing is sent to it`);
    const key = await view.keys.get(peer);
    if (!key || 'invalid' in key) throw new PermanentExchangeError(`the pinned key of peer ${peer} cannot be used: ${key?.invalid ?? 'no key'}`);
    return { policy, key };
  }

  /** The peer's pinned key if it can be used, else why not (a delivery block). */
  async peerKeyOrBlock(peer: string): Promise<RecipientKey | Block> {
    const key = await this.deps.peers.view().keys.get(peer);
    return !key || 'invalid' in key ? { reason: 'recipient_key_invalid', message: key?.invalid ?? 'no key' } : key;
  }

  /** Seals an envelope from this gateway to the peer of `policy`. */
  seal(type: EnvelopeHeader['type'], id: string, policy: PeerPolicy, key: RecipientKey, body: Record<string, unknown>, inReplyTo?: string) {
    return sealEnvelope({ type, id, from: this.forceId(), to: policy.peer.force, ...(inReplyTo !== undefined ? { inReplyTo } : {}) }, key, this.deps.gatewayKey, body, this.deps.freshness);
  }

  /**
   * POSTs to the peer; 2xx → its JSON answer; a 4xx refusal (but 408/429, and `dossier_not_settled`: a
   * recall that arrived while the peer's fan-out of the dossier is still running) is permanent
   * (PeerRefusal, with the peer's error code); else retried.
   */
  async post(policy: PeerPolicy, message: string): Promise<{ id?: string }> {
    let token: string;
    try {
      token = (await readFile(path.join(this.deps.stateDir, 'peers', `${policy.peer.id}.token`), 'utf8')).trim();
    } catch {
      throw new Error(`no bearer token for peer ${policy.peer.id}: put it in ${path.join(this.deps.stateDir, 'peers', `${policy.peer.id}.token`)}`);
    }
    const res = await postToPeer(
      policy.peer,
      'v1/exchange/inbound',
      { authorization: `Bearer ${token}`, 'content-type': 'application/pgp-encrypted' },
      message,
      this.deps.stateDir,
      this.deps.fetchTimeoutMs ?? 15_000,
    );
    const ok = res.status >= 200 && res.status < 300;
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(res.text) as Record<string, unknown>;
    } catch {
      /* not JSON */
    }
    if (ok) return json as { id?: string };
    const code = (json.error as { code?: string } | undefined)?.code ?? String(res.status);
    const msg = `peer ${policy.peer.id} answered ${res.status} ${code}`;
    if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429 && code !== 'dossier_not_settled') throw new PeerRefusal(msg, code);
    throw new Error(msg);
  }
}
