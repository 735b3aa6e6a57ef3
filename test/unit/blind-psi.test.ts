import { describe, expect, it } from 'vitest';
import { buildGcs, decodeGcs, gcsHas, gcsValue } from '../../gateway/blind/gcs.js';
import { KEY_TYPES, matchKeys, recordFacts, subjectFacts, type KeyType } from '../../gateway/blind/keys.js';
import { answerRequest, blindRequest, BlindRefused, finishRequest, generateServerKey, makeSetup, openSetup, prfOutput, requestSize, SETUP_BUCKET } from '../../gateway/blind/psi.js';
import { randomBytes } from 'node:crypto';

const ALL = Object.keys(KEY_TYPES) as KeyType[];

const daniel = { id: 'S1', name: { given: 'Daniel', family: 'Okafor' }, dateOfBirth: '1987-04-12', identifiers: { niNumber: 'QQ123456C' }, vehicles: [{ vrm: 'AB12 CDE' }], addresses: [{ line1: '18 Cedar Rd', postcode: 'cv65hx' }] };
const samuel = { id: 'S2', name: { given: 'Samuel', family: 'Okafor' }, dateOfBirth: '1991-11-30' };

describe('match keys', () => {
  it('a dossier subject and a partner record written differently give the same keys', () => {
    const fromSubject = matchKeys(subjectFacts(daniel), ALL);
    const fromRecord = matchKeys(recordFacts({ given: 'DANNY', family: "okafor ", dateOfBirth: '1987-04-12', niNumber: 'qq 12 34 56', vrm: 'ab12cde', postcode: 'CV6 5HX', line1: '18 cedar road' }), ALL);
    expect(fromSubject.map((k) => k.type)).toEqual(['name-dob', 'ni-dob', 'vrm-family', 'address-family']);
    expect(fromRecord.map((k) => Buffer.from(k.input).toString())).toEqual(fromSubject.map((k) => Buffer.from(k.input).toString()));
  });

  it('each key type is its own domain, and a generalised date of birth makes no key', () => {
    const keys = matchKeys(subjectFacts(daniel), ALL);
    for (const k of keys) expect(Buffer.from(k.input).toString()).toContain(`cordon-blind-keys/1/${k.type}`);
    expect(matchKeys(subjectFacts({ ...daniel, dateOfBirth: '1987' }), ['name-dob', 'ni-dob'])).toEqual([]);
    expect(matchKeys(subjectFacts({ ...daniel, dateOfBirth: '1987-02-30' }), ['name-dob'])).toEqual([]);
  });

  it('only the key types asked for', () => {
    expect(matchKeys(subjectFacts(daniel), ['name-dob']).map((k) => k.type)).toEqual(['name-dob']);
  });
});

describe('Golomb-compressed set', () => {
  it('holds what was put in, rarely anything else, in about p + 1.5 bits each', () => {
    const digests = Array.from({ length: 5000 }, () => randomBytes(8));
    const gcs = buildGcs(digests, 20);
    const sorted = decodeGcs(gcs);
    expect(digests.every((d) => gcsHas(sorted, gcsValue(d, gcs.n, gcs.p)))).toBe(true);
    const others = Array.from({ length: 5000 }, () => randomBytes(8)).filter((d) => gcsHas(sorted, gcsValue(d, gcs.n, gcs.p)));
    expect(others.length).toBeLessThan(5);
    expect(gcs.data.length * 8).toBeLessThan(5000 * 22);
  });

  it('a truncated encoding is refused', () => {
    const gcs = buildGcs(Array.from({ length: 100 }, () => randomBytes(8)), 20);
    expect(() => decodeGcs({ ...gcs, data: gcs.data.slice(0, 10) })).toThrow(/truncated/);
  });
});

describe('blind matching protocol (RFC 9497 VOPRF, ristretto255-SHA512)', () => {
  const partner = generateServerKey();
  // The partner holds Daniel only.
  const held = matchKeys(subjectFacts(daniel), ALL);
  const setup = makeSetup(partner.publicKey, held.map((k) => prfOutput(partner, k.input)));
  const open = openSetup(setup);
  const items = [daniel, samuel].flatMap((s) => matchKeys(subjectFacts(s), ALL).map((key) => ({ ref: s.id, key })));

  it('the gateway finds the subject the partner holds and no trace of the other', () => {
    const { request, state } = blindRequest(items, 32);
    const answer = answerRequest(partner, 'pkt_x', request, 256);
    const result = finishRequest(state, answer, open);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.hits.get('S1')).toEqual(expect.arrayContaining(['name-dob', 'ni-dob', 'vrm-family', 'address-family']));
    expect(result.hits.get('S2')).toEqual([]);
  });

  it('the same subject blinded in two requests gives different values', () => {
    const one = blindRequest(items, 32).request.elements;
    const two = blindRequest(items, 32).request.elements;
    expect(one.filter((e) => two.includes(e))).toEqual([]);
  });

  it('padding hides the number of subjects and keys: one key or many, the same size', () => {
    expect(blindRequest(items.slice(0, 1), 32).request.elements).toHaveLength(32);
    expect(blindRequest(items, 32).request.elements).toHaveLength(32);
    expect(requestSize(5, 256)).toBe(32);
    expect(requestSize(40, 256)).toBe(64);
    expect(requestSize(300, 256)).toBeUndefined();
  });

  it('the setup reveals only its size rounded up', () => {
    expect(setup.n).toBe(SETUP_BUCKET);
  });

  it('made-up answer values, swapped values or another key obtain nothing', () => {
    const { request, state } = blindRequest(items, 32);
    const answer = answerRequest(partner, 'pkt_x', request, 256);
    const madeUp = { ...answer, evaluated: answer.evaluated.map(() => Buffer.from(generateServerKey().publicKey).toString('base64')) };
    expect(finishRequest(state, madeUp, open)).toEqual({ ok: false, reason: 'proof_invalid' });
    const swapped = { ...answer, evaluated: [answer.evaluated[1]!, answer.evaluated[0]!, ...answer.evaluated.slice(2)] };
    expect(finishRequest(state, swapped, open)).toEqual({ ok: false, reason: 'proof_invalid' });
    const other = generateServerKey();
    const byOther = answerRequest(other, 'pkt_x', request, 256);
    expect(finishRequest(state, byOther, open)).toEqual({ ok: false, reason: 'wrong_key' });
    expect(finishRequest(state, { ...byOther, publicKey: answer.publicKey }, open)).toEqual({ ok: false, reason: 'proof_invalid' });
    expect(finishRequest(state, { ...answer, evaluated: answer.evaluated.slice(1) }, open)).toEqual({ ok: false, reason: 'wrong_size' });
  });

  it("the partner's client refuses a request over its cap, or of another normaliser", () => {
    const { request } = blindRequest(items, 64);
    expect(() => answerRequest(partner, 'pkt_x', request, 32)).toThrow(BlindRefused);
    expect(() => answerRequest(partner, 'pkt_x', { ...request, normaliser: 'cordon-blind-keys/0' }, 256)).toThrow(/cordon-blind-keys\/0/);
    expect(() => answerRequest(partner, 'pkt_x', { ...request, elements: ['AAAA'] }, 256)).toThrow(/invalid element/);
  });
});
