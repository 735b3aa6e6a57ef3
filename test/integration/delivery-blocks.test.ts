/**
 * Fail closed per delivery: an expired agreement, an agreement below the dossier's classification, a
 * missing, expired, revoked or mismatched partner key each block that one delivery with a reason code
 * and never fall back to another key; the other partners still get their packets. Unusable partner and
 * peer gateway keys show in /readyz as detail, without taking the gateway out of service.
 */
import { copyFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, fixture, ROOT, startTestGateway, TOKENS, waitSettled, type TestGateway } from '../helpers/gateway.js';
import { copyPolicies, editYaml } from '../helpers/policies.js';

let gw: TestGateway;
let policies: Awaited<ReturnType<typeof copyPolicies>>;

beforeAll(async () => {
  policies = await copyPolicies();
  const p = (id: string) => path.join(policies.dir, 'partners', `${id}.yaml`);
  await editYaml(p('dvla'), ['agreement', 'reviewBy'], '2026-01-31'); // past its review date
  await editYaml(p('hmrc'), ['agreement', 'highestClassification'], 'OFFICIAL'); // below OFFICIAL-SENSITIVE
  await rm(path.join(policies.dir, 'keys', 'council-housing.asc')); // key missing
  await rm(path.join(policies.dir, 'keys', 'riverside-homes.asc')); // key missing: no blind-match request either
  // An expired key, pinned correctly: still refused.
  const fps = fixture('keys/fingerprints.json') as Record<string, string>;
  await copyFile(path.join(ROOT, 'test/fixtures/keys/expired.asc'), path.join(policies.dir, 'keys', 'dwp-benefits.asc'));
  await editYaml(p('dwp-benefits'), ['partner', 'key', 'fingerprint'], fps.expired);
  // A revoked key, pinned correctly.
  await copyFile(path.join(ROOT, 'test/fixtures/keys/revoked.asc'), path.join(policies.dir, 'keys', 'immigration-enforcement.asc'));
  await editYaml(p('immigration-enforcement'), ['partner', 'key', 'fingerprint'], fps.revoked);
  // A valid key that is not the pinned one.
  await copyFile(path.join(ROOT, 'test/fixtures/keys/intruder.asc'), path.join(policies.dir, 'keys', 'childrens-services.asc'));
  // Peer gateways: one pinning another key than its file holds, one whose key file is missing.
  const peer = (id: string) => path.join(policies.dir, 'peers', `${id}.yaml`);
  await editYaml(peer('warwickshire'), ['peer', 'key', 'fingerprint'], fps.intruder);
  await copyFile(peer('warwickshire'), peer('staffordshire'));
  await editYaml(peer('staffordshire'), ['peer', 'id'], 'staffordshire');
  await editYaml(peer('staffordshire'), ['peer', 'force'], 'staffordshire');
  await editYaml(peer('staffordshire'), ['peer', 'key', 'file'], 'keys/staffordshire-gateway.asc');
  gw = await startTestGateway({ policyDir: policies.dir });
});

afterAll(async () => {
  await gw?.stop();
  await policies?.cleanup();
});

describe('blocked deliveries', () => {
  it('each broken agreement or key blocks only its own delivery, with a reason', async () => {
    const res = await api(gw.url, 'POST', '/v1/dossiers', TOKENS['west-midlands-rocu'], fixture('dossier-full.json'));
    expect(res.status).toBe(202);
    const status = await waitSettled(gw.url, res.json.id);
    const by = Object.fromEntries(status.deliveries.map((d: any) => [d.partner, d]));
    expect(by.dvla).toMatchObject({ state: 'blocked', reason: 'agreement_expired' });
    expect(by.hmrc).toMatchObject({ state: 'blocked', reason: 'classification_above_agreement' });
    expect(by['council-housing']).toMatchObject({ state: 'blocked', reason: 'recipient_key_invalid' });
    expect(by['dwp-benefits']).toMatchObject({ state: 'blocked', reason: 'recipient_key_invalid' });
    expect(by['immigration-enforcement']).toMatchObject({ state: 'blocked', reason: 'recipient_key_invalid' });
    expect(by['childrens-services']).toMatchObject({ state: 'blocked', reason: 'recipient_key_invalid' });
    expect(by['riverside-homes']).toMatchObject({ state: 'blocked', reason: 'recipient_key_invalid' });
    for (const d of status.deliveries) expect(d.packetId).toBeUndefined();
    for (const partner of Object.keys(by)) {
      const list = await api(gw.url, 'GET', '/v1/packets', TOKENS[partner]);
      expect(list.json.packets, partner).toEqual([]);
    }
  });

  it('an OFFICIAL dossier still reaches hmrc, whose agreement stops at OFFICIAL', async () => {
    // The minimal dossier asks for business checks too, which HMRC serves (policies/gateway.yaml).
    const res = await api(gw.url, 'POST', '/v1/dossiers', TOKENS['west-midlands-rocu'], { ...fixture('dossier-minimal.json'), requests: { checks: ['vehicles', 'businesses'] } });
    const status = await waitSettled(gw.url, res.json.id);
    const hmrc = status.deliveries.find((d: any) => d.partner === 'hmrc');
    // The minimal dossier's only subject is an adult member with a vehicle: hmrc gets a packet.
    expect(hmrc.state).toBe('delivered');
  });

  it('readiness names the partners whose keys are unusable', async () => {
    const ready = await api(gw.url, 'GET', '/readyz');
    expect(ready.status).toBe(200); // the other partners are still served
    expect(ready.json.checks.keys.detail).toMatch(/childrens-services/);
    expect(ready.json.checks.keys.detail).toMatch(/council-housing/);
  });

  it('readiness names the peers whose gateway keys are unusable, as detail only', async () => {
    const ready = await api(gw.url, 'GET', '/readyz');
    expect(ready.status).toBe(200); // the partners and the other peers are still served
    expect(ready.json.status).toBe('ready');
    expect(ready.json.checks.peerKeys).toEqual({ ready: true, detail: 'exchange blocked for unusable peer keys: staffordshire, warwickshire' });
  });
});
