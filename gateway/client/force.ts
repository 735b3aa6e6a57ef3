/**
 * The force client: a police force's view of a dossier it sent (status), the hits the partners found
 * (the bundle, decrypted with the force's key and verified against the pinned gateway key only), and the
 * approval of follow-up disclosures that wait for an officer. The `cordon force` CLI is a thin shell.
 */
import { decryptAndVerify, type GatewayKey } from '../crypto/openpgp.js';
import { GatewayError } from '../errors/index.js';
import type { Bundle } from '../hits/bundle.js';
import { ClientError, GatewayHttp, type HttpOptions } from './http.js';
import type { PinnedGateway } from './keys.js';

export interface ForceClientOptions extends HttpOptions {
  /** The force's own secret key: the bundle is encrypted to it. Needed for `hits` only. */
  key?: GatewayKey;
  gateway?: PinnedGateway;
  now?: () => Date;
}

export interface DossierStatus {
  id: string;
  state: string;
  deliveries: Array<{ partner: string; state: string; reason?: string; packetId?: string; matchPacketId?: string; stage?: string; reviewBy?: string; expiresAt?: string; updatedAt?: string }>;
  matches?: Record<string, Record<string, string>>;
  recall?: unknown;
  [more: string]: unknown;
}

export interface Approval {
  partner: string;
  officer: { name: string; id: string };
  subjects?: string[];
}

const DOSSIER_ID = /^dos_[0-9a-f]{32}$/;

export class ForceClient {
  readonly http: GatewayHttp;

  constructor(private readonly o: ForceClientOptions) {
    this.http = new GatewayHttp(o);
  }

  private route(id: string, tail = ''): string {
    if (!DOSSIER_ID.test(id)) throw new ClientError('config', `${JSON.stringify(id)} is not a dossier id (dos_ and 32 hex digits)`);
    return `/v1/dossiers/${id}${tail}`;
  }

  status(id: string): Promise<DossierStatus> {
    return this.http.json<DossierStatus>('GET', this.route(id));
  }

  /** The hits bundle, decrypted and verified against the pinned gateway key (anything else is refused). */
  async hits(id: string): Promise<Bundle> {
    if (!this.o.key || !this.o.gateway) throw new ClientError('config', "reading the hits needs the force's secret key (--key or --gnupg-home) and the gateway's pinned key (--gateway-key)");
    const res = await this.http.ok('GET', this.route(id, '/hits'));
    let data: string;
    try {
      ({ data } = await decryptAndVerify(res.text, this.o.key.privateKey, [this.o.gateway.verify], (this.o.now ?? (() => new Date()))()));
    } catch (err) {
      if (err instanceof GatewayError) throw new ClientError('refused', `the hits bundle of ${id}: ${err.message} (pinned gateway key ${this.o.gateway.fingerprint})`);
      throw err;
    }
    return JSON.parse(data) as Bundle;
  }

  approve(id: string, approval: Approval): Promise<{ dossier: string; partner: string; approved: string[]; officer: { name: string; id: string } }> {
    return this.http.json('POST', this.route(id, '/approvals'), approval);
  }
}

// ---- text for a terminal ------------------------------------------------------------------------

/** Control characters (an ANSI escape in a partner's detail) never reach the terminal. */
function clean(s: string): string {
  // eslint-disable-next-line no-control-regex -- removing control characters is the point
  return s.replace(/[\u0000-\u001F\u007F-\u009F]+/g, ' ');
}

function table(head: string[], rows: string[][], max: Record<string, number> = {}): string[] {
  const w = head.map((h, i) => Math.min(max[h] ?? 60, Math.max(h.length, ...rows.map((r) => r[i]!.length))));
  const line = (cells: string[]) => cells.map((c, i) => (c.length > w[i]! ? c.slice(0, w[i]! - 1) + '…' : c.padEnd(w[i]!))).join('  ').trimEnd();
  return [line(head), line(w.map((n) => '-'.repeat(n))), ...rows.map(line)];
}

/** The bundle as one table per subject (hits, then the partners' answers), then the links. */
export function bundleText(b: Bundle): string {
  const out: string[] = [`Hits for ${b.bundle.dossier} (${b.bundle.count} in all), generated ${b.bundle.generatedAt}`];
  const subjects = new Set([...Object.keys(b.subjects), ...Object.values(b.matches ?? {}).flatMap((m) => Object.keys(m))]);
  for (const s of [...subjects].sort()) {
    const hits = b.subjects[s] ?? [];
    out.push('', `Subject ${s}: ${hits.length} hit${hits.length === 1 ? '' : 's'}`);
    if (hits.length > 0) {
      const rows = hits.map((h) => [
        h.partner + (h.via ? ` via ${h.via}` : ''),
        h.kind,
        h.confidence,
        clean(Object.entries(h.detail).map(([k, v]) => `${k}: ${String(v)}`).join(', ')),
        clean(h.partnerRecordRef ?? ''),
        [h.signed ? 'signed' : 'unsigned', h.withdrawn ? 'WITHDRAWN' : '', h.agreementExpired ? 'agreement expired' : ''].filter(Boolean).join(', '),
        h.receivedAt,
      ]);
      out.push(...table(['partner', 'kind', 'confidence', 'detail', 'record', 'notes', 'received'], rows, { detail: 120 }).map((l) => `  ${l}`));
    }
    const answers = Object.entries(b.matches ?? {})
      .filter(([, m]) => m[s] !== undefined)
      .map(([partner, m]) => `${partner} ${m[s]}`);
    if (answers.length > 0) out.push(`  answers: ${answers.join(', ')}`);
  }
  if (b.links.length > 0) {
    out.push('', 'Links');
    out.push(
      ...table(
        ['kind', 'value', 'subjects', 'other dossiers'],
        b.links.map((l) => [l.kind, clean(l.value), l.subjects.join(', '), (l.otherDossiers ?? []).map((o) => `${o.reference ?? o.dossier} ${o.subject}`).join(', ')]),
      ).map((l) => `  ${l}`),
    );
  }
  return out.join('\n');
}

/** The dossier status as a table of deliveries and answers. */
export function statusText(s: DossierStatus): string {
  const out = [`Dossier ${s.id}: ${s.state}`, ''];
  out.push(
    ...table(
      ['partner', 'state', 'stage', 'packet', 'detail'],
      s.deliveries.map((d) => [d.partner, d.state, d.stage ?? '', d.packetId ?? d.matchPacketId ?? '', d.reason ?? (d.expiresAt ? `expires ${d.expiresAt}` : '')]),
    ),
  );
  const matches = Object.entries(s.matches ?? {});
  if (matches.length > 0) {
    out.push('', 'Answers per subject');
    for (const [partner, m] of matches) out.push(`  ${partner}: ${Object.entries(m).map(([subject, a]) => `${subject} ${a}`).join(', ')}`);
  }
  const awaiting = s.deliveries.filter((d) => d.stage === 'awaiting_approval').map((d) => d.partner);
  if (awaiting.length > 0) out.push('', `Awaiting approval: ${awaiting.join(', ')} (cordon force approve ${s.id} --partner ID --officer NAME --officer-id ID)`);
  return out.join('\n');
}
