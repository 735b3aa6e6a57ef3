/**
 * What GET /readyz reports, check by check, for the api role. Only what stops the gateway doing its
 * work takes it out of service (Redis unreachable, no replica to confirm writes on a master that had
 * one, an unwritable audit trail or one cut by a fail-over, no partner policies);
 * what blocks only part of the work (a refused policy reload, unusable partner or peer keys) is
 * reported with the gateway still ready. Everything is read live at each probe, never at start-up.
 */
import type { HttpDeps } from '../http/app.js';
import { replicationOf } from '../store/replication.js';
import type { Services } from './services.js';

type ReadinessDeps = Pick<Services, 'redis' | 'audit' | 'live' | 'peerDirectory' | 'policyReloader'>;

export function readinessChecks({ redis, audit, live, peerDirectory, policyReloader }: ReadinessDeps): HttpDeps['readiness'] {
  return async () => {
    const unusable = [...live().keys].filter(([, k]) => 'invalid' in k).map(([id]) => id);
    const unusablePeers = (await peerDirectory.unusableKeys()).map((k) => k.peer);
    const redisCheck = await redis.ping().then(
      () => ({ ready: true, detail: 'ok' }),
      (err: Error) => ({ ready: false, detail: `unreachable: ${err.message}` }),
    );
    // How many replicas confirm writes; not ready while writes are refused for want of one, or while a
    // fail-over has cut the audit trail (store/replication.ts).
    const replication = await replicationOf(redis)?.status();
    return {
      redis: redisCheck,
      ...(replication ? { replication: { ready: replication.ready, detail: replication.detail } } : {}),
      // The gateway refuses work it cannot audit, so an unwritable trail takes it out of service.
      audit: await audit.health(),
      // A refused reload leaves the last good set serving: reported, not taken out of service.
      policies: live().set.partners.size
        ? { ready: true, detail: policyReloader.status() ?? `revision ${live().set.revision}, ${live().set.partners.size} partners` }
        : { ready: false, detail: 'no partner policies loaded' },
      // Unusable partner keys block those deliveries only; the gateway still serves the others.
      keys: unusable.length ? { ready: true, detail: `deliveries blocked for unusable partner keys: ${unusable.join(', ')}` } : { ready: true, detail: 'ok' },
      // Likewise peers: nothing is exchanged with a peer whose pinned key is unusable; the rest is served.
      peerKeys: unusablePeers.length ? { ready: true, detail: `exchange blocked for unusable peer keys: ${unusablePeers.join(', ')}` } : { ready: true, detail: 'ok' },
    };
  };
}
