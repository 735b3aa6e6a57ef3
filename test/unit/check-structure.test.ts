import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const SCRIPT = path.resolve(import.meta.dirname, '../../scripts/check-structure.mjs');
const dirs: string[] = [];

/** A repository of the given files (path → text) in a fresh temporary directory. */
async function tree(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'cordon-structure-'));
  dirs.push(root);
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await writeFile(path.join(root, rel), text);
  }
  return root;
}

function check(root: string): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [SCRIPT, root], { encoding: 'utf8' });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

const lines = (n: number) => 'export const x = 1;\n'.repeat(n);

afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('scripts/check-structure.mjs', () => {
  it('passes a tree that keeps every boundary', async () => {
    const root = await tree({
      'gateway/main.ts': "import { a } from './policy/a.js';\nimport { s } from './store/s.js';\n",
      'gateway/policy/a.ts': "import { d } from '../dossier/d.js';\nimport type { Redis } from '../store/types.js';\nexport const a = d;\n",
      'gateway/dossier/d.ts': "import { helper } from './helper.js';\nexport const d = helper;\n",
      'gateway/dossier/helper.ts': 'export const helper = 1;\n',
      'gateway/store/s.ts': "import { Redis } from 'ioredis';\nimport type { RedisOptions } from 'ioredis';\nexport const s = Redis;\n",
      'gateway/queue/q.ts': "import { Queue } from 'bullmq';\nexport const q = Queue;\n",
      'gateway/http/app.ts': "import express from 'express';\nexport const app = express();\n",
      'gateway/big.ts': lines(400),
      'scripts/tool.ts': "import { s } from '../gateway/store/s.js';\n// import { Redis } from 'ioredis';\n/* import express from 'express'; */\nconst text = 'not an import: // from \"bullmq\"';\n",
    });
    const r = check(root);
    expect(r.out).toMatch(/check-structure: ok/);
    expect(r.code).toBe(0);
  });

  it('fails on a folder cycle, naming the folders and the imports that close it', async () => {
    const root = await tree({
      'gateway/policy/a.ts': "import { b } from '../redact/b.js';\nexport const a = b;\n",
      'gateway/redact/b.ts': "export { g } from '../governance/g.js';\nexport const b = 1;\n",
      'gateway/governance/g.ts': "import type { A } from '../policy/a.js';\nexport const g = 1;\n",
      'gateway/dossier/d.ts': "import { a } from '../policy/a.js';\nexport const d = a;\n",
    });
    const r = check(root);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/1 offence\b/);
    expect(r.out).toMatch(/folder import cycle: governance, policy, redact/);
    expect(r.out).toContain('governance -> policy: gateway/governance/g.ts : ../policy/a.js');
    expect(r.out).not.toMatch(/dossier ->/);
  });

  it('counts files directly in gateway/ as one folder of their own', async () => {
    const root = await tree({
      'gateway/errors.ts': "import { c } from './config/c.js';\nexport const e = c;\n",
      'gateway/config/c.ts': "import { e } from '../errors.js';\nexport const c = e;\n",
    });
    const r = check(root);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/folder import cycle: \(gateway\/\), config/);
  });

  it('fails on every .ts file in gateway/ over 400 lines', async () => {
    const root = await tree({
      'gateway/a/long.ts': lines(401),
      'gateway/b/longer.ts': `${lines(500)}// no newline at the end`,
      'gateway/b/fine.ts': lines(400),
      'scripts/long.ts': lines(900),
    });
    const r = check(root);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/2 offences/);
    expect(r.out).toContain('gateway/a/long.ts: 401 lines');
    expect(r.out).toContain('gateway/b/longer.ts: 501 lines');
  });

  it('fails on ioredis, bullmq or express outside their one folder, type imports, re-exports and dynamic imports included', async () => {
    const root = await tree({
      'gateway/audit/log.ts': "import type { Redis } from 'ioredis';\nexport type R = Redis;\n",
      'gateway/hits/notify.ts': "import {\n  Queue,\n  Worker,\n} from 'bullmq';\nexport const q = [Queue, Worker];\n",
      'gateway/compose/api.ts': "export { default as express } from 'express';\n",
      'gateway/queue/redis.ts': "const m = await import('ioredis');\nexport default m;\n",
      'scripts/bench/redis.ts': "import { Redis } from 'ioredis/built/index.js';\nexport default Redis;\n",
      'scripts/legacy.cjs': "const { Queue } = require('bullmq');\nmodule.exports = Queue;\n",
      'scripts/bench/echo.ts': "import express from 'express';\nexport const app = express();\n",
      'gateway/store/ok.ts': "import { Redis } from 'ioredis';\nexport default Redis;\n",
    });
    const r = check(root);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/6 offences/);
    for (const line of [
      'gateway/audit/log.ts: imports ioredis (only gateway/store/ may)',
      'gateway/hits/notify.ts: imports bullmq (only gateway/queue/ may)',
      'gateway/compose/api.ts: imports express (only gateway/http/ may)',
      'gateway/queue/redis.ts: imports ioredis (only gateway/store/ may)',
      'scripts/bench/redis.ts: imports ioredis/built/index.js (only gateway/store/ may)',
      'scripts/legacy.cjs: imports bullmq (only gateway/queue/ may)',
    ]) {
      expect(r.out).toContain(line);
    }
    expect(r.out).not.toContain('scripts/bench/echo.ts'); // express is the gateway's own rule only
  });
});
