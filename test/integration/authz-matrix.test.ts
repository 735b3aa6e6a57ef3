/**
 * Function-level authorisation: every role against every route. A role a route is not for gets 403
 * (never the route's work); no token gets 401. The allowed role's answer is whatever the route gives
 * for an unknown id or an empty body — the point is that it got past the role check.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken } from '../../gateway/config/clients.js';
import { api, startTestGateway, type TestGateway } from '../helpers/gateway.js';

type Role = 'source' | 'partner' | 'governance' | 'peer';
const TOKENS: Record<Role, string> = { source: 'matrix-source', partner: 'matrix-partner', governance: 'matrix-governance', peer: 'matrix-peer' };

const ROUTES: Array<{ method: string; path: string; roles: Role[] | 'any' }> = [
  { method: 'POST', path: '/v1/dossiers', roles: ['source'] },
  { method: 'GET', path: '/v1/dossiers/dos_00000000000000000000000000000000', roles: ['source'] },
  { method: 'GET', path: '/v1/dossiers/dos_00000000000000000000000000000000/hits', roles: ['source'] },
  { method: 'POST', path: '/v1/dossiers/dos_00000000000000000000000000000000/recall', roles: ['source'] },
  { method: 'POST', path: '/v1/dossiers/dos_00000000000000000000000000000000/approvals', roles: ['source'] },
  { method: 'POST', path: '/v1/packets/pkt_aaaaaaaaaaaaaaaaaaaaaaaaaa/matches', roles: ['partner'] },
  { method: 'GET', path: '/v1/packets', roles: ['partner'] },
  { method: 'GET', path: '/v1/packets/pkt_aaaaaaaaaaaaaaaaaaaaaaaaaa', roles: ['partner'] },
  { method: 'POST', path: '/v1/packets/pkt_aaaaaaaaaaaaaaaaaaaaaaaaaa/ack', roles: ['partner'] },
  { method: 'POST', path: '/v1/packets/pkt_aaaaaaaaaaaaaaaaaaaaaaaaaa/hits', roles: ['partner'] },
  { method: 'POST', path: '/v1/preview', roles: ['governance'] },
  { method: 'GET', path: '/v1/audit', roles: ['governance'] },
  { method: 'POST', path: '/v1/audit/checkpoint', roles: ['governance'] },
  { method: 'GET', path: '/v1/queues', roles: ['governance'] },
  { method: 'GET', path: '/v1/governance/agreements', roles: ['governance'] },
  { method: 'GET', path: '/v1/governance/revisions', roles: ['governance'] },
  { method: 'POST', path: '/v1/governance/diff', roles: ['governance'] },
  { method: 'GET', path: '/v1/governance/examples', roles: ['governance'] },
  { method: 'GET', path: '/v1/governance/examples/dossier-full.json', roles: ['governance'] },
  { method: 'GET', path: '/v1/governance/isa/dvla', roles: ['governance'] },
  { method: 'POST', path: '/v1/exchange/inbound', roles: ['peer'] },
  { method: 'GET', path: '/v1/exchange/matches', roles: ['source'] },
  { method: 'GET', path: '/v1/exchange/matches/mrq_aaaaaaaaaaaaaaaaaaaaaaaaaa', roles: ['source'] },
  { method: 'POST', path: '/v1/exchange/matches/mrq_aaaaaaaaaaaaaaaaaaaaaaaaaa/answers', roles: ['source'] },
  { method: 'GET', path: '/v1/partners', roles: 'any' },
];

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway({ role: 'api' });
  const file = path.join(gw.stateDir, 'clients.yaml');
  await writeFile(
    file,
    `clients:
  - { id: m-source, role: source, source: west-midlands, tokens: ["${hashToken(TOKENS.source)}"] }
  - { id: m-partner, role: partner, partner: dvla, tokens: ["${hashToken(TOKENS.partner)}"] }
  - { id: m-governance, role: governance, tokens: ["${hashToken(TOKENS.governance)}"] }
  - { id: m-peer, role: peer, peer: warwickshire, tokens: ["${hashToken(TOKENS.peer)}"] }
`,
  );
  // Restart on the matrix credentials (same prefix and state); stopping the second also cleans up the first.
  const first = gw;
  await first.close();
  const second = await startTestGateway({ role: 'api', clientsFile: file, redisPrefix: first.prefix, stateDir: first.stateDir });
  gw = { ...second, stop: async () => { await second.stop(); } };
});
afterAll(async () => {
  await gw?.stop();
});

describe('every role against every route', () => {
  for (const route of ROUTES) {
    it(`${route.method} ${route.path}`, async () => {
      expect((await api(gw.url, route.method, route.path)).status).toBe(401);
      for (const role of Object.keys(TOKENS) as Role[]) {
        const allowed = route.roles === 'any' || route.roles.includes(role);
        const res = await api(gw.url, route.method, route.path, TOKENS[role], route.method === 'POST' ? {} : undefined);
        if (allowed) expect(res.status, `${role} should pass the role check`).not.toBe(403);
        else {
          expect(res.status, `${role} must be refused`).toBe(403);
          expect(res.json.error.code).toBe('forbidden');
        }
        expect(res.status, `${role}: never a server error`).toBeLessThan(500);
      }
    });
  }
});
