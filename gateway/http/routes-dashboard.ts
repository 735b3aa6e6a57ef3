/**
 * The operators' queue dashboard.
 *
 *   GET /v1/queues   governance role: job counts per queue, the oldest waiting job's age, paused, workers
 *                    (queue/dashboard.ts); never a job id, job data or failure reason. Not audited: it
 *                    shows no data about anyone, and a page polling it would flood the trail.
 *   GET /dashboard   a static page (gateway/http/dashboard/) that asks for a governance token, keeps it
 *                    in sessionStorage and polls /v1/queues with it. The page holds no data, so loading it
 *                    needs no token; it runs under helmet's default Content-Security-Policy (no inline
 *                    script or handlers, nothing from elsewhere).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Express, Router } from 'express';
import type { QueuesSnapshot } from '../queue/dashboard.js';
import { requireRole } from './auth.js';
import { notAllowed } from './body.js';

export interface DashboardRouteDeps {
  queues: () => Promise<QueuesSnapshot>;
}

export function registerDashboardRoutes(r: Router, deps: DashboardRouteDeps): void {
  r.route('/queues')
    .get(requireRole('governance'), async (_req, res) => {
      const snapshot = await deps.queues();
      res.setHeader('Cache-Control', 'no-store');
      res.json(snapshot);
    })
    .all(notAllowed('GET'));
}

/** Next to this file: in the source tree under tsx, and in dist/ where `npm run build` copies it (scripts/build.mjs). */
export const DASHBOARD_DIR = path.join(import.meta.dirname, 'dashboard');

const FILES: Record<string, { file: string; type: string }> = {
  '/dashboard': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
};

/**
 * Serves the page's three files, read once here: a missing file fails start-up instead of a page that
 * half loads. A fixed list, so nothing else under the folder (or outside it) can be asked for.
 */
export function registerDashboardPage(app: Express, dir: string = DASHBOARD_DIR): void {
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
