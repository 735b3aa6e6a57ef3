/**
 * Lint of the recipient table (gateway.yaml `requestChecks`, policy/recipients.ts), both ways: a
 * request word no partner serves (a dossier asking only for it reaches nobody), and a partner check no
 * request word reaches (hits of that kind can never be asked for). A partner none of whose checks is
 * reachable, and without a statutory condition, can never receive anything: an error. A word mapped
 * to [] is asked of nobody on purpose.
 */
import { getSchemaIndex } from '../policy/schema-index.js';
import type { PolicySet } from '../policy/types.js';

export interface TableFinding {
  severity: 'error' | 'warning';
  file: string;
  location: string;
  message: string;
}

export function checkRequestTable(set: Pick<PolicySet, 'gateway' | 'partners'>): TableFinding[] {
  const out: TableFinding[] = [];
  const table = set.gateway.requestChecks;
  if (!table) {
    out.push({ severity: 'error', file: 'gateway.yaml', location: '', message: 'no requestChecks table: no dossier reaches any partner except under a statutory condition' });
    return out;
  }
  const words = (getSchemaIndex().byPath.get('requests.checks[]')?.enum ?? []).map(String);
  const served = new Set([...set.partners.values()].flatMap((p) => p.partner.checks));
  for (const w of words) {
    const kinds = Object.hasOwn(table, w) ? table[w]! : undefined;
    if (!kinds) out.push({ severity: 'warning', file: 'gateway.yaml', location: 'requestChecks', message: `request word "${w}" is not mapped: a dossier asking only for it reaches no partner` });
    else if (kinds.length > 0 && !kinds.some((k) => served.has(k))) {
      out.push({ severity: 'warning', file: 'gateway.yaml', location: `requestChecks.${w}`, message: `no partner serves ${kinds.join(', ')}: a dossier asking only for "${w}" reaches no partner` });
    }
  }
  const reached = new Set(Object.values(table).flat());
  for (const p of set.partners.values()) {
    const unreached = p.partner.checks.filter((c) => !reached.has(c));
    if (unreached.length === 0) continue;
    if (unreached.length === p.partner.checks.length && !p.statutory) {
      out.push({ severity: 'error', file: p.file, location: 'partner.checks', message: `no request word reaches any check of ${p.partner.id} (${unreached.join(', ')}), and it has no statutory condition: it can never receive a dossier` });
    } else {
      out.push({ severity: 'warning', file: p.file, location: 'partner.checks', message: `no request word (gateway.yaml requestChecks) reaches ${unreached.join(', ')}: ${p.partner.id} is never asked for ${unreached.length === 1 ? 'it' : 'them'}` });
    }
  }
  return out;
}
