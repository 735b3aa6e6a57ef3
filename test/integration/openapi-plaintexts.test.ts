/**
 * The plaintexts inside the OpenPGP messages against their schemas in the OpenAPI description: each
 * partner's packet or match request, the force's hits bundle (hits, answers and links in it), and the
 * recall notices, all decrypted with the recipients' TEST keys from a real gateway.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decryptAndVerify, parseArmoredPrivateKey, parseArmoredPublicKey } from '../../gateway/crypto/openpgp.js';
import { api, fixture, ROOT, startTestGateway, TOKENS, until, waitSettled, type TestGateway } from '../helpers/gateway.js';
import { responseValidator } from '../helpers/openapi.js';

const FORCE = TOKENS['west-midlands-rocu'];
let gw: TestGateway;
let id: string;
let status: any;

async function open(owner: string, armored: string): Promise<any> {
  const secret = await parseArmoredPrivateKey(await readFile(path.join(ROOT, `test/fixtures/keys/${owner}.sec.asc`), 'utf8'));
  const gatewayKey = await parseArmoredPublicKey((await api(gw.url, 'GET', '/v1/keys/gateway')).text);
  return JSON.parse((await decryptAndVerify(armored, secret, [gatewayKey])).data);
}

/** The partner's message `packetId`, decrypted. */
async function pull(partner: string, packetId: string): Promise<any> {
  const res = await api(gw.url, 'GET', `/v1/packets/${packetId}`, TOKENS[partner]);
  expect(res.status).toBe(200);
  return open(partner, res.text);
}

function expectSchema(name: string, value: unknown): void {
  expect(responseValidator().checkSchema(name, value), name).toBeUndefined();
}

beforeAll(async () => {
  gw = await startTestGateway();
  const res = await api(gw.url, 'POST', '/v1/dossiers', FORCE, fixture('dossier-full.json'));
  expect(res.status).toBe(202);
  id = res.json.id;
  status = await waitSettled(gw.url, id);
});

afterAll(async () => {
  await gw?.stop();
});

describe('the plaintexts partners and forces decrypt', () => {
  it('packets and match requests match PacketPlaintext and MatchRequestPlaintext', async () => {
    let packets = 0;
    let matches = 0;
    for (const d of status.deliveries) {
      if (d.matchPacketId) {
        const plaintext = await pull(d.partner, d.matchPacketId);
        if (plaintext.blindMatch) {
          // Riverside Homes is asked blind: blinded keys only.
          expectSchema('BlindMatchRequestPlaintext', plaintext);
          expect(plaintext.blindMatch.recipient).toBe(d.partner);
          continue;
        }
        expectSchema('MatchRequestPlaintext', plaintext);
        expect(plaintext.match.recipient).toBe(d.partner);
        matches++;
      } else if (d.packetId) {
        const plaintext = await pull(d.partner, d.packetId);
        expectSchema('PacketPlaintext', plaintext);
        expect(plaintext.packet.recipient).toBe(d.partner);
        packets++;
      }
    }
    expect(packets).toBeGreaterThan(0);
    expect(matches).toBeGreaterThan(0);
  });

  it('the hits bundle, with a hit and answers in it, matches HitsBundlePlaintext', async () => {
    const housing = status.deliveries.find((d: any) => d.partner === 'council-housing');
    const packet = await pull('council-housing', housing.packetId);
    const ref = packet.dossier.subjects[0].id;
    const hits = {
      schema: 'cordon.hits/v1',
      packet: housing.packetId,
      hits: [{ subject: ref, kind: 'tenancy', detail: { line1: '18 Cedar Road', town: 'Coventry', postcode: 'CV6 5HX', tenure: 'council' }, matchedOn: ['name'], confidence: 'confirmed', partnerRecordRef: 'HSG-1' }],
    };
    expect((await api(gw.url, 'POST', `/v1/packets/${housing.packetId}/hits`, TOKENS['council-housing'], hits)).status).toBe(202);
    const asked = status.deliveries.find((d: any) => d.matchPacketId);
    const match = await pull(asked.partner, asked.matchPacketId);
    const answers = { schema: 'cordon.matches/v1', packet: asked.matchPacketId, results: match.subjects.map((s: any) => ({ subject: s.ref, result: 'no_trace' })) };
    expect((await api(gw.url, 'POST', `/v1/packets/${asked.matchPacketId}/matches`, TOKENS[asked.partner], answers)).status).toBe(202);

    const res = await api(gw.url, 'GET', `/v1/dossiers/${id}/hits`, FORCE);
    expect(res.status).toBe(200);
    const bundle = await open('west-midlands', res.text);
    expectSchema('HitsBundlePlaintext', bundle);
    expect(bundle.bundle.count).toBe(1);
    expect(bundle.matches[asked.partner]).toBeDefined();
  });

  it('recall notices match RecallNoticePlaintext', async () => {
    const res = await api(gw.url, 'POST', `/v1/dossiers/${id}/recall`, FORCE, { reason: 'corrected', note: 'the second address was wrong' });
    expect(res.status).toBe(200);
    let notices = 0;
    for (const outcome of res.json.partners as Array<{ partner: string; notice?: string }>) {
      if (!outcome.notice) continue;
      const listed = await until(`${outcome.partner}'s notice`, async () => {
        const list = await api(gw.url, 'GET', '/v1/packets', TOKENS[outcome.partner]);
        return (list.json.packets as any[]).find((p) => p.id === outcome.notice);
      });
      expect(listed.type).toBe('recall');
      const notice = await pull(outcome.partner, outcome.notice);
      expectSchema('RecallNoticePlaintext', notice);
      expect(notice.recall.reason).toBe('corrected');
      notices++;
    }
    expect(notices).toBeGreaterThan(0);
  });
});
