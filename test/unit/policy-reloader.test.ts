/** PolicyReloader: a broken edit never goes live; the last good set keeps serving and says so. */
import { afterAll, describe, expect, it } from 'vitest';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildLiveSet, type LiveSet } from '../../gateway/policy/live.js';
import { loadPolicySet } from '../../gateway/policy/load.js';
import { PolicyReloader, type PolicyAuditEvent, type ReloadOutcome } from '../../gateway/policy/reloader.js';

const SAMPLE = path.resolve(import.meta.dirname, '../../policies');
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

interface Harness {
  dir: string;
  reloader: PolicyReloader<string>;
  live(): LiveSet<string>;
  events: PolicyAuditEvent[];
  logs: Array<{ level: string; obj: object; msg: string }>;
  outcomes: ReloadOutcome[];
  auditFails: { value: boolean };
}

async function harness(debounceMs = 50): Promise<Harness> {
  const dir = await mkdtemp(path.join(tmpdir(), 'cordon-reload-'));
  dirs.push(dir);
  await cp(SAMPLE, dir, { recursive: true });
  let live = await buildLiveSet(await loadPolicySet(dir), async (_a, fp) => fp);
  const events: PolicyAuditEvent[] = [];
  const logs: Harness['logs'] = [];
  const outcomes: ReloadOutcome[] = [];
  const auditFails = { value: false };
  const log = (level: string) => (obj: object, msg: string) => void logs.push({ level, obj, msg });
  const reloader = new PolicyReloader<string>({
    dir,
    current: () => live,
    apply: (next) => {
      live = next;
    },
    parseKey: async (_a, fp) => fp,
    audit: {
      append: async (e) => {
        if (auditFails.value) throw new Error('audit down');
        events.push(e);
      },
    },
    logger: { info: log('info'), warn: log('warn'), error: log('error') },
    debounceMs,
    onOutcome: (o) => void outcomes.push(o),
  });
  return { dir, reloader, live: () => live, events, logs, outcomes, auditFails };
}

async function edit(dir: string, rel: string, fn: (t: string) => string): Promise<void> {
  const file = path.join(dir, rel);
  await writeFile(file, fn(await readFile(file, 'utf8')));
}

describe('PolicyReloader.reload', () => {
  it('swaps in a valid edit, audits it, and changes nothing when the revision is the same', async () => {
    const h = await harness();
    const first = h.live().set.revision;
    expect(await h.reloader.reload('SIGHUP')).toEqual({ status: 'unchanged', revision: first });
    expect(h.events).toEqual([]);

    await edit(h.dir, 'partners/dvla.yaml', (t) => t.replace('  subjects[].vehicles[].colour: keep\n', ''));
    const o = await h.reloader.reload('SIGHUP');
    expect(o.status).toBe('loaded');
    expect(o.revision).not.toBe(first);
    expect(h.live().set.revision).toBe(o.revision);
    expect(h.live().set.partners.get('dvla')!.fields).not.toHaveProperty('subjects[].vehicles[].colour');
    expect(h.events).toEqual([{ kind: 'alteration', action: 'policy.loaded', policyRevision: o.revision, previousRevision: first, reason: 'SIGHUP' }]);
    expect(h.reloader.status()).toBeUndefined();
    expect(h.outcomes.map((x) => x.status)).toEqual(['unchanged', 'loaded']);
  });

  it('refuses a set that does not validate: the last good set stays live, and says so', async () => {
    const h = await harness();
    const good = h.live();
    await edit(h.dir, 'partners/hmrc.yaml', (t) => t.replace('subjects[].dateOfBirth: { op: generalise, to: year }', 'subjects[].dateOfBirth: { op: generalise, to: yaer }\n  subjects[].nickname: keep'));
    const o = await h.reloader.reload('file change');
    expect(o).toMatchObject({ status: 'refused', revision: good.set.revision });
    expect(o.problems).toBeGreaterThan(0);
    expect(h.live()).toBe(good);
    expect(h.reloader.status()).toMatch(new RegExp(`^reload refused at \\d{4}-\\d{2}-\\d{2}T\\S+Z: ${o.problems} problems?; serving revision ${good.set.revision}$`));
    expect(h.events).toEqual([{ kind: 'alteration', action: 'policy.refused', policyRevision: good.set.revision, reason: 'file change', problems: o.problems }]);
    const logged = h.logs.find((l) => l.level === 'error')!;
    expect(logged.msg).toMatch(/policy reload refused/);
    expect(JSON.stringify(logged.obj)).toContain('partners/hmrc.yaml');

    // A YAML syntax error, a deleted directory: refused just the same.
    await edit(h.dir, 'partners/hmrc.yaml', () => 'partner: [\n');
    expect((await h.reloader.reload('SIGHUP')).status).toBe('refused');
    await rm(path.join(h.dir, 'sources'), { recursive: true });
    expect((await h.reloader.reload('SIGHUP')).status).toBe('refused');
    expect(h.live()).toBe(good);

    // Put back: the refusal clears.
    await cp(path.join(SAMPLE, 'sources'), path.join(h.dir, 'sources'), { recursive: true });
    await cp(path.join(SAMPLE, 'partners/hmrc.yaml'), path.join(h.dir, 'partners/hmrc.yaml'));
    expect((await h.reloader.reload('SIGHUP')).status).toBe('unchanged');
    expect(h.reloader.status()).toBeUndefined();
  });

  it('does not apply a set whose load cannot be audited', async () => {
    const h = await harness();
    const good = h.live();
    await edit(h.dir, 'partners/dvla.yaml', (t) => t.replace('  subjects[].vehicles[].colour: keep\n', ''));
    h.auditFails.value = true;
    expect((await h.reloader.reload('SIGHUP')).status).toBe('refused');
    expect(h.live()).toBe(good);
    expect(h.reloader.status()).toMatch(/could not be audited; serving revision/);
    h.auditFails.value = false;
    expect((await h.reloader.reload('SIGHUP')).status).toBe('loaded');
  });

  it('runs one reload at a time and coalesces requests that arrive meanwhile', async () => {
    const h = await harness();
    await edit(h.dir, 'partners/dvla.yaml', (t) => t.replace('  subjects[].vehicles[].colour: keep\n', ''));
    // Requests made before a run starts share it.
    const a = h.reloader.reload('a');
    expect(h.reloader.reload('a again')).toBe(a);
    await new Promise((r) => setTimeout(r, 0)); // a is running now
    // Requests made while it runs share one more run after it.
    const b = h.reloader.reload('b');
    const c = h.reloader.reload('c');
    expect(c).toBe(b);
    expect(b).not.toBe(a);
    expect((await a).status).toBe('loaded');
    expect((await b).status).toBe('unchanged');
    expect(h.events).toHaveLength(1);
  });
});

describe('PolicyReloader.watch', () => {
  it('reloads after a change in the policy directory or a subdirectory, and stops when closed', async () => {
    const h = await harness(50);
    h.reloader.watch();
    await new Promise((r) => setTimeout(r, 100));
    const first = h.live().set.revision;
    await edit(h.dir, 'partners/dvla.yaml', (t) => t.replace('  subjects[].vehicles[].colour: keep\n', ''));
    const deadline = Date.now() + 10_000;
    while (h.live().set.revision === first && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(h.live().set.revision).not.toBe(first);
    expect(h.events.at(-1)).toMatchObject({ action: 'policy.loaded', reason: 'file change' });

    // gateway.yaml sits at the top of the directory
    const second = h.live().set.revision;
    await edit(h.dir, 'gateway.yaml', (t) => t + '\n# reviewed\n');
    while (h.live().set.revision === second && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(h.live().set.revision).not.toBe(second);

    h.reloader.close();
    const third = h.live().set.revision;
    await edit(h.dir, 'gateway.yaml', (t) => t + '\n# again\n');
    await new Promise((r) => setTimeout(r, 400));
    expect(h.live().set.revision).toBe(third);
  });
});

describe('PolicyReloader.watch, a subdirectory replaced', () => {
  it('watches a subdirectory deleted and made again (a restore, a checkout): a later edit in it still reloads', async () => {
    const h = await harness(50);
    h.reloader.watch();
    await new Promise((r) => setTimeout(r, 100));
    const first = h.live().set.revision;
    const partners = path.join(h.dir, 'partners');
    const saved = path.join(h.dir, '..', `${path.basename(h.dir)}-partners`);
    dirs.push(saved);
    await cp(partners, saved, { recursive: true });
    await rm(partners, { recursive: true });
    await cp(saved, partners, { recursive: true });
    // The removal and the copy are reloads of their own (refused, then back to the live revision).
    const deadline = Date.now() + 10_000;
    while (h.outcomes.at(-1)?.status !== 'unchanged' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(h.live().set.revision).toBe(first);
    await new Promise((r) => setTimeout(r, 100));
    await edit(h.dir, 'partners/dvla.yaml', (t) => t.replace('  subjects[].vehicles[].colour: keep\n', ''));
    while (h.live().set.revision === first && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(h.live().set.revision).not.toBe(first);
    h.reloader.close();
  });
});
