/** /metrics speaks Prometheus and carries counts, stages, queue depth and the policy revision — never a value. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, fixture, startTestGateway, TOKENS, waitSettled, type TestGateway } from '../helpers/gateway.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway();
});
afterAll(async () => {
  await gw?.stop();
});

describe('/metrics', () => {
  it('counts dossiers, packets, stages and queue depth', async () => {
    const res = await api(gw.url, 'POST', '/v1/dossiers', TOKENS['west-midlands-rocu'], fixture('dossier-full.json'));
    await api(gw.url, 'POST', '/v1/dossiers', TOKENS['west-midlands-rocu'], { ...fixture('dossier-full.json'), classification: 'SECRET' });
    await waitSettled(gw.url, res.json.id);
    const m = await api(gw.url, 'GET', '/metrics');
    expect(m.status).toBe(200);
    expect(m.headers.get('content-type')).toMatch(/text\/plain/);
    expect(m.text).toMatch(/cordon_dossiers_received_total\{outcome="accepted",reason=""\} [1-9]/);
    expect(m.text).toMatch(/cordon_dossiers_received_total\{outcome="rejected",reason="classification_refused"\} [1-9]/);
    expect(m.text).toMatch(/cordon_packets_total\{partner="dvla",outcome="delivered",reason="",revision="[0-9a-f]{16}"\} [1-9]/);
    expect(m.text).toMatch(/cordon_stage_duration_seconds_bucket\{le="[^"]+",stage="encrypt"\}/);
    expect(m.text).toMatch(/cordon_queue_jobs\{state="waiting"\} \d+/);
    expect(m.text).toMatch(/cordon_audit_writes_total\{outcome="written"\} [1-9]/);
    expect(m.text).toMatch(/cordon_policy_revision_info\{revision="[0-9a-f]{16}"\} 1/);
    for (const value of ['Okafor', 'QQ123456C', 'WMP-OCG-2026-00412', 'CV6 5HX']) expect(m.text).not.toContain(value);
  });
});

describe('/metrics on a separate internal address (CORDON_METRICS_PORT / CORDON_METRICS_HOST)', () => {
  it('serves /metrics on its own listener only, and the API port no longer does', async () => {
    const internal = await startTestGateway({ metricsPort: 0, metricsHost: '127.0.0.1' });
    try {
      expect(internal.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(internal.metricsUrl).not.toBe(internal.url);
      const onApi = await api(internal.url, 'GET', '/metrics');
      expect(onApi.status).toBe(404);
      expect(onApi.text).not.toContain('cordon_');
      const m = await api(internal.metricsUrl!, 'GET', '/metrics');
      expect(m.status).toBe(200);
      expect(m.text).toMatch(/cordon_policy_revision_info\{revision="[0-9a-f]{16}"\} 1/);
      // Nothing of the API is reachable there.
      const other = await api(internal.metricsUrl!, 'GET', '/v1/packets', TOKENS['dvla']);
      expect(other.status).toBe(404);
      expect((await api(internal.metricsUrl!, 'GET', '/healthz')).status).toBe(404);
    } finally {
      await internal.stop();
    }
  });
});
