/** The partner client's local parts: the hits file (CSV and JSON), the output directory's lock and files, its keys. */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCsv, readHitsFile } from '../../gateway/client/hits-file.js';
import { ClientError } from '../../gateway/client/http.js';
import { loadOwnKey, loadPinnedGateway } from '../../gateway/client/keys.js';
import { LOCK_FILE, OutDir } from '../../gateway/client/outdir.js';
import { ROOT } from '../helpers/gateway.js';
import { gpgImport, withGnupgHome } from '../helpers/gpg.js';

const KEYS = path.join(ROOT, 'test/fixtures/keys');
const FPS = JSON.parse(await readFile(path.join(KEYS, 'fingerprints.json'), 'utf8')) as Record<string, string>;
const HEADER = 'packet,subject,kind,confidence,matchedOn,partnerRecordRef,detail.line1,detail.postcode';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cordon-partner-unit-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function refusal(fn: () => unknown): ClientError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ClientError);
    return err as ClientError;
  }
  throw new Error('did not throw');
}

describe('the hits file', () => {
  it('reads RFC 4180 CSV: quotes, doubled quotes, commas and newlines inside quotes, CRLF, a BOM', () => {
    const rows = parseCsv('\uFEFFa,b,c\r\n"x, y","say ""hi""","two\nlines"\r\n\r\nlast,,\n');
    expect(rows).toEqual([
      { line: 1, cells: ['a', 'b', 'c'] },
      { line: 2, cells: ['x, y', 'say "hi"', 'two\nlines'] },
      { line: 5, cells: ['last', '', ''] },
    ]);
    expect(refusal(() => parseCsv('a\n"open')).message).toContain('CSV line 2: a quoted field is not closed');
  });

  it('turns rows into one submission per packet, detail columns into detail, matchedOn split on ;', () => {
    const csv = `${HEADER}\npkt_a,ref_1,tenancy,confirmed,name; dateOfBirth,HSG-1,"18 Cedar Road",CV6 5HX\npkt_b,ref_2,address,possible,postcode,,,CV6 5HX\npkt_a,ref_3,address,probable,name,,,\n`;
    const batches = readHitsFile(csv, { name: 'hits.csv' });
    expect(batches.map((b) => b.submission.packet)).toEqual(['pkt_a', 'pkt_b']);
    expect(batches[0]!.submission.hits[0]).toEqual({ subject: 'ref_1', kind: 'tenancy', detail: { line1: '18 Cedar Road', postcode: 'CV6 5HX' }, matchedOn: ['name', 'dateOfBirth'], confidence: 'confirmed', partnerRecordRef: 'HSG-1' });
    expect(batches[0]!.submission.hits[1]).toEqual({ subject: 'ref_3', kind: 'address', detail: {}, matchedOn: ['name'], confidence: 'probable' });
    expect(batches[1]!.submission.hits[0]!.partnerRecordRef).toBeUndefined();
  });

  it('takes the packet from --packet when the CSV has no packet column', () => {
    const [b] = readHitsFile('subject,kind,confidence,matchedOn\nref_1,vehicle,confirmed,vrm\n', { name: 'x.csv', packet: 'pkt_z' });
    expect(b!.submission).toMatchObject({ schema: 'cordon.hits/v1', packet: 'pkt_z', hits: [{ subject: 'ref_1', kind: 'vehicle' }] });
  });

  it('refuses the whole file, naming every bad line, before anything is sent', () => {
    const csv = `${HEADER}\npkt_a,ref_1,tenancy,sure,name,,,\npkt_a,ref_2,spaceship,confirmed,name,,,\npkt_a,ref_3,address,confirmed,,,,\n`;
    const err = refusal(() => readHitsFile(csv, { name: 'hits.csv' }));
    expect(err.kind).toBe('config');
    expect(err.message).toContain('nothing was sent');
    expect(err.message).toContain('line 2: confidence: must be equal to one of the allowed values');
    expect(err.message).toContain('line 3: kind: must be equal to one of the allowed values');
    expect(err.message).toContain('line 4: matchedOn: must NOT have fewer than 1 items');
    expect(refusal(() => readHitsFile('subject,kind,colour\n', { name: 'h.csv', packet: 'p' })).message).toMatch(/unknown column "colour"[\s\S]*missing column confidence[\s\S]*missing column matchedOn/);
    expect(refusal(() => readHitsFile('subject,kind,confidence,matchedOn\nref_1,vehicle\n', { name: 'h.csv', packet: 'p' })).message).toContain('CSV line 2: 2 cells, the header has 4');
    expect(refusal(() => readHitsFile(`${HEADER}\n`, { name: 'h.csv' })).message).toContain('a header and no hits');
  });

  it('reads JSON: a submission, a list of them, or hits with --packet; checked against the schema', () => {
    const hit = { subject: 'ref_1', kind: 'vehicle', detail: { vrm: 'KX19LMN' }, matchedOn: ['vrm'], confidence: 'confirmed' };
    expect(readHitsFile(JSON.stringify({ schema: 'cordon.hits/v1', packet: 'pkt_a', hits: [hit] }), { name: 'h.json' })).toHaveLength(1);
    expect(readHitsFile(JSON.stringify([{ packet: 'pkt_a', hits: [hit] }, { packet: 'pkt_b', hits: [hit] }]), { name: 'h.json' })).toHaveLength(2);
    expect(readHitsFile(JSON.stringify({ hits: [hit] }), { name: 'h.json', packet: 'pkt_c' })[0]!.submission.packet).toBe('pkt_c');
    expect(refusal(() => readHitsFile(JSON.stringify({ packet: 'pkt_a', hits: [{ ...hit, detail: { note: 'a\u001b[2Jb' } }] }), { name: 'h.json' })).message).toContain('/hits/0: detail.note');
    expect(refusal(() => readHitsFile('{', { name: 'h.json' })).message).toContain('not valid JSON');
  });
});

describe('the output directory', () => {
  it('holds a lock: a live holder refuses a second run, a dead one is taken over', async () => {
    const out = await OutDir.open(path.join(dir, 'locked'));
    expect((await stat(out.dir)).mode & 0o777).toBe(0o700);
    const release = await out.lock();
    await expect(out.lock()).rejects.toMatchObject({ kind: 'locked' });
    await release();
    // A pid that has exited.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    await writeFile(path.join(out.dir, LOCK_FILE), `${dead}\n`);
    const again = await out.lock();
    expect((await readFile(path.join(out.dir, LOCK_FILE), 'utf8')).split('\n')[0]).toBe(String(process.pid));
    await again();
  });

  it('writes packet files whole, 0600, and lists and removes them', async () => {
    const out = await OutDir.open(path.join(dir, 'files'));
    await out.write({ id: 'pkt_abc', type: 'packet', expiresAt: '2030-01-01T00:00:00Z', retrievedAt: '2026-01-01T00:00:00Z', signedBy: 'F', content: { a: 1 } });
    expect((await stat(out.file('pkt_abc'))).mode & 0o777).toBe(0o600);
    expect((await out.list()).map((p) => p.id)).toEqual(['pkt_abc']);
    expect(await out.remove('pkt_abc')).toBe(true);
    expect(await out.remove('pkt_abc')).toBe(false);
    await out.writeState({ refused: { pkt_x: { at: 'now', reason: 'bad signature' } } });
    expect((await out.readState()).refused.pkt_x?.reason).toBe('bad signature');
  });
});

describe('keys', () => {
  it('loads the secret key from a file, from a GnuPG home, or protected with a passphrase', async () => {
    const armored = await readFile(path.join(KEYS, 'council-housing.sec.asc'), 'utf8');
    expect((await loadOwnKey({ secretKeyFile: path.join(KEYS, 'council-housing.sec.asc') })).fingerprint).toBe(FPS['council-housing']);

    const home = await withGnupgHome();
    try {
      await gpgImport(home, armored);
      expect((await loadOwnKey({ gnupgHome: home.dir, keyId: FPS['council-housing']! })).fingerprint).toBe(FPS['council-housing']);
      await expect(loadOwnKey({ gnupgHome: home.dir, keyId: FPS['dvla']! })).rejects.toMatchObject({ kind: 'config' });
    } finally {
      await home.cleanup();
    }

    const locked = await openpgp.encryptKey({ privateKey: await openpgp.readPrivateKey({ armoredKey: armored }), passphrase: 'correct horse' });
    const lockedFile = path.join(dir, 'locked.sec.asc');
    await writeFile(lockedFile, locked.armor());
    await writeFile(path.join(dir, 'pass'), 'correct horse\n');
    await writeFile(path.join(dir, 'wrong'), 'battery staple\n');
    expect((await loadOwnKey({ secretKeyFile: lockedFile, passphraseFile: path.join(dir, 'pass') })).fingerprint).toBe(FPS['council-housing']);
    await expect(loadOwnKey({ secretKeyFile: lockedFile })).rejects.toThrow(/passphrase-protected/);
    await expect(loadOwnKey({ secretKeyFile: lockedFile, passphraseFile: path.join(dir, 'wrong') })).rejects.toThrow(/passphrase does not unlock/);
  });

  it('pins the gateway key: a public key only, and the fingerprint when given', async () => {
    const pub = path.join(ROOT, 'policies/keys/dvla.asc');
    expect((await loadPinnedGateway(pub)).fingerprint).toBe(FPS['dvla']);
    await expect(loadPinnedGateway(pub, FPS['hmrc'])).rejects.toThrow(/not the pinned/);
    await expect(loadPinnedGateway(path.join(KEYS, 'dvla.sec.asc'))).rejects.toMatchObject({ kind: 'config' });
    await expect(loadPinnedGateway(path.join(KEYS, 'expired.asc'))).rejects.toMatchObject({ kind: 'config' });
  });
});
