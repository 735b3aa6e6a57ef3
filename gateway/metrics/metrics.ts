/**
 * Prometheus metrics. One registry per process; labels carry partner ids, outcomes, reason codes and
 * the policy revision, never anything from a dossier.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'cordon_' });

export const dossiersReceived = new Counter({
  name: 'cordon_dossiers_received_total',
  help: 'Dossiers pushed to the gateway, by outcome (accepted, replayed, rejected) and reason code',
  labelNames: ['outcome', 'reason'] as const,
  registers: [registry],
});

export const packets = new Counter({
  name: 'cordon_packets_total',
  help: 'Deliveries settled, by partner, outcome (delivered, blocked) and reason code',
  labelNames: ['partner', 'outcome', 'reason', 'revision'] as const,
  registers: [registry],
});

export const packetEvents = new Counter({
  name: 'cordon_packet_events_total',
  help: 'Packets retrieved or acknowledged by partners',
  labelNames: ['partner', 'event'] as const,
  registers: [registry],
});

export const stageSeconds = new Histogram({
  name: 'cordon_stage_duration_seconds',
  help: 'Time spent per pipeline stage (intake, decide, redact, encrypt, store, fanout)',
  labelNames: ['stage'] as const,
  buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  registers: [registry],
});

export const auditWrites = new Counter({
  name: 'cordon_audit_writes_total',
  help: 'Audit records written or failed; a failure means the audited action was refused',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

export const hitsReceived = new Counter({
  name: 'cordon_hits_received_total',
  help: 'Hits accepted from partners, by partner and kind',
  labelNames: ['partner', 'kind'] as const,
  registers: [registry],
});

const policyInfo = new Gauge({
  name: 'cordon_policy_revision_info',
  help: 'The policy set in force (value 1) by revision',
  labelNames: ['revision'] as const,
  registers: [registry],
});

export const policyReloads = new Counter({
  name: 'cordon_policy_reloads_total',
  help: 'Policy set reloads by outcome (loaded, refused)',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

type QueueReader = () => Promise<{ counts: Record<string, number>; oldestWaitingMs?: number }>;
let queueReader: QueueReader | undefined;

const queueAge = new Gauge({
  name: 'cordon_queue_oldest_waiting_seconds',
  help: 'Age of the oldest waiting fan-out job (0 when none waits)',
  registers: [registry],
});

new Gauge({
  name: 'cordon_queue_jobs',
  help: 'Fan-out jobs by state',
  labelNames: ['state'] as const,
  registers: [registry],
  // Called by prom-client on every scrape; a Redis outage leaves the last values (/readyz reports it).
  async collect() {
    if (!queueReader) return;
    try {
      const { counts, oldestWaitingMs } = await queueReader();
      for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      queueAge.set(oldestWaitingMs ? oldestWaitingMs / 1000 : 0);
    } catch {
      // the scrape still answers
    }
  },
});

/** Queue depth and the age of the oldest waiting job are read from Redis at scrape time. */
export function registerQueueGauges(read: QueueReader): void {
  queueReader = read;
}

/** Times an async stage into the histogram. */
export async function timed<T>(stage: string, fn: () => Promise<T>): Promise<T> {
  const end = stageSeconds.startTimer({ stage });
  try {
    return await fn();
  } finally {
    end();
  }
}

export function setPolicyRevision(revision: string): void {
  policyInfo.reset();
  policyInfo.set({ revision }, 1);
}
