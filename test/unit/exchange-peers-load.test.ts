/** Peer files (`policies/peers/<id>.yaml`) are validated like partner files, and the sample peer holds the gateway-wide guarantees. */
import { readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GatewayError } from '../../gateway/errors/index.js';
import { asPartner } from '../../gateway/exchange/peers.js';
import { Decider } from '../../gateway/policy/decide.js';
import { loadPolicySet } from '../../gateway/policy/load.js';
import { redact } from '../../gateway/redact/redact.js';
import type { Dossier } from '../../gateway/dossier/types.js';
import { fixture } from '../helpers/gateway.js';
import { copyPolicies, editYaml } from '../helpers/policies.js';

const NOW = new Date('2026-11-21T12:00:00Z');
let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

async function problemsOf(dir: string): Promise<Array<{ path?: string; message: string }>> {
  try {
    await loadPolicySet(dir, NOW);
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    return (err as GatewayError).details ?? [];
  }
  return [];
}

describe('peer files', () => {
  it('the sample peer loads, and is not a partner', async () => {
    const set = await loadPolicySet(path.resolve(import.meta.dirname, '../../policies'), NOW);
    const peer = set.peerPolicies?.get('warwickshire');
    expect(peer?.peer).toMatchObject({ id: 'warwickshire', force: 'warwickshire', url: 'http://127.0.0.1:8081' });
    expect(peer?.peer.key.armored).toContain('BEGIN PGP PUBLIC KEY BLOCK');
    expect(set.partners.has('warwickshire')).toBe(false);
  });

  it('the sample peer never gets officers’ names, PNC ids, CHIS intelligence, witnesses or requests.peers', async () => {
    const set = await loadPolicySet(path.resolve(import.meta.dirname, '../../policies'), NOW);
    const derived = { ...set, partners: new Map([['warwickshire', asPartner(set.peerPolicies!.get('warwickshire')!)]]) };
    const dossier = fixture('dossier-full.json') as unknown as Dossier;
    dossier.requests = { checks: ['addresses'], peers: ['warwickshire'] } as Dossier['requests'];
    const decision = await new Decider(derived).decide('warwickshire', dossier, NOW);
    expect(decision.block).toBeUndefined();
    const refs = new Map(dossier.subjects.map((s, i) => [s.id, `ref_${i}`]));
    const { dossier: out } = redact(dossier, decision.plan, { refs, pseudonymKey: Buffer.alloc(32, 1) });
    const text = JSON.stringify(out);
    expect(text).not.toContain('Priya');
    expect(text).not.toContain('priya.raman');
    expect(text).not.toContain('"pnc"');
    expect(text).not.toContain('CHIS');
    expect(text).not.toContain('"peers"');
    expect((out.originator as { officer: { id: string } }).officer.id).toBe('withheld');
    expect(text).not.toMatch(/"id":"S\d"/);
  });

  it('refuses plain http to anything but loopback, a wrong id, a neverShare grant and a peer id that is a partner id', async () => {
    const copy = await copyPolicies();
    cleanup = copy.cleanup;
    const file = path.join(copy.dir, 'peers/warwickshire.yaml');
    await editYaml(file, ['peer', 'url'], 'http://warwickshire.example.police.uk');
    expect((await problemsOf(copy.dir)).map((p) => p.path)).toEqual(['peers/warwickshire.yaml: peer.url']);

    await editYaml(file, ['peer', 'url'], 'https://cordon.warwickshire.example');
    await editYaml(file, ['peer', 'id'], 'warks');
    await editYaml(file, ['fields', 'subjects[].identifiers.pnc'], 'keep');
    const problems = await problemsOf(copy.dir);
    expect(problems.map((p) => p.path)).toContain('peers/warwickshire.yaml: peer.id');
    expect(problems.some((p) => p.path?.startsWith('peers/warwickshire.yaml: fields'))).toBe(true);

    await unlink(file);
    await writeFile(path.join(copy.dir, 'peers/dvla.yaml'), (await readFile(path.resolve(import.meta.dirname, '../../policies/peers/warwickshire.yaml'), 'utf8')).replace('id: warwickshire', 'id: dvla'));
    expect((await problemsOf(copy.dir)).map((p) => p.message)).toContain('"dvla" is already a partner id');
  });
});

describe('the per-peer hits policy', () => {
  it('is read from the peer file; what it leaves out is the minimum (no detail, no record refs, every kind)', async () => {
    const set = await loadPolicySet(path.resolve(import.meta.dirname, '../../policies'), NOW);
    expect(set.peerPolicies?.get('warwickshire')?.hits).toEqual({ declared: true, kinds: ['address', 'tenancy', 'vehicle', 'business', 'associate', 'employment', 'phone'], detail: 'keep', partnerRecordRef: 'drop' });
    const copy = await copyPolicies();
    cleanup = copy.cleanup;
    const file = path.join(copy.dir, 'peers/warwickshire.yaml');
    await writeFile(file, (await readFile(file, 'utf8')).replace(/\nhits:\n( {2}.*\n)+/, '\n'));
    const bare = await loadPolicySet(copy.dir, NOW);
    expect(bare.peerPolicies?.get('warwickshire')?.hits).toEqual({ declared: false, detail: 'drop', partnerRecordRef: 'drop' });
  });

  it('refuses an unknown kind or mode, naming the place', async () => {
    const copy = await copyPolicies();
    cleanup = copy.cleanup;
    const file = path.join(copy.dir, 'peers/warwickshire.yaml');
    await editYaml(file, ['hits', 'kinds'], ['tenancy', 'criminal-record']);
    await editYaml(file, ['hits', 'detail'], 'blur');
    const problems = (await problemsOf(copy.dir)).map((p) => p.path);
    expect(problems).toEqual(expect.arrayContaining([expect.stringMatching(/^peers\/warwickshire\.yaml: hits\.kinds/), expect.stringMatching(/^peers\/warwickshire\.yaml: hits\.detail/)]));
  });
});
