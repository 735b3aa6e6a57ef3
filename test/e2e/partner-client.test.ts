/**
 * The partner and force clients against a running gateway (real Redis, real HTTP, the TEST keys), as a
 * partner's cron job and a force analyst run them: `cordon partner pull` drains council housing's
 * mailbox, decrypts every packet, refuses the one signed by another key (the gateway's key was swapped
 * for an intruder's when it was made) and acknowledges exactly what it wrote; `cordon partner report`
 * sends hits from a CSV file, signed; the force sees them with `cordon force hits`; an answer, a recall
 * and an expired file are handled on the next pulls.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, fixture, ROOT, startTestGateway, TOKENS, waitSettled, type TestGateway } from '../helpers/gateway.js';

const KEYS = path.join(ROOT, 'test/fixtures/keys');
const FORCE = TOKENS['west-midlands-rocu']!;
const COUNCIL = TOKENS['council-housing']!;

let gw: TestGateway;
let work: string;
let inbox: string;
let pinned: string;
let forged: string; // dossier whose packets the intruder's key signed
let genuine: string; // dossier pushed once the gateway had its own key again

/** `cordon …` as a child process (asynchronous: the gateway runs in this process and must keep serving). */
function cordon(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'scripts/cordon.mjs'), ...args], { cwd: ROOT, env: { ...process.env, CORDON_GATEWAY_URL: gw.url, ...env }, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const keys = () => ['--key', path.join(KEYS, 'council-housing.sec.asc'), '--gateway-key', pinned];
const council = () => [...keys(), '--out', inbox];
const asCouncil = { CORDON_TOKEN: COUNCIL };

async function councilDelivery(dossier: string): Promise<{ state: string; packetId?: string }> {
  const res = await api(gw.url, 'GET', `/v1/dossiers/${dossier}`, FORCE);
  return res.json.deliveries.find((d: { partner: string }) => d.partner === 'council-housing');
}

async function push(): Promise<string> {
  const res = await api(gw.url, 'POST', '/v1/dossiers', FORCE, fixture('dossier-full.json'));
  expect(res.status, res.text).toBe(202);
  await waitSettled(gw.url, res.json.id);
  return res.json.id;
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'cordon-partner-client-'));
  inbox = path.join(work, 'inbox');
  pinned = path.join(work, 'gateway.asc');
  const stateDir = path.join(work, 'state');
  const prefix = `cordon-test-pc-${process.pid}-${Date.now().toString(36)}`;
  // First the gateway runs with the intruder's key as its own: what it sends then is signed by a key
  // the partner never pinned.
  await rm(stateDir, { recursive: true, force: true });
  await mkdir(stateDir, { mode: 0o700 });
  await copyFile(path.join(KEYS, 'intruder.sec.asc'), path.join(stateDir, 'gateway-key.asc'));
  const first = await startTestGateway({ stateDir, redisPrefix: prefix });
  gw = first;
  forged = await push();
  await first.close();
  await first.redis.quit();
  await rm(first.stateDir, { recursive: true, force: true });
  // Then with a key of its own (generated on start), the one the partner pins.
  await unlink(path.join(stateDir, 'gateway-key.asc'));
  gw = await startTestGateway({ stateDir, redisPrefix: prefix });
  genuine = await push();
  await writeFile(pinned, (await api(gw.url, 'GET', '/v1/keys/gateway')).text);
}, 120_000);

afterAll(async () => {
  await gw?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('cordon partner and cordon force', () => {
  it('pull decrypts and writes every genuine packet, refuses the forged one, and acknowledges exactly what it wrote', async () => {
    const forgedPacket = (await councilDelivery(forged)).packetId!;
    const genuinePacket = (await councilDelivery(genuine)).packetId!;
    expect(forgedPacket).toMatch(/^pkt_/);

    const res = await cordon(['partner', 'pull', ...council()], asCouncil);
    expect(res.code, res.stderr + res.stdout).toBe(4); // refused: something was refused
    expect(res.stdout).toContain(`refused ${forgedPacket}: `);
    expect(res.stdout).toContain(`wrote ${path.join(inbox, `${genuinePacket}.json`)}`);
    expect(res.stdout).toMatch(/^REFUSED: 1 written, 1 acknowledged, 1 refused, 0 removed, 0 gone$/m);
    expect(res.stderr).toContain(`REFUSED ${forgedPacket}`);

    // The files: the genuine packet only, readable by its owner alone, in a directory only its owner lists.
    const files = (await readdir(inbox)).filter((f) => f.startsWith('pkt_'));
    expect(files).toEqual([`${genuinePacket}.json`]);
    expect((await stat(path.join(inbox, files[0]!))).mode & 0o777).toBe(0o600);
    expect((await stat(inbox)).mode & 0o777).toBe(0o700);
    const file = JSON.parse(await readFile(path.join(inbox, files[0]!), 'utf8'));
    expect(file.signedBy).toMatch(/^[0-9A-F]{40}$/);
    expect(file.signedBy).not.toBe(JSON.parse(await readFile(path.join(KEYS, 'fingerprints.json'), 'utf8')).intruder);
    expect(file.content.packet.id).toBe(genuinePacket);
    expect(file.content.dossier.subjects.map((s: { name: { given: string } }) => s.name.given)).toContain('Daniel');

    // Acknowledged exactly what it wrote: the genuine delivery is acknowledged, the forged one only retrieved.
    expect((await councilDelivery(genuine)).state).toBe('acknowledged');
    expect((await councilDelivery(forged)).state).toBe('retrieved');

    // A second run (cron): nothing new, the refusal remembered, exit 0.
    const again = await cordon(['partner', 'pull', ...council()], asCouncil);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^ok: 0 written, 0 acknowledged, 0 refused, 0 removed, 0 gone, 1 refused earlier/m);
    expect((await councilDelivery(forged)).state).toBe('retrieved');
  });

  it('refuses to run while another run holds the lock', async () => {
    await writeFile(path.join(inbox, '.cordon-partner.lock'), `${process.pid}\n`);
    const res = await cordon(['partner', 'pull', ...council()], asCouncil);
    await unlink(path.join(inbox, '.cordon-partner.lock'));
    expect(res.code).toBe(6);
    expect(res.stderr).toContain(`another run (pid ${process.pid}) holds`);
  });

  it('reports hits from a CSV file, signed, and the force sees them in its bundle', async () => {
    const genuinePacket = (await councilDelivery(genuine)).packetId!;
    const file = JSON.parse(await readFile(path.join(inbox, `${genuinePacket}.json`), 'utf8'));
    const daniel = file.content.dossier.subjects.find((s: { name: { given: string } }) => s.name.given === 'Daniel').id as string;
    const csv = path.join(work, 'hits.csv');

    // A bad row sends nothing, and says which line.
    await writeFile(csv, `packet,subject,kind,confidence,matchedOn,partnerRecordRef,detail.line1,detail.postcode\n${genuinePacket},${daniel},tenancy,sure,name,HSG-1,"18 Cedar Road",CV6 5HX\n`);
    let res = await cordon(['partner', 'report', '--file', csv, ...keys()], asCouncil);
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toContain('line 2: confidence: must be equal to one of the allowed values');

    await writeFile(
      csv,
      'packet,subject,kind,confidence,matchedOn,partnerRecordRef,detail.line1,detail.town,detail.postcode,detail.tenure\n' +
        `${genuinePacket},${daniel},tenancy,confirmed,name;dateOfBirth,HSG-778812,"18 Cedar Road",Coventry,CV6 5HX,council\n`,
    );
    res = await cordon(['partner', 'report', '--file', csv, ...keys()], asCouncil);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^ok: 1 hits on 1 packet signed and sent: 1 accepted, 0 duplicates$/m);

    const forceArgs = ['--key', path.join(KEYS, 'west-midlands.sec.asc'), '--gateway-key', pinned];
    res = await cordon(['force', 'hits', genuine, ...forceArgs], { CORDON_TOKEN: FORCE });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^Subject S1: 1 hit$/m);
    expect(res.stdout).toMatch(/council-housing\s+tenancy\s+confirmed\s+line1: 18 Cedar Road, town: Coventry, postcode: CV6 5HX, tenure: council\s+HSG-778812\s+signed/);
    const json = await cordon(['force', 'hits', genuine, '--json', ...forceArgs], { CORDON_TOKEN: FORCE });
    const bundle = JSON.parse(json.stdout);
    expect(bundle.subjects.S1).toEqual([expect.objectContaining({ partner: 'council-housing', kind: 'tenancy', partnerRecordRef: 'HSG-778812', signed: true })]);

    // The bundle is verified against the pinned key only.
    const other = await cordon(['force', 'hits', genuine, '--key', path.join(KEYS, 'west-midlands.sec.asc'), '--gateway-key', path.join(KEYS, 'intruder.asc')], { CORDON_TOKEN: FORCE });
    expect(other.code).toBe(4);
    expect(other.stdout).toBe('');
  });

  it('answers hit or no trace per subject, and the force sees the answers in its status', async () => {
    const genuinePacket = (await councilDelivery(genuine)).packetId!;
    const file = JSON.parse(await readFile(path.join(inbox, `${genuinePacket}.json`), 'utf8'));
    const daniel = file.content.dossier.subjects.find((s: { name: { given: string } }) => s.name.given === 'Daniel').id as string;
    const res = await cordon(['partner', 'answer', '--packet', genuinePacket, '--hit', daniel, '--rest', 'no_trace', ...council()], asCouncil);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(new RegExp(`^ok: ${genuinePacket}: 1 hit, \\d+ no trace signed and sent`, 'm'));
    const status = await cordon(['force', 'status', genuine], { CORDON_TOKEN: FORCE });
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/council-housing: .*S1 hit/);
    expect(status.stdout).toMatch(/council-housing\s+acknowledged/);
  });

  it('answers a match request, the force approves the follow-up, and the next pull brings the disclosure', async () => {
    const ie = { CORDON_TOKEN: TOKENS['immigration-enforcement']! };
    const ieInbox = path.join(work, 'ie-inbox');
    const ieArgs = ['--key', path.join(KEYS, 'immigration-enforcement.sec.asc'), '--gateway-key', pinned];
    let res = await cordon(['partner', 'pull', ...ieArgs, '--out', ieInbox], ie);
    expect(res.code, res.stderr + res.stdout).toBe(4); // its forged match request is refused too
    const match = (await readdir(ieInbox)).filter((f) => f.startsWith('pkt_')).map((f) => f.slice(0, -5));
    expect(match).toHaveLength(1);
    const file = JSON.parse(await readFile(path.join(ieInbox, `${match[0]}.json`), 'utf8'));
    expect(file.type).toBe('match');
    const [first, ...others] = file.content.subjects.map((x: { ref: string }) => x.ref) as string[];
    res = await cordon(['partner', 'answer', '--packet', match[0]!, '--hit', first!, '--rest', 'no_trace', ...ieArgs, '--out', ieInbox], ie);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain(`1 hit, ${others.length} no trace signed and sent`);

    const status = await cordon(['force', 'status', genuine], { CORDON_TOKEN: FORCE });
    expect(status.stdout).toMatch(/immigration-enforcement\s+\S+\s+awaiting_approval/);
    expect(status.stdout).toContain('Awaiting approval: immigration-enforcement');
    res = await cordon(['force', 'approve', genuine, '--partner', 'immigration-enforcement', '--officer', 'DI Anna Kowalski', '--officer-id', 'WM2207'], { CORDON_TOKEN: FORCE });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^ok: immigration-enforcement: follow-up approved by DI Anna Kowalski \(WM2207\) for S\d$/m);
    res = await cordon(['force', 'approve', genuine, '--partner', 'immigration-enforcement', '--officer', 'DI Anna Kowalski', '--officer-id', 'WM2207'], { CORDON_TOKEN: FORCE });
    expect(res.code).toBe(4);
    expect(res.stderr).toContain('409 nothing_to_approve');

    // The follow-up packet arrives once the worker has made it.
    let pulled = '';
    for (let i = 0; i < 50 && !/1 written/.test(pulled); i++) {
      pulled = (await cordon(['partner', 'pull', ...ieArgs, '--out', ieInbox], ie)).stdout;
      if (!/1 written/.test(pulled)) await new Promise((r) => setTimeout(r, 200));
    }
    expect(pulled).toMatch(/^ok: 1 written, 1 acknowledged/m);
    const files = await Promise.all((await readdir(ieInbox)).filter((f) => f.startsWith('pkt_')).map(async (f) => JSON.parse(await readFile(path.join(ieInbox, f), 'utf8'))));
    const followUp = files.find((f) => f.type === 'packet');
    expect(followUp.content.dossier.subjects.map((x: { id: string }) => x.id)).toEqual([first]);
  });

  it('removes the files of recalled and expired packets on the next pull, and says so', async () => {
    const genuinePacket = (await councilDelivery(genuine)).packetId!;
    const stale = { id: 'pkt_aaaaaaaaaaaaaaaa', type: 'packet', expiresAt: '2020-01-01T00:00:00.000Z', retrievedAt: '2019-12-01T00:00:00.000Z', signedBy: 'X', content: {} };
    await writeFile(path.join(inbox, `${stale.id}.json`), JSON.stringify(stale), { mode: 0o600 });
    const recall = await api(gw.url, 'POST', `/v1/dossiers/${genuine}/recall`, FORCE, { reason: 'withdrawn' });
    expect(recall.status, recall.text).toBe(200);

    const res = await cordon(['partner', 'pull', ...council()], asCouncil);
    expect(res.code, res.stderr + res.stdout).toBe(0);
    expect(res.stdout).toContain(`removed ${stale.id}: expired`);
    expect(res.stdout).toMatch(new RegExp(`removed ${genuinePacket}: recalled by notice pkt_`));
    const files = (await readdir(inbox)).filter((f) => f.startsWith('pkt_'));
    expect(files).not.toContain(`${genuinePacket}.json`);
    expect(files).not.toContain(`${stale.id}.json`);
    // The notice itself is kept (and acknowledged), naming what it recalled.
    const notice = JSON.parse(await readFile(path.join(inbox, files[0]!), 'utf8'));
    expect(notice).toMatchObject({ type: 'recall', recalls: genuinePacket, content: { recall: { packet: genuinePacket, reason: 'withdrawn' } } });
  });

  it('fails with the configuration exit code on a missing key or token', async () => {
    let res = await cordon(['partner', 'pull', '--key', path.join(work, 'nope.asc'), '--gateway-key', pinned, '--out', inbox], asCouncil);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('nope.asc: ENOENT');
    res = await cordon(['partner', 'pull', ...council()], { CORDON_TOKEN: 'not-a-token' });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('401 unauthenticated');
  });
});
