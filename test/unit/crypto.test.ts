import { createHmac } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayError } from '../../gateway/errors/index.js';
import {
  checkRecipientKey,
  decryptAndVerify,
  encryptAndSign,
  loadOrCreateGatewayKey,
  parseRecipientKey,
  readPublicKeyInfo,
  type GatewayKey,
  type RecipientKey,
} from '../../gateway/crypto/openpgp.js';
import { base32, deriveKey, hmacId, loadOrCreateMasterSecret, seal, sealBytes, unseal } from '../../gateway/crypto/seal.js';
import { armorMessage, encryptAndSignBinary } from '../../gateway/crypto/binary.js';
import { gpgDecryptVerify, gpgImport, onPath, sqDecryptVerify, withGnupgHome } from '../helpers/gpg.js';

const ROOT = join(import.meta.dirname, '..', '..');
const FIXTURES = join(ROOT, 'test', 'fixtures', 'keys');
const fingerprints = JSON.parse(await readFile(join(FIXTURES, 'fingerprints.json'), 'utf8')) as Record<string, string>;

const partnerPublic = () => readFile(join(ROOT, 'policies', 'keys', 'council-housing.asc'), 'utf8');
const secretOf = (id: string) => readFile(join(FIXTURES, `${id}.sec.asc`), 'utf8');
const fixturePublic = (id: string) => readFile(join(FIXTURES, `${id}.asc`), 'utf8');

async function expectGatewayError(p: Promise<unknown>, code: string, reason?: string): Promise<GatewayError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GatewayError);
  const ge = err as GatewayError;
  expect(ge.code).toBe(code);
  if (reason) expect(ge.details?.[0]?.reason).toBe(reason);
  return ge;
}

const HAS_SQ = onPath('sq');
if (!HAS_SQ) console.warn('WARNING: `sq` (Sequoia) is not on PATH: the Sequoia interoperability test is SKIPPED');

const PLAINTEXT = JSON.stringify({ packet: { id: 'pkt_1', note: 'line one\nline two £ é' }, dossier: { subjects: [] } }, null, 2) + '\n';

let stateDir: string;
let gateway: GatewayKey;
let partner: RecipientKey;
let partnerSecret: openpgp.PrivateKey;

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'cordon-crypto-'));
  gateway = await loadOrCreateGatewayKey(join(stateDir, 'main'));
  partner = await parseRecipientKey(await partnerPublic(), fingerprints['council-housing']!);
  partnerSecret = await openpgp.readPrivateKey({ armoredKey: await secretOf('council-housing') });
});

afterAll(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

describe('gateway key', () => {
  it('is generated once, stored 0600 in a 0700 dir, and reloads with the same fingerprint', async () => {
    const dir = join(stateDir, 'reload');
    const first = await loadOrCreateGatewayKey(dir);
    const second = await loadOrCreateGatewayKey(dir);
    expect(first.fingerprint).toMatch(/^[0-9A-F]{40}$/);
    expect(second.fingerprint).toBe(first.fingerprint);
    expect((await stat(join(dir, 'gateway-key.asc'))).mode & 0o777).toBe(0o600);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect(first.publicArmored).toContain('BEGIN PGP PUBLIC KEY BLOCK');
    const info = await readPublicKeyInfo(first.publicArmored);
    expect(info).toMatchObject({ fingerprint: first.fingerprint, isPrivate: false, revoked: false, expiresAt: null });
    expect(info.userIds).toEqual(['Cordon gateway']);
    // v4 key with legacy curves, readable by GnuPG 2.2
    expect(first.privateKey.keyPacket.version).toBe(4);
    expect(first.privateKey.getAlgorithmInfo()).toMatchObject({ algorithm: 'eddsaLegacy' });
  });

  it('creates exactly one key when two callers start at once', async () => {
    const dir = join(stateDir, 'race');
    const results = await Promise.all([loadOrCreateGatewayKey(dir), loadOrCreateGatewayKey(dir), loadOrCreateGatewayKey(dir)]);
    const fps = new Set(results.map((k) => k.fingerprint));
    expect(fps.size).toBe(1);
    const onDisk = await readPublicKeyInfo(await readFile(join(dir, 'gateway-key.asc'), 'utf8'));
    expect(onDisk.fingerprint).toBe(results[0]!.fingerprint);
    expect(onDisk.isPrivate).toBe(true);
  });
});

describe('encryptAndSign / decryptAndVerify', () => {
  it('round-trips with a partner fixture key', async () => {
    const armored = await encryptAndSign(PLAINTEXT, partner, gateway);
    expect(armored).toMatch(/^-----BEGIN PGP MESSAGE-----/);
    const out = await decryptAndVerify(armored, partnerSecret, [gateway.publicKey]);
    expect(out.data).toBe(PLAINTEXT);
    expect(out.signerFingerprint).toBe(gateway.fingerprint);
  });

  it('binary: a quarter smaller, armored again exactly as encryptAndSign armors, and GnuPG decrypts that', async () => {
    const binary = await encryptAndSignBinary(PLAINTEXT, partner, gateway);
    const armoredOnce = await encryptAndSign(PLAINTEXT, partner, gateway);
    expect(binary[0]! & 0x80).toBe(0x80);
    expect(binary.length).toBeLessThan(armoredOnce.length * 0.8);
    const armored = await armorMessage(binary);
    expect(armored).toMatch(/^-----BEGIN PGP MESSAGE-----\n\n[A-Za-z0-9+/=\n]+\n=[A-Za-z0-9+/]{4}\n-----END PGP MESSAGE-----\n$/);
    const body = armored.split('\n').filter((l) => l && !l.startsWith('-----') && !l.startsWith('=')).join('');
    expect(Buffer.from(body, 'base64').equals(Buffer.from(binary))).toBe(true); // the very bytes stored
    expect((await decryptAndVerify(armored, partnerSecret, [gateway.publicKey])).data).toBe(PLAINTEXT);
    // A view into a larger buffer (as the Redis client hands it over) armors the same.
    const pooled = Buffer.concat([Buffer.from('before'), Buffer.from(binary), Buffer.from('after')]);
    expect(await armorMessage(pooled.subarray(6, 6 + binary.length))).toBe(armored);
    // Text stored before packets were binary is served as it is.
    expect(await armorMessage(armoredOnce)).toBe(armoredOnce);
    expect(await armorMessage(Buffer.from(armoredOnce))).toBe(armoredOnce);
    await expect(armorMessage(Uint8Array.from([0xc1, 0x05, 0x01]))).rejects.toThrow(/does not parse/);
    const home = await withGnupgHome();
    try {
      await gpgImport(home, await secretOf('council-housing'));
      const out = await gpgDecryptVerify(home, armored, gateway.publicArmored);
      expect(out.plaintext).toBe(PLAINTEXT);
      expect(out.goodSignatureFingerprint).toBe(gateway.fingerprint);
    } finally {
      await home.cleanup();
    }
  });

  it('produces SEIPDv1 (MDC) messages, not AEAD, for GnuPG keys', async () => {
    const armored = await encryptAndSign(PLAINTEXT, partner, gateway);
    const message = await openpgp.readMessage({ armoredMessage: armored });
    const tags = message.packets.map((p) => (p.constructor as unknown as { tag: number }).tag);
    expect(tags).toContain(openpgp.enums.packet.symEncryptedIntegrityProtectedData);
    expect(tags).not.toContain(openpgp.enums.packet.aeadEncryptedData);
    const seipd = message.packets.find((p) => p instanceof openpgp.SymEncryptedIntegrityProtectedDataPacket) as unknown as {
      version: number;
    };
    expect(seipd.version).toBe(1);
  });

  it('GnuPG decrypts it and reports VALIDSIG by the gateway key', async () => {
    const home = await withGnupgHome();
    try {
      await gpgImport(home, await secretOf('council-housing'));
      const armored = await encryptAndSign(PLAINTEXT, partner, gateway);
      const out = await gpgDecryptVerify(home, armored, gateway.publicArmored);
      expect(out.plaintext).toBe(PLAINTEXT); // bytes preserved exactly (no CRLF)
      expect(out.goodSignatureFingerprint).toBe(gateway.fingerprint);
    } finally {
      await home.cleanup();
    }
  });

  it('GnuPG rejects it when the expected signer is another key', async () => {
    const home = await withGnupgHome();
    try {
      await gpgImport(home, await secretOf('council-housing'));
      const armored = await encryptAndSign(PLAINTEXT, partner, gateway);
      // gpg cannot check the signature without the gateway cert: must not pass as verified
      await expect(gpgDecryptVerify(home, armored, await fixturePublic('intruder'))).rejects.toThrow(/gpg could not/);
    } finally {
      await home.cleanup();
    }
  });

  it.skipIf(!HAS_SQ)('Sequoia sq decrypts and verifies it', async () => {
    const armored = await encryptAndSign(PLAINTEXT, partner, gateway);
    const out = await sqDecryptVerify(armored, await secretOf('council-housing'), gateway.publicArmored);
    expect(out.plaintext).toBe(PLAINTEXT);
    await expect(sqDecryptVerify(armored, await secretOf('council-housing'), await fixturePublic('intruder'))).rejects.toThrow(
      /sq could not/,
    );
  });

  it('decrypts a message gpg encrypted and signed (source key) to the gateway key', async () => {
    const home = await withGnupgHome();
    try {
      await gpgImport(home, await secretOf('west-midlands'));
      await gpgImport(home, gateway.publicArmored);
      const { spawnSync } = await import('node:child_process');
      const res = spawnSync(
        'gpg',
        ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', '--trust-model', 'always', '--armor',
          '--local-user', fingerprints['west-midlands']!, '--recipient', gateway.fingerprint, '--sign', '--encrypt'],
        { input: PLAINTEXT, env: { ...process.env, GNUPGHOME: home.dir } },
      );
      expect(res.status, res.stderr.toString()).toBe(0);
      const source = await parseRecipientKey(await readFile(join(ROOT, 'policies', 'keys', 'west-midlands.asc'), 'utf8'), fingerprints['west-midlands']!);
      const out = await decryptAndVerify(res.stdout.toString(), gateway.privateKey, [source.key]);
      expect(out.data).toBe(PLAINTEXT);
      expect(out.signerFingerprint).toBe(fingerprints['west-midlands']);
    } finally {
      await home.cleanup();
    }
  });

  it('refuses a flipped byte', async () => {
    const armored = await encryptAndSign(PLAINTEXT, partner, gateway);
    const binary = (await openpgp.readMessage({ armoredMessage: armored })).write();
    // flip a byte well inside the encrypted data, then re-armor so armor's CRC is not what catches it
    const flipped = Uint8Array.from(binary as Uint8Array);
    const i = flipped.length - 40;
    flipped[i] = flipped[i]! ^ 0x01;
    const rearmored = openpgp.armor(openpgp.enums.armor.message, flipped);
    await expectGatewayError(decryptAndVerify(rearmored, partnerSecret, [gateway.publicKey]), 'crypto_failed');
    // and a flipped character in the armor itself
    const lines = armored.split('\n');
    const mid = Math.floor(lines.length / 2);
    const line = lines[mid]!;
    lines[mid] = (line[5] === 'A' ? 'B' : 'A').padStart(6, line.slice(0, 5)) + line.slice(6);
    await expectGatewayError(decryptAndVerify(lines.join('\n'), partnerSecret, [gateway.publicKey]), 'crypto_failed');
  });

  it('refuses an unsigned message', async () => {
    const unsigned = await openpgp.encrypt({
      message: await openpgp.createMessage({ text: PLAINTEXT }),
      encryptionKeys: partner.key,
    });
    const err = await expectGatewayError(decryptAndVerify(unsigned, partnerSecret, [gateway.publicKey]), 'crypto_failed');
    expect(err.message).toMatch(/sign/i);
  });

  it('refuses a message signed by the intruder key', async () => {
    const intruder = await openpgp.readPrivateKey({ armoredKey: await secretOf('intruder') });
    const forged = await openpgp.encrypt({
      message: await openpgp.createMessage({ text: PLAINTEXT }),
      encryptionKeys: partner.key,
      signingKeys: intruder,
    });
    await expectGatewayError(decryptAndVerify(forged, partnerSecret, [gateway.publicKey]), 'crypto_failed');
  });

  it('refuses garbage and a message for someone else', async () => {
    await expectGatewayError(decryptAndVerify('not a message', partnerSecret, [gateway.publicKey]), 'crypto_failed');
    const dvlaSecret = await openpgp.readPrivateKey({ armoredKey: await secretOf('dvla') });
    const armored = await encryptAndSign(PLAINTEXT, partner, gateway);
    await expectGatewayError(decryptAndVerify(armored, dvlaSecret, [gateway.publicKey]), 'crypto_failed');
  });
});

describe('decryptAndVerify: the signing key must be valid at the time of use', () => {
  /** A message to the gateway signed by fixture `id` with the signature dated `date`. */
  async function signedBy(id: string, date: Date, publicArmored?: string): Promise<{ armored: string; verifier: openpgp.PublicKey }> {
    const signer = await openpgp.readPrivateKey({ armoredKey: await secretOf(id) });
    // The signer's own copy without its revocation (openpgp.js will not sign with a revoked key; a thief's copy would).
    signer.revocationSignatures = [];
    // Signed at `date`, then encrypted to the gateway key now (which did not exist at `date`).
    const signed = await openpgp.sign({ message: await openpgp.createMessage({ binary: Buffer.from(PLAINTEXT, 'utf8'), format: 'binary', date }), signingKeys: signer, date, format: 'object' });
    const armored = await openpgp.encrypt({ message: signed, encryptionKeys: gateway.publicKey });
    return { armored, verifier: (await openpgp.readKey({ armoredKey: publicArmored ?? (await fixturePublic(id)) })) as openpgp.PublicKey };
  }

  it('refuses a back-dated signature by a key that has expired since (it verified at its own date before)', async () => {
    const then = new Date('2020-01-01T12:00:00Z'); // the expired fixture was valid until 2020-01-02
    const { armored, verifier } = await signedBy('expired', then);
    // At a time the key was valid, the signature verifies: the message itself is sound.
    const ok = await decryptAndVerify(armored, gateway.privateKey, [verifier], new Date('2020-01-01T13:00:00Z'));
    expect(ok.data).toBe(PLAINTEXT);
    const err = await expectGatewayError(decryptAndVerify(armored, gateway.privateKey, [verifier]), 'recipient_key_invalid');
    expect(err.message).toMatch(new RegExp(`signing key ${fingerprints['expired']} is expired now`));
  });

  it('refuses a signature by a revoked key whatever date it carries', async () => {
    const info = await readPublicKeyInfo(await fixturePublic('revoked'));
    expect(info.revoked).toBe(true);
    const signer = await openpgp.readPrivateKey({ armoredKey: await secretOf('revoked') });
    const created = signer.keyPacket.created;
    const { armored, verifier } = await signedBy('revoked', new Date(created.getTime() + 1000));
    // openpgp.js refuses it itself (a revoked key is invalid at any date); kept here with the others.
    const err = await decryptAndVerify(armored, gateway.privateKey, [verifier]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayError);
    expect(['crypto_failed', 'recipient_key_invalid']).toContain((err as GatewayError).code);
  });

  it('refuses a signature dated ahead of the clock', async () => {
    const { armored, verifier } = await signedBy('council-housing', new Date(Date.now() + 3600_000), await partnerPublic());
    const err = await decryptAndVerify(armored, gateway.privateKey, [verifier]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayError);
    expect(['crypto_failed', 'recipient_key_invalid']).toContain((err as GatewayError).code);
  });
});

describe('parseRecipientKey', () => {
  it('accepts the pinned key regardless of case and spaces', async () => {
    const spaced = fingerprints['council-housing']!.toLowerCase().replace(/(.{4})/g, '$1 ');
    const rk = await parseRecipientKey(await partnerPublic(), spaced);
    expect(rk.fingerprint).toBe(fingerprints['council-housing']);
    expect(rk.expiresAt).toBeNull();
    await checkRecipientKey(rk);
  });

  it('refuses a fingerprint mismatch', async () => {
    await expectGatewayError(parseRecipientKey(await partnerPublic(), fingerprints['dvla']!), 'recipient_key_invalid', 'fingerprint_mismatch');
    await expectGatewayError(
      parseRecipientKey(await fixturePublic('intruder'), fingerprints['council-housing']!),
      'recipient_key_invalid',
      'fingerprint_mismatch',
    );
  });

  it('refuses the expired fixture', async () => {
    await expectGatewayError(parseRecipientKey(await fixturePublic('expired'), fingerprints['expired']!), 'recipient_key_invalid', 'expired');
  });

  it('accepts the expired fixture at a date when it was valid, and checkRecipientKey refuses it later', async () => {
    const then = new Date('2020-01-01T12:00:00Z');
    const rk = await parseRecipientKey(await fixturePublic('expired'), fingerprints['expired']!, then);
    expect(rk.expiresAt?.toISOString()).toBe('2020-01-02T00:00:00.000Z');
    await checkRecipientKey(rk, then);
    await expectGatewayError(checkRecipientKey(rk, new Date('2020-01-03T00:00:00Z')), 'recipient_key_invalid', 'expired');
    await expectGatewayError(encryptAndSign(PLAINTEXT, rk, gateway), 'recipient_key_invalid', 'expired');
  });

  it('refuses the revoked fixture', async () => {
    await expectGatewayError(parseRecipientKey(await fixturePublic('revoked'), fingerprints['revoked']!), 'recipient_key_invalid', 'revoked');
    const info = await readPublicKeyInfo(await fixturePublic('revoked'));
    expect(info.revoked).toBe(true);
  });

  it('refuses a private key block', async () => {
    await expectGatewayError(
      parseRecipientKey(await secretOf('council-housing'), fingerprints['council-housing']!),
      'recipient_key_invalid',
      'private_key',
    );
    // also when the armor header was edited to look public
    const disguised = (await secretOf('council-housing')).replaceAll('PRIVATE KEY BLOCK', 'PUBLIC KEY BLOCK');
    await expect(parseRecipientKey(disguised, fingerprints['council-housing']!)).rejects.toMatchObject({ code: 'recipient_key_invalid' });
  });

  it('refuses garbage and two keys in one file', async () => {
    await expectGatewayError(parseRecipientKey('garbage', fingerprints['council-housing']!), 'recipient_key_invalid', 'unreadable');
    await expectGatewayError(
      parseRecipientKey('-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n', fingerprints['council-housing']!),
      'recipient_key_invalid',
      'unreadable',
    );
    const two = (await partnerPublic()) + '\n' + (await fixturePublic('intruder'));
    await expectGatewayError(parseRecipientKey(two, fingerprints['council-housing']!), 'recipient_key_invalid', 'unreadable');
  });

  it('readPublicKeyInfo describes fixture keys', async () => {
    const info = await readPublicKeyInfo(await partnerPublic());
    expect(info.fingerprint).toBe(fingerprints['council-housing']);
    expect(info.userIds[0]).toMatch(/TEST KEY - not for real data/);
    expect(info.isPrivate).toBe(false);
    const expired = await readPublicKeyInfo(await fixturePublic('expired'));
    expect(expired.expiresAt?.toISOString()).toBe('2020-01-02T00:00:00.000Z');
    await expectGatewayError(readPublicKeyInfo('nope'), 'key_invalid');
  });
});

describe('seal', () => {
  it('keeps one master secret per state dir, 0600, even under a race', async () => {
    const dir = join(stateDir, 'master');
    const [a, b] = await Promise.all([loadOrCreateMasterSecret(dir), loadOrCreateMasterSecret(dir)]);
    expect(a.length).toBe(32);
    expect(b.equals(a)).toBe(true);
    expect((await loadOrCreateMasterSecret(dir)).equals(a)).toBe(true);
    expect((await stat(join(dir, 'master.key'))).mode & 0o777).toBe(0o600);
  });

  it('never seals two values under one IV, across refills of the IV pool', () => {
    const key = deriveKey(Buffer.alloc(32, 7), 'dossier-store');
    const ivs = new Set<string>();
    for (let i = 0; i < 1500; i++) {
      ivs.add(sealBytes(key, 'same', 'x').subarray(1, 13).toString('hex'));
      ivs.add(seal(key, 'same', 'x').split('.')[1]!);
    }
    expect(ivs.size).toBe(3000);
  });

  it('seals in binary a third smaller, opens both forms from a Buffer, and detects tampering and a wrong context', () => {
    const key = deriveKey(Buffer.alloc(32, 7), 'dossier-store');
    const text = 'secret dossier '.repeat(100);
    const bytes = sealBytes(key, text, 'dossier:1');
    expect(bytes[0]).toBe(2);
    expect(bytes.length).toBe(1 + 12 + 16 + Buffer.byteLength(text));
    expect(bytes.length).toBeLessThan(seal(key, text, 'dossier:1').length * 0.76);
    expect(bytes.includes(Buffer.from('secret'))).toBe(false);
    expect(unseal(key, bytes, 'dossier:1').toString()).toBe(text);
    // A value sealed as text before, read back from Redis as bytes, still opens.
    expect(unseal(key, Buffer.from(seal(key, text, 'dossier:1')), 'dossier:1').toString()).toBe(text);
    const tampered = Buffer.from(bytes);
    tampered[40] = tampered[40]! ^ 1;
    expect(() => unseal(key, tampered, 'dossier:1')).toThrow(/failed authentication/);
    expect(() => unseal(key, bytes, 'dossier:2')).toThrow(/failed authentication/);
    expect(() => unseal(key, bytes.subarray(0, 20), 'dossier:1')).toThrow(/malformed/);
    expect(() => unseal(key, Buffer.from([2]), 'dossier:1')).toThrow(GatewayError);
  });

  it('round-trips and detects tampering and a wrong context', async () => {
    const master = await loadOrCreateMasterSecret(join(stateDir, 'master2'));
    const key = deriveKey(master, 'dossier-store');
    expect(deriveKey(master, 'dossier-store').equals(key)).toBe(true);
    expect(deriveKey(master, 'other').equals(key)).toBe(false);

    const sealed = seal(key, 'secret dossier', 'dossier:1');
    expect(sealed).toMatch(/^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]+$/);
    expect(sealed).not.toContain('secret');
    expect(seal(key, 'secret dossier', 'dossier:1')).not.toBe(sealed); // random IV
    expect(unseal(key, sealed, 'dossier:1').toString()).toBe('secret dossier');
    expect(unseal(key, seal(key, Buffer.from([0, 1, 2]), ''), '')).toEqual(Buffer.from([0, 1, 2]));

    const [v, iv, tag, ct] = sealed.split('.') as [string, string, string, string];
    const ctBytes = Buffer.from(ct, 'base64url');
    ctBytes[0] = ctBytes[0]! ^ 1;
    const tampered = [v, iv, tag, ctBytes.toString('base64url')].join('.');
    expect(() => unseal(key, tampered, 'dossier:1')).toThrow(GatewayError);
    expect(() => unseal(key, sealed, 'dossier:2')).toThrow(/failed authentication/);
    expect(() => unseal(deriveKey(master, 'other'), sealed, 'dossier:1')).toThrow(GatewayError);
    expect(() => unseal(key, 'v2.a.b.c', 'dossier:1')).toThrow(GatewayError);
    expect(() => unseal(key, sealed.slice(0, -2), 'dossier:1')).toThrow(GatewayError);
    try {
      unseal(key, sealed, 'x');
    } catch (err) {
      expect((err as GatewayError).code).toBe('crypto_failed');
    }
  });

  it('hmacId is deterministic, opaque and keyed', () => {
    const key = deriveKey(Buffer.alloc(32, 7), 'ids');
    const id = hmacId(key, 'dossier', '123');
    expect(id).toMatch(/^[a-z2-7]{26}$/);
    expect(hmacId(key, 'dossier', '123')).toBe(id);
    expect(hmacId(key, 'dossier1', '23')).not.toBe(id);
    expect(hmacId(deriveKey(Buffer.alloc(32, 8), 'ids'), 'dossier', '123')).not.toBe(id);
  });

  it('hmacId is HMAC-SHA-256 over length-prefixed UTF-8 parts (stored ids never change)', () => {
    const key = deriveKey(Buffer.alloc(32, 7), 'ids');
    const reference = (...parts: string[]) => {
      const mac = createHmac('sha256', key);
      for (const part of parts) {
        const bytes = Buffer.from(part, 'utf8');
        const len = Buffer.alloc(4);
        len.writeUInt32BE(bytes.length);
        mac.update(len).update(bytes);
      }
      return base32(mac.digest()).slice(0, 26);
    };
    for (const parts of [['dossier', '123'], ['audit/subject', 'west-midlands', 'S1'], ['', 'Zoë Ó Briain — 12 Rue d’Été', ''], ['x'.repeat(5000)]]) {
      expect(hmacId(key, ...parts)).toBe(reference(...parts));
    }
  });
});
