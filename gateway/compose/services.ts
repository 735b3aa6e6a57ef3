/**
 * The services both roles share, built in dependency order on one Redis connection: the dossier store
 * and mailbox, the audit trail (audit.ts), retention, the policy reloader, then the hits module, the
 * cross-border exchange and recall. The last three refer to one another (new hits are relayed to
 * peers by the exchange, a peer's recall is carried out by recall, and a recall is passed on to peers
 * by the exchange); they do so through closures that are only called once start-up is over, so each
 * can be built before the one it names. The policy reloader's SIGHUP listener is registered after the
 * clients file's (clients.ts). Nothing here serves HTTP or consumes a queue: the roles do (worker.ts,
 * api.ts), and the api role hands its dossier queue back through `useDossierQueue`.
 */
import type { AuditLog } from '../audit/log.js';
import { refuseDemoKeys } from '../config/demo-material.js';
import { Keyring } from '../crypto/keyring.js';
import { parseRecipientKey, type RecipientKey } from '../crypto/openpgp.js';
import { GatewayError } from '../errors/index.js';
import { Exchange } from '../exchange/exchange.js';
import { PeerDirectory } from '../exchange/peers.js';
import { ExchangeQueue } from '../queue/exchange-queue.js';
import { Approvals } from '../fanout/approvals.js';
import { FollowUps } from '../fanout/followup.js';
import { HitsModule } from '../hits/module.js';
import { FollowUpStore } from '../store/followups.js';
import { Mailbox } from '../mailbox/mailbox.js';
import { policyReloads, setPolicyRevision } from '../metrics/metrics.js';
import type { LiveSet } from '../policy/live.js';
import { loadPolicySet } from '../policy/load.js';
import { PolicyReloader } from '../policy/reloader.js';
import type { DossierQueue } from '../queue/queue.js';
import { Recall } from '../recall/recall.js';
import { Eraser } from '../retention/erase.js';
import { RetentionSweeper } from '../retention/sweeper.js';
import { DossierStore } from '../store/dossiers.js';
import { RedisMailbox } from '../store/mailbox.js';
import { RedisRetention } from '../store/retention.js';
import { ExchangeStore } from '../store/exchange.js';
import { ExchangeMatchStore } from '../store/exchange-matches.js';
import { connectRedisForQueue, Keys } from '../store/redis.js';
import { startAuditTrail, type Secrets } from './audit.js';
import { recordAuth, sealLegacyRecords } from './records.js';
import type { Wiring } from './context.js';
import type { LivePolicies } from './policies.js';
import type { RedisConnection } from './redis.js';

/** The master secret itself stays here: everything else gets the keys derived from it (`keyring`). */
export interface Services extends RedisConnection, Omit<Secrets, 'master'> {
  live: () => LiveSet<RecipientKey>;
  /** The policy sets this process served before the live one (compose/policies.ts). */
  policyHistory: LivePolicies['history'];
  /** Every key derived from the master secret, by name. */
  keyring: Keyring;
  keys: Keys;
  store: DossierStore;
  mailbox: Mailbox;
  audit: AuditLog;
  retention: RetentionSweeper;
  policyReloader: PolicyReloader<RecipientKey>;
  hitsModule: HitsModule;
  peerDirectory: PeerDirectory;
  exchange: Exchange;
  recall: Recall;
  /** Follow-ups after match requests (after-match agreements): the job, the stages, the approvals. */
  followUps: FollowUps;
  approvals: Approvals;
  /** The api role hands over its dossier queue: inbound dossiers from peers are fanned out through it. */
  useDossierQueue(queue: DossierQueue): void;
}

export async function buildServices(wiring: Wiring, { redis, redisUrl }: RedisConnection, secrets: Secrets, policies: LivePolicies): Promise<Services> {
  const { config, logger, closers } = wiring;
  const { master, gatewayKey } = secrets;
  const keyring = new Keyring(master);
  const { live } = policies;
  const keys = new Keys(config.redisPrefix);
  // Dossier and packet records are authenticated (store/record-mac.ts); a refused one is audited.
  // The stores come before the trail (which reads nothing of them); a refusal is audited once it exists.
  const trail: { audit?: AuditLog } = {};
  const store = new DossierStore(redis, keys, recordAuth(wiring, keyring, () => trail.audit));
  const mailbox = new Mailbox(new RedisMailbox(redis, keys, store.authenticated));
  const audit = (trail.audit = await startAuditTrail(wiring, redis, keys, secrets, keyring, live().set.revision, policies.signed));
  await sealLegacyRecords(wiring, store.authenticated, audit);
  // Retention: erasures are scheduled by intake and the mailbox, and swept (audited) by the workers.
  const retentionStore = new RedisRetention(redis, keys, store.authenticated);
  const retention = new RetentionSweeper(retentionStore, new Eraser(retentionStore, audit), {
    onError: (err, member) => logger.error({ err: err.message, item: member.split('|')[0] }, 'retention erasure failed; retried on the next sweep'),
  });
  // Hot reload on a change in the policy directory or SIGHUP; a set that fails validation is refused
  // and the last good one stays live (policy/reloader.ts).
  const policyReloader = new PolicyReloader<RecipientKey>({
    dir: config.policyDir,
    current: live,
    apply: policies.replace,
    parseKey: (armored, fp) => parseRecipientKey(armored, fp),
    // In production a set pinning a published test key is refused like an invalid one.
    ...(config.production ? { load: async (dir: string) => refuseDemoKeys(await loadPolicySet(dir)) } : {}),
    // With policy signers: a set not signed by the quorum, or signed at an older sequence, is refused.
    ...(policies.approve ? { approve: policies.approve } : {}),
    audit,
    logger,
    onOutcome: (o) => {
      if (o.status !== 'unchanged') policyReloads.inc({ outcome: o.status });
      if (o.status === 'loaded') setPolicyRevision(o.revision);
    },
  });
  policyReloader.watch();
  closers.push(async () => policyReloader.close());
  const onPolicyHup = () => void policyReloader.reload('SIGHUP');
  process.on('SIGHUP', onPolicyHup);
  closers.push(async () => process.off('SIGHUP', onPolicyHup));
  // Cross-border exchange with peer forces' gateways (gateway/exchange): hits on a peer's dossier go back to it.
  let dossierQueue: DossierQueue | undefined;
  const hitsModule = new HitsModule({
    redis, redisUrl, keys, store, mailbox, audit, live, gatewayKey, keyring, logger, noticeTimeoutMs: config.hitNoticeTimeoutMs,
    // Called only when hits arrive over HTTP, after `exchange` below exists.
    onNewHits: (dossierId, source, total) => exchange.onNewHits(dossierId, source, total),
    peerMatches: (dossierId, now) => exchange.matchOut.summary(dossierId, now),
    // Answers on a match request: the follow-up job decides what, if anything, follows.
    onMatchAnswered: (packet) => (dossierQueue ? dossierQueue.enqueueFollowUp(packet.dossier, packet.partner) : Promise.reject(new GatewayError('internal', 'no dossier queue in this role'))),
  });
  const followUpStore = new FollowUpStore(redis, keys, keyring.seal);
  const followUps = new FollowUps({ store, mailbox, audit, live, gatewayKey, keyring, answerStore: hitsModule.answerStore, followUps: followUpStore, packetTtlDays: config.packetTtlDays });
  const approvals = new Approvals({
    store, audit, followUps: followUpStore, followUp: followUps,
    // A follow-up to an after-match peer (`partner: "peer:<id>"`): called only once `exchange` below exists.
    peer: (client, id, request) => exchange.followUps.approve(client, id, request),
    enqueue: (id, partner) => (dossierQueue ? dossierQueue.enqueueFollowUp(id, partner) : Promise.reject(new GatewayError('internal', 'no dossier queue in this role'))),
  });
  closers.push(() => hitsModule.close());
  let exchangeQueue: ExchangeQueue | undefined;
  const exchangeRetry = { attempts: config.exchangeAttempts, backoffMs: config.exchangeBackoffMs };
  const peerDirectory = new PeerDirectory(live, (armored, fp) => parseRecipientKey(armored, fp));
  const exchange: Exchange = new Exchange({
    records: new ExchangeStore(redis, keys), store, audit, live, gatewayKey, keyring, hitStore: hitsModule.hitStore,
    answerStore: hitsModule.answerStore, followUps: followUpStore, matchStore: new ExchangeMatchStore(redis, keys, keyring.seal), sourceKeys: hitsModule.sourceKeys,
    peers: peerDirectory,
    stateDir: config.stateDir,
    forceId: config.forceId,
    fetchTimeoutMs: config.exchangeTimeoutMs,
    freshness: { freshnessMs: config.exchangeFreshnessMs, clockSkewMs: config.exchangeClockSkewMs },
    // Opened on first use; its closers, pushed then, run first on shutdown.
    queue: () => {
      if (!exchangeQueue) {
        const conn = connectRedisForQueue(redisUrl);
        const q = (exchangeQueue = new ExchangeQueue(conn, config.redisPrefix, exchangeRetry));
        closers.push(() => conn.quit(), () => q.close());
      }
      return exchangeQueue;
    },
    enqueueDossier: (id) => (dossierQueue ? dossierQueue.enqueue(id) : Promise.reject(new GatewayError('internal', 'no dossier queue in this role'))),
    // A peer's recall envelope recalls, here, the dossier made from its dossier envelope.
    recall: (id, actor, reason) => recall.recallFromPeer(id, actor, reason),
    retention,
  });
  // A recall is passed on to the peers the dossier was sent to (exchange.recallPeers).
  const recall = new Recall({
    store, mailboxes: mailbox.store, audit, eraser: new Eraser(retentionStore, audit), live, gatewayKey, keyring,
    onRecalled: (r) => exchange.recallPeers(r.dossierId, r.source, { reason: r.reason, issuedAt: r.issuedAt }),
  });
  return {
    redis, redisUrl, gatewayKey, live, policyHistory: policies.history, keyring, keys, store, mailbox, audit, retention, policyReloader, hitsModule, peerDirectory, exchange, recall, followUps, approvals,
    useDossierQueue: (queue) => {
      dossierQueue = queue;
    },
  };
}
