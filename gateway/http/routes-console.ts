/**
 * The governance console: a static page at `/console` and the JSON routes it needs beyond the existing
 * ones (`POST /v1/preview`, `GET /v1/audit`), all for the governance role.
 *
 *   GET  /v1/governance/agreements       partners, agreement dates, status, disclosure mode, answers per agreement
 *   GET  /v1/governance/revisions        the live revision and the earlier ones this process has served
 *   POST /v1/governance/diff             live vs a candidate set uploaded from the browser, or an earlier revision vs live
 *   GET  /v1/governance/examples[/:name] the example dossiers, for the preview view
 *   GET  /v1/governance/isa/:partner     the information-sharing agreement rendered from the live set
 *
 * The page holds no data, so loading it needs no token; it asks for one, keeps it in sessionStorage and
 * runs under helmet's default Content-Security-Policy (no inline script, style or handler, nothing from
 * elsewhere), like the queue dashboard (routes-dashboard.ts).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Express, Router } from 'express';
import { CANDIDATE_MAX_BYTES } from '../governance/candidate.js';
import type { GovernanceConsole } from '../governance/console.js';
import { requireRole } from './auth.js';
import { jsonBody, notAllowed } from './body.js';

export interface ConsoleRouteDeps {
  console: Pick<GovernanceConsole, 'agreements' | 'revisions' | 'diff' | 'example' | 'examples' | 'isa'>;
  bodyLimitBytes: number;
}

export function registerConsoleRoutes(r: Router, deps: ConsoleRouteDeps): void {
  const c = deps.console;
  const governance = requireRole('governance');
  r.route('/governance/agreements')
    .get(governance, async (_req, res) => {
      res.setHeader('Cache-Control', 'no-store');
      res.json(await c.agreements());
    })
    .all(notAllowed('GET'));

  r.route('/governance/revisions')
    .get(governance, (_req, res) => {
      res.setHeader('Cache-Control', 'no-store');
      res.json(c.revisions());
    })
    .all(notAllowed('GET'));

  // A candidate's files travel JSON-escaped beside an optional dossier: room for both.
  const diffBody = jsonBody(Math.ceil(CANDIDATE_MAX_BYTES * 1.25) + deps.bodyLimitBytes);
  r.route('/governance/diff')
    .post(governance, diffBody, async (req, res) => {
      const report = await c.diff(req.client!.id, req.body);
      res.setHeader('Cache-Control', 'no-store');
      res.json(report);
    })
    .all(notAllowed('POST'));

  r.route('/governance/examples')
    .get(governance, (_req, res) => {
      res.json({ examples: c.examples() });
    })
    .all(notAllowed('GET'));

  r.route('/governance/isa/:partner')
    .get(governance, (req, res) => {
      res.setHeader('Cache-Control', 'no-store');
      res.json(c.isa(String(req.params.partner)));
    })
    .all(notAllowed('GET'));

  r.route('/governance/examples/:name')
    .get(governance, async (req, res) => {
      res.json(await c.example(String(req.params.name)));
    })
    .all(notAllowed('GET'));
}

/** Next to this file: in the source tree under tsx, and in dist/ where `npm run build` copies it. */
export const CONSOLE_DIR = path.join(import.meta.dirname, 'console');

const JS = 'text/javascript; charset=utf-8';
const FILES: Record<string, { file: string; type: string }> = {
  '/console': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/console/console.css': { file: 'console.css', type: 'text/css; charset=utf-8' },
  '/console/console.js': { file: 'console.js', type: JS },
  '/console/common.js': { file: 'common.js', type: JS },
  '/console/partners.js': { file: 'partners.js', type: JS },
  '/console/preview.js': { file: 'preview.js', type: JS },
  '/console/diff.js': { file: 'diff.js', type: JS },
  '/console/audit.js': { file: 'audit.js', type: JS },
  '/console/isa.js': { file: 'isa.js', type: JS },
};

/** Serves the page's files, read once (a missing one fails start-up); a fixed list, nothing else under the folder. */
export function registerConsolePage(app: Express, dir: string = CONSOLE_DIR): void {
  for (const [route, { file, type }] of Object.entries(FILES)) {
    const content = readFileSync(path.join(dir, file));
    app
      .route(route)
      .get((_req, res) => {
        res.setHeader('Cache-Control', 'no-store');
        res.type(type).send(content);
      })
      .all(notAllowed('GET'));
  }
}
