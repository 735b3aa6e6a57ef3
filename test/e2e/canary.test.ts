/**
 * Canary scan: a dossier whose every free-text value carries a marker goes through the whole flow —
 * packets pulled and acknowledged, hits posted and bundled, a preview, an audit search, refused
 * submissions. Afterwards the marker appears nowhere in Redis (any key type), the logs (debug level),
 * the audit trail, any error answer, the queue dashboard's data (GET /v1/queues) or the metrics
 * (GET /metrics). "~" never occurs in base64, so ciphertext cannot hold it by chance.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decryptAndVerify, parseArmoredPrivateKey, parseArmoredPublicKey } from '../../gateway/crypto/openpgp.js';
import { validateDossier } from '../../gateway/dossier/validate.js';
import { api, dumpKeys, fixture, PARTNERS, ROOT, startTestGateway, TOKENS, waitSettled, type TestGateway } from '../helpers/gateway.js';

const MARK = '~CNRY';
const logs: string[] = [];
let gw: TestGateway;
/** Answers that must not carry the marker: errors, audit search results, queue counts, metrics. */
const answers: string[] = [];

/** Appends the marker to every string the schema still accepts with it. */
function canaryDossier(): { dossier: Record<string, unknown>; marked: number } {
  const dossier = fixture('dossier-full.json');
  let marked = 0;
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      node.forEach((v, i) => {
        if (typeof v === 'string') tryMark(() => (node[i] = `${v}${MARK}${marked}`), () => (node[i] = v));
        else visit(v);
      });
    } else if (node && typeof node === 'object') {
      for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
        const o = node as Record<string, unknown>;
        if (typeof v === 'string') tryMark(() => (o[k] = `${v}${MARK}${marked}`), () => (o[k] = v));
        else visit(v);
      }
    }
  };
  const tryMark = (apply: () => void, undo: () => void) => {
    apply();
    try {
      validateDossier(dossier);
      marked++;
    } catch {
      undo();
    }
  };
  visit(dossier);
  return { dossier, marked };
}

beforeAll(async () => {
  const logger = pino({ level: 'debug' }, { write: (line: string) => logs.push(line) });
  gw = await startTestGateway({}, logger);
});
afterAll(async () => {
  await gw?.stop();
});

describe('canary scan', () => {
  it('the marker reaches only the packets, hits and bundle — never storage, logs, audit, errors, queues or metrics', async () => {
    const { dossier, marked } = canaryDossier();
    expect(marked).toBeGreaterThan(40); // names, addresses, summaries, notes, purpose, reference…
    const source = TOKENS['west-midlands-rocu']!;

    const res = await api(gw.url, 'POST', '/v1/dossiers', source, dossier);
    expect(res.status).toBe(202);
    await waitSettled(gw.url, res.json.id);

    let housingPacket = '';
    let housingArmored = '';
    for (const partner of PARTNERS) {
      const list = await api(gw.url, 'GET', '/v1/packets', TOKENS[partner]);
      for (const p of list.json.packets) {
        const pulled = await api(gw.url, 'GET', `/v1/packets/${p.id}`, TOKENS[partner]);
        expect(pulled.status).toBe(200);
        if (partner === 'council-housing') housingArmored = pulled.text;
        expect((await api(gw.url, 'POST', `/v1/packets/${p.id}/ack`, TOKENS[partner])).status).toBe(200);
        if (partner === 'council-housing') housingPacket = p.id;
      }
    }

    // A real hit full of markers, on a ref from the decrypted packet: kept, but only sealed.
    const secret = await parseArmoredPrivateKey(await readFile(path.join(ROOT, 'test/fixtures/keys/council-housing.sec.asc'), 'utf8'));
    const gatewayKey = await parseArmoredPublicKey((await api(gw.url, 'GET', '/v1/keys/gateway')).text);
    const packet = JSON.parse((await decryptAndVerify(housingArmored, secret, [gatewayKey])).data) as { dossier: { subjects: Array<{ id: string }> } };
    const hit = await api(gw.url, 'POST', `/v1/packets/${housingPacket}/hits`, TOKENS['council-housing'], {
      schema: 'cordon.hits/v1',
      packet: housingPacket,
      hits: [{ subject: packet.dossier.subjects[0]!.id, kind: 'tenancy', detail: { line1: `18 Cedar Road${MARK}`, postcode: 'CV6 5HX', note: `rent arrears${MARK}` }, matchedOn: ['name'], confidence: 'confirmed', partnerRecordRef: `HSG-1${MARK}` }],
    });
    expect(hit.status).toBe(202);

    // Hits whose refs are unknown are refused: the marker in them must not be echoed.
    const badHits = await api(gw.url, 'POST', `/v1/packets/${housingPacket}/hits`, TOKENS['council-housing'], {
      schema: 'cordon.hits/v1',
      packet: housingPacket,
      hits: [{ subject: `ref_unknown${MARK}`, kind: 'tenancy', detail: { line1: `1 Road${MARK}` }, matchedOn: ['name'], confidence: 'possible' }],
    });
    expect(badHits.status).toBeGreaterThanOrEqual(400);
    answers.push(badHits.text);

    // Refused dossiers: a schema violation and SECRET, both full of markers.
    for (const bad of [{ ...dossier, unexpected: `x${MARK}` }, { ...dossier, classification: 'SECRET' }, { ...dossier, subjects: 'nope' }]) {
      const r = await api(gw.url, 'POST', '/v1/dossiers', source, bad);
      expect(r.status).toBeGreaterThanOrEqual(400);
      answers.push(r.text);
    }
    // A preview (its answer is the partner's view and may hold markers; only storage and logs are scanned).
    const preview = await api(gw.url, 'POST', '/v1/preview', TOKENS['governance'], { dossier, partner: 'council-housing' });
    expect(preview.status).toBe(200);
    // An audit search by the marked reference.
    const search = await api(gw.url, 'GET', `/v1/audit?reference=${encodeURIComponent(String(dossier.reference))}`, TOKENS['governance']);
    expect(search.status).toBe(200);
    answers.push(JSON.stringify(search.json.records ?? []));

    // The bundle (the force's own view; pulled to exercise the path).
    expect((await api(gw.url, 'GET', `/v1/dossiers/${res.json.id}/hits`, source)).status).toBe(200);

    // The queue dashboard's data (governance) and the metrics, after all of the above: counts and codes only.
    const queues = await api(gw.url, 'GET', '/v1/queues', TOKENS['governance']);
    expect(queues.status).toBe(200);
    expect(queues.json.queues.length).toBeGreaterThan(0);
    answers.push(queues.text);
    const metrics = await api(gw.url, 'GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(/cordon_dossiers_received_total/);
    answers.push(metrics.text);

    const dump = [...(await dumpKeys(gw.redis, gw.prefix))].map(([k, v]) => `${k}\t${v}`);
    expect(dump.length).toBeGreaterThan(10);
    expect(dump.filter((line) => line.includes(MARK))).toEqual([]);
    expect(logs.length).toBeGreaterThan(0);
    expect(logs.filter((line) => line.includes(MARK))).toEqual([]);
    expect(answers.filter((text) => text.includes(MARK))).toEqual([]);
  });
});
