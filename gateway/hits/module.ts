/**
 * The hits module's parts, put together for compose/services.ts: one store, the use cases (partners' hits, the
 * sources' bundles), the dossier link indexer the worker runs before fan-out, and the webhook notices
 * (queued by the api role, delivered by the worker role). Keys are derived from the master secret:
 * `seal` for sealing (as everywhere), `hit-id` for deduplication ids, `link-index:<source>` per source
 * for the HMACs of normalised values.
 */
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/log.js';
import type { GatewayKey, RecipientKey } from '../crypto/openpgp.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Mailbox, PacketRecord } from '../mailbox/mailbox.js';
import type { LiveSet } from '../policy/live.js';
import type { DossierStore } from '../store/dossiers.js';
import { HitNoticeQueue, startHitNoticeWorker, type HitNoticeJob } from '../queue/notify-queue.js';
import type { QueueWorker } from '../queue/worker.js';
import { RedisHitStore } from '../store/hits.js';
import { RedisAnswerStore, type AnswerStore } from '../store/matches.js';
import { connectRedisForQueue, type Connection, type Keys } from '../store/redis.js';
import { Answers } from './answers.js';
import { Bundles } from './bundle.js';
import { Hits } from './hits.js';
import { DossierLinkIndexer } from './indexer.js';
import { Matches } from './matches.js';
import { HitNotifier } from './notify.js';
import type { LinkItem } from './links.js';
import { SourceKeys } from './source-keys.js';
import type { HitStore } from './store.js';

export interface HitsModuleDeps {
  redis: Connection;
  redisUrl: string;
  keys: Keys;
  store: DossierStore;
  mailbox: Mailbox;
  audit: AuditLog;
  live: () => LiveSet<RecipientKey>;
  gatewayKey: GatewayKey;
  keyring: Keyring;
  logger: Logger;
  /** Also told of new hits (the exchange relays hits on a peer's dossier back to that peer). */
  onNewHits?: (dossierId: string, source: string, total: number) => Promise<void>;
  /** Told when answers are stored on a match request (the follow-up is queued). */
  onMatchAnswered?: (packet: PacketRecord) => Promise<void>;
  /** After-match peers' answers per subject (gateway/exchange), shown beside the partners'. */
  peerMatches?: (dossierId: string, now: Date) => Promise<Record<string, Record<string, 'hit' | 'no_trace' | 'pending' | 'overdue'>>>;
  /** How long a source's webhook may take to answer a notice (CORDON_HIT_NOTICE_TIMEOUT_MS). */
  noticeTimeoutMs?: number;
}

export class HitsModule {
  readonly hitStore: HitStore;
  readonly answerStore: AnswerStore;
  /** Partners' answers per dossier (the force's status and bundle) and per agreement (governance). */
  readonly answers: Answers;
  readonly indexer: DossierLinkIndexer;
  readonly sourceKeys = new SourceKeys();
  private readonly closers: Array<() => Promise<unknown>> = [];
  private noticeQueue?: HitNoticeQueue;

  constructor(private readonly deps: HitsModuleDeps) {
    this.hitStore = new RedisHitStore<LinkItem>(deps.redis, deps.keys, deps.keyring.seal, (source) => deps.keyring.linkIndex(source));
    this.indexer = new DossierLinkIndexer(this.hitStore);
    this.answerStore = new RedisAnswerStore(deps.redis, deps.keys, deps.keyring.seal);
    this.answers = new Answers({
      store: deps.store,
      mailbox: deps.mailbox,
      answerStore: this.answerStore,
      hitStore: this.hitStore,
      policies: () => deps.live().set,
      sealKey: deps.keyring.seal,
      ...(deps.peerMatches ? { peerMatches: deps.peerMatches } : {}),
    });
  }

  /**
   * For the api role: the use cases behind POST /v1/packets/:id/hits, POST /v1/packets/:id/matches,
   * GET /v1/dossiers/:id/hits and GET /v1/answers/rates.
   */
  http(): { hits: Hits; matches: Matches; bundles: Bundles; answers: Answers } {
    const { deps } = this;
    const hits = new Hits({
      store: deps.store,
      mailbox: deps.mailbox,
      hitStore: this.hitStore,
      audit: deps.audit,
      live: deps.live,
      gatewayKey: deps.gatewayKey,
      sealKey: deps.keyring.seal,
      idKey: deps.keyring.hitId,
      onNewHits: async (dossierId, source, total) => {
        await deps.onNewHits?.(dossierId, source, total).catch((err: Error) => deps.logger.warn({ dossier: dossierId, err: err.message }, 'hits relay to the peer not queued'));
        if (!deps.live().set.sources.get(source)?.source.webhook) return;
        await this.notices().enqueue(dossierId, total).catch((err: Error) => deps.logger.warn({ dossier: dossierId, err: err.message }, 'hit notice not queued'));
      },
    });
    const matches = new Matches({
      store: deps.store,
      mailbox: deps.mailbox,
      audit: deps.audit,
      live: deps.live,
      gatewayKey: deps.gatewayKey,
      sealKey: deps.keyring.seal,
      idKey: deps.keyring.hitId,
      answerStore: this.answerStore,
      hitStore: this.hitStore,
      ...(deps.onMatchAnswered ? { onMatchAnswered: deps.onMatchAnswered } : {}),
    });
    const bundles = new Bundles({
      store: deps.store,
      hitStore: this.hitStore,
      answers: this.answers,
      audit: deps.audit,
      live: deps.live,
      gatewayKey: deps.gatewayKey,
      sourceKeys: this.sourceKeys,
    });
    return { hits, matches, bundles, answers: this.answers };
  }

  /** The notice queue, opened on first use (nothing is written to Redis for sources without a webhook). */
  private notices(): HitNoticeQueue {
    if (!this.noticeQueue) {
      const conn = connectRedisForQueue(this.deps.redisUrl);
      const queue = (this.noticeQueue = new HitNoticeQueue(conn, this.deps.keys.prefix));
      this.closers.push(() => conn.quit(), () => queue.close());
    }
    return this.noticeQueue;
  }

  /** For the worker role: delivers webhook notices. */
  startNoticeWorker(): QueueWorker<HitNoticeJob> {
    const { deps } = this;
    const conn = connectRedisForQueue(deps.redisUrl);
    const notifier = new HitNotifier({ store: deps.store, hitStore: this.hitStore, live: deps.live, gatewayKey: deps.gatewayKey, sourceKeys: this.sourceKeys, timeoutMs: deps.noticeTimeoutMs });
    const worker = startHitNoticeWorker(conn, deps.keys.prefix, (dossierId) => notifier.deliver(dossierId));
    worker.on('failed', (job, err) =>
      deps.logger.warn({ job: job?.id, attempts: job?.attemptsMade, code: (err as { code?: string }).code, err: err.message }, 'hit notice not delivered'),
    );
    worker.on('error', (err) => deps.logger.warn({ err: err.message }, 'hit notice worker connection problem'));
    this.closers.push(() => conn.quit(), () => worker.close());
    return worker;
  }

  async close(): Promise<void> {
    for (const c of this.closers.splice(0).reverse()) await c().catch(() => undefined);
  }
}
