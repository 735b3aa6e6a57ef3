/**
 * Every accepted dossier reaches every partner exactly once: when the same job runs twice at once,
 * when a worker stops half-way through a dossier and the job is retried, and when a worker process
 * is killed with SIGKILL in the middle of a stream of dossiers and another takes over.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateAuditKey } from '../../gateway/crypto/audit-key.js';
import { AuditLog } from '../../gateway/audit/log.js';
import { RedisAuditChain } from '../../gateway/store/audit.js';
import { decryptAndVerify, loadOrCreateGatewayKey, parseArmoredPrivateKey, parseArmoredPublicKey, parseRecipientKey } from '../../gateway/crypto/openpgp.js';
import { armorMessage } from '../../gateway/crypto/binary.js';
import { Keyring } from '../../gateway/crypto/keyring.js';
import { loadOrCreateMasterSecret } from '../../gateway/crypto/seal.js';
import { Fanout } from '../../gateway/fanout/fanout.js';
import { FollowUps } from '../../gateway/fanout/followup.js';
import { FollowUpStore } from '../../gateway/store/followups.js';
import { RedisAnswerStore } from '../../gateway/store/matches.js';
import { Mailbox, type FiledPackets, type PacketRecord } from '../../gateway/mailbox/mailbox.js';
import { RedisMailbox } from '../../gateway/store/mailbox.js';
import { buildLiveSet } from '../../gateway/policy/live.js';
import { loadPolicySet } from '../../gateway/policy/load.js';
import { DossierStore, type Delivery } from '../../gateway/store/dossiers.js';
import { Keys } from '../../gateway/store/redis.js';
import { api, fixture, PARTNERS, REDIS_URL, ROOT, startTestGateway, TOKENS, waitSettled, type TestGateway } from '../helpers/gateway.js';
import { gatewayRecordAuth } from '../helpers/records.js';

let gw: TestGateway;
let keys: Keys;

beforeAll(async () => {
  // API only: jobs are queued but no worker of this gateway takes them; the tests run the fan-out.
  gw = await startTestGateway({ role: 'api' });
  keys = new Keys(gw.prefix);
});
afterAll(async () => {
  await gw?.stop();
});

async function fanout(mailbox?: Mailbox): Promise<Fanout> {
  const set = await loadPolicySet(path.join(ROOT, 'policies'));
  const live = await buildLiveSet(set, (armored, fp) => parseRecipientKey(armored, fp));
  return new Fanout({
    store: new DossierStore(gw.redis, keys, gatewayRecordAuth(gw.config.stateDir)),
    mailbox: mailbox ?? new Mailbox(new RedisMailbox(gw.redis, keys, gatewayRecordAuth(gw.config.stateDir))),
    // Another worker of the same gateway: it signs with the same state directory's audit key.
    audit: new AuditLog(new RedisAuditChain(gw.redis, keys), { auditKey: await loadOrCreateAuditKey(gw.stateDir) }),
    live: () => live,
    gatewayKey: await loadOrCreateGatewayKey(gw.stateDir),
    keyring: new Keyring(await loadOrCreateMasterSecret(gw.stateDir)),
  });
}

async function push(): Promise<string> {
  const res = await api(gw.url, 'POST', '/v1/dossiers', TOKENS['west-midlands-rocu'], fixture('dossier-full.json'));
  expect(res.status).toBe(202);
  return res.json.id as string;
}

async function packetsOf(dossierId: string): Promise<PacketRecord[]> {
  const mailbox = new Mailbox(new RedisMailbox(gw.redis, keys, gatewayRecordAuth(gw.config.stateDir)));
  const all = (await Promise.all(PARTNERS.map((p) => mailbox.list(p, 10_000)))).flat();
  const mine = all.filter((p) => p.dossier === dossierId);
  return (await Promise.all(mine.map((p) => mailbox.get(p.id)))).filter((p): p is PacketRecord => p !== undefined);
}

describe('exactly one packet per (dossier, partner)', () => {
  it('two workers running the same job at once make one packet each', async () => {
    const id = await push();
    const [a, b] = [await fanout(), await fanout()];
    await Promise.all([a.process(id), b.process(id)]);
    const packets = await packetsOf(id);
    expect(packets.map((p) => p.partner).sort()).toEqual(PARTNERS);
    const status = await waitSettled(gw.url, id);
    expect(status.deliveries.every((d: { state: string }) => d.state === 'delivered')).toBe(true);
  });

  it('a worker that stops half-way leaves no duplicate and the retry completes the rest', async () => {
    const id = await push();
    // Two partners' packets filed, the rest not (a worker whose other partners' packets failed, then died).
    class DyingMailbox extends Mailbox {
      override async create(packets: Array<{ packet: PacketRecord; delivery: Delivery }>): Promise<FiledPackets> {
        await super.create(packets.slice(0, 2));
        throw new Error('worker died');
      }
    }
    await expect((await fanout(new DyingMailbox(new RedisMailbox(gw.redis, keys, gatewayRecordAuth(gw.config.stateDir))))).process(id)).rejects.toThrow('worker died');
    const before = await packetsOf(id);
    expect(before).toHaveLength(2);
    const record = await gw.redis.hgetall(keys.dossier(id));
    expect(record.state).toBe('accepted');
    expect(record.sealed).toBeTruthy(); // kept until every delivery is settled

    await (await fanout()).process(id);
    const after = await packetsOf(id);
    expect(after.map((p) => p.partner).sort()).toEqual(PARTNERS);
    for (const p of before) expect(after.find((q) => q.id === p.id)?.message).toEqual(p.message); // untouched
    await (await fanout()).process(id); // a late duplicate job changes nothing
    expect(await packetsOf(id)).toHaveLength(PARTNERS.length);
  });
});

describe('exactly one follow-up per hit after a match request', () => {
  async function followUps(mailbox?: Mailbox): Promise<FollowUps> {
    const set = await loadPolicySet(path.join(ROOT, 'policies'));
    const live = await buildLiveSet(set, (armored, fp) => parseRecipientKey(armored, fp));
    const keyring = new Keyring(await loadOrCreateMasterSecret(gw.stateDir));
    const store = new DossierStore(gw.redis, keys, gatewayRecordAuth(gw.config.stateDir));
    return new FollowUps({
      store,
      mailbox: mailbox ?? new Mailbox(new RedisMailbox(gw.redis, keys, gatewayRecordAuth(gw.config.stateDir))),
      audit: new AuditLog(new RedisAuditChain(gw.redis, keys), { auditKey: await loadOrCreateAuditKey(gw.stateDir) }),
      live: () => live,
      gatewayKey: await loadOrCreateGatewayKey(gw.stateDir),
      keyring,
      answerStore: new RedisAnswerStore(gw.redis, keys, keyring.seal),
      followUps: new FollowUpStore(gw.redis, keys, keyring.seal),
    });
  }

  /** DWP's match request for a fanned-out dossier, answered hit for Daniel over HTTP (the job is only queued: no worker here). */
  async function answeredHit(): Promise<{ id: string; match: PacketRecord }> {
    const id = await push();
    await (await fanout()).process(id);
    const match = (await packetsOf(id)).find((p) => p.partner === 'dwp-benefits')!;
    expect(match.type).toBe('match');
    const secret = await parseArmoredPrivateKey(await readFile(path.join(ROOT, 'test/fixtures/keys/dwp-benefits.sec.asc'), 'utf8'));
    const verify = await parseArmoredPublicKey((await api(gw.url, 'GET', '/v1/keys/gateway')).text);
    const plain = JSON.parse((await decryptAndVerify(await armorMessage(match.message), secret, [verify])).data);
    const daniel = plain.subjects.find((s: any) => s.name.given === 'Daniel').ref;
    const res = await api(gw.url, 'POST', `/v1/packets/${match.id}/matches`, TOKENS['dwp-benefits'], { schema: 'cordon.matches/v1', packet: match.id, results: [{ subject: daniel, result: 'hit' }] });
    expect(res.status, res.text).toBe(202);
    return { id, match };
  }

  it('the fan-out\'s own check, from what it filed, erases the kept sealed dossier once every match request is answered', async () => {
    // DVLA gets its packet, DWP a match request: the answers may come in before the fan-out has finished.
    const body = { ...fixture('dossier-full.json'), requests: { ...(fixture('dossier-full.json').requests as object), partners: ['dvla', 'dwp-benefits'] } };
    const posted = await api(gw.url, 'POST', '/v1/dossiers', TOKENS['west-midlands-rocu'], body);
    expect(posted.status).toBe(202);
    const id = posted.json.id as string;
    const kept = await (await fanout()).process(id);
    const match = kept?.created.find((p) => p.partner === 'dwp-benefits');
    expect(match?.type).toBe('match');
    expect(kept?.deliveries['dwp-benefits']).toMatchObject({ state: 'delivered', matchPacketId: match!.id });
    expect(kept?.deliveries.dvla).toMatchObject({ state: 'delivered' });
    const sealed = () => gw.redis.hexists(keys.dossier(id), 'sealed');
    await (await followUps()).eraseIfSettled(id, kept);
    expect(await sealed()).toBe(1); // nothing answered yet

    const secret = await parseArmoredPrivateKey(await readFile(path.join(ROOT, 'test/fixtures/keys/dwp-benefits.sec.asc'), 'utf8'));
    const verify = await parseArmoredPublicKey((await api(gw.url, 'GET', '/v1/keys/gateway')).text);
    const plain = JSON.parse((await decryptAndVerify(await armorMessage(match!.message), secret, [verify])).data);
    const results = plain.subjects.map((s: any) => ({ subject: s.ref, result: 'no_trace' }));
    const res = await api(gw.url, 'POST', `/v1/packets/${match!.id}/matches`, TOKENS['dwp-benefits'], { schema: 'cordon.matches/v1', packet: match!.id, results });
    expect(res.status, res.text).toBe(202);
    await (await followUps()).eraseIfSettled(id, kept);
    expect(await sealed()).toBe(0);
  });

  it('two jobs at once make one follow-up packet; a late one changes nothing', async () => {
    const { id, match } = await answeredHit();
    const [a, b] = [await followUps(), await followUps()];
    await Promise.all([a.run(id, 'dwp-benefits'), b.run(id, 'dwp-benefits')]);
    const made = (await packetsOf(id)).filter((p) => p.partner === 'dwp-benefits' && p.id !== match.id);
    expect(made).toHaveLength(1);
    await (await followUps()).run(id, 'dwp-benefits');
    const again = (await packetsOf(id)).filter((p) => p.partner === 'dwp-benefits' && p.id !== match.id);
    expect(again.map((p) => p.message)).toEqual(made.map((p) => p.message));
  });

  it('a job that dies after claiming is completed by the retry, with the same packet id', async () => {
    const { id, match } = await answeredHit();
    class DyingMailbox extends Mailbox {
      override async create(): Promise<FiledPackets> {
        throw new Error('worker died');
      }
    }
    await expect((await followUps(new DyingMailbox(new RedisMailbox(gw.redis, keys, gatewayRecordAuth(gw.config.stateDir))))).run(id, 'dwp-benefits')).rejects.toThrow('worker died');
    expect((await packetsOf(id)).filter((p) => p.partner === 'dwp-benefits')).toHaveLength(1); // the match request only
    await (await followUps()).run(id, 'dwp-benefits');
    const made = (await packetsOf(id)).filter((p) => p.partner === 'dwp-benefits' && p.id !== match.id);
    expect(made).toHaveLength(1);
    expect(made[0]!.id).toBe((await followUps()).packetId(id, 'dwp-benefits', ['S1']));
  });
});

describe('a worker process killed with SIGKILL mid-stream', () => {
  const workers: ChildProcess[] = [];
  const startWorker = () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'gateway/main.ts'], {
      cwd: ROOT,
      env: {
        ...process.env,
        CORDON_ROLE: 'worker',
        REDIS_URL,
        CORDON_STATE_DIR: gw.stateDir,
        CORDON_REDIS_PREFIX: gw.prefix,
        CORDON_JOB_LOCK_MS: '2000',
        CORDON_WORKER_CONCURRENCY: '2',
        LOG_LEVEL: 'silent',
      },
      stdio: 'ignore',
    });
    workers.push(child);
    return child;
  };
  afterAll(() => {
    for (const w of workers) if (w.exitCode === null) w.kill('SIGKILL');
  });

  it('every dossier still reaches every partner exactly once', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push(await push());
    const written = async () => (await Promise.all(PARTNERS.map((p) => gw.redis.zcard(keys.mailbox(p))))).reduce((a, b) => a + b, 0);
    const baseline = await written();
    const first = startWorker();
    // Kill it as soon as it has written some packets of this stream, well before all 120.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const n = (await written()) - baseline;
      if (n >= 6) {
        expect(n).toBeLessThan(ids.length * PARTNERS.length);
        break;
      }
      if (Date.now() > deadline) throw new Error('the first worker wrote nothing');
      await new Promise((r) => setTimeout(r, 20));
    }
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    startWorker();
    for (const id of ids) {
      const status = await waitSettled(gw.url, id, 60_000);
      expect(status.deliveries.map((d: { state: string }) => d.state)).toEqual(PARTNERS.map(() => 'delivered'));
      const packets = await packetsOf(id);
      expect(packets.map((p) => p.partner).sort(), id).toEqual(PARTNERS);
    }
  });
});
