/**
 * A partner's hits file, JSON or CSV, read into hits submissions (one per packet) and checked against
 * schemas/hits.schema.json before anything is sent: a file with one bad row sends nothing, and every
 * problem is named by its CSV line (or JSON path).
 *
 * CSV: a header row, then one hit per row (RFC 4180 quoting; UTF-8). Columns, in any order:
 *   packet            the packet id (may be left out when the command names --packet)
 *   subject           the subject ref exactly as the packet carries it (ref_…)
 *   kind              address | tenancy | vehicle | benefit-claim | business | associate | employment |
 *                     immigration-status | safeguarding | phone | other
 *   confidence        confirmed | probable | possible
 *   matchedOn         what the record matched on, separated by ";" (name;dateOfBirth)
 *   partnerRecordRef  the record's id in the partner's system (optional)
 *   detail.<name>     one column per detail field (detail.line1, detail.postcode, detail.vrm…); an empty
 *                     cell leaves the field out
 * JSON: a submission (`{"schema": "cordon.hits/v1", "packet", "hits"}`), an array of them, or
 * `{"hits": [...]}` with --packet.
 */
import { validateHits } from '../dossier/validate.js';
import type { HitsSubmission } from '../dossier/types.js';
import { GatewayError } from '../errors/index.js';
import { ClientError } from './http.js';

export const CSV_COLUMNS = ['packet', 'subject', 'kind', 'confidence', 'matchedOn', 'partnerRecordRef'] as const;

/** RFC 4180 rows (quoted fields, doubled quotes, CRLF or LF), with the line each row starts on. */
export function parseCsv(text: string): Array<{ line: number; cells: string[] }> {
  const rows: Array<{ line: number; cells: string[] }> = [];
  let cells: string[] = [];
  let cell = '';
  let quoted = false;
  let line = 1;
  let start = 1;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const endRow = () => {
    cells.push(cell);
    if (!(cells.length === 1 && cells[0] === '')) rows.push({ line: start, cells });
    cells = [];
    cell = '';
  };
  for (; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          cell += '"';
          i++;
        } else quoted = false;
      } else {
        if (c === '\n') line++;
        cell += c;
      }
    } else if (c === '"' && cell === '') quoted = true;
    else if (c === ',') {
      cells.push(cell);
      cell = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      endRow();
      line++;
      start = line;
    } else cell += c;
  }
  if (quoted) throw new ClientError('config', `CSV line ${start}: a quoted field is not closed`);
  if (cell !== '' || cells.length > 0) endRow();
  return rows;
}

export interface HitsBatch {
  submission: HitsSubmission;
  /** For messages: where hit N came from (`line 4`, `/hits/2`). */
  origin: string[];
}

function fromCsv(text: string, packet: string | undefined): HitsBatch[] {
  const rows = parseCsv(text);
  const header = rows.shift();
  if (!header) throw new ClientError('config', 'the CSV file is empty (it needs a header row: see docs/partners.md)');
  const names = header.cells.map((c) => c.trim());
  const problems: string[] = [];
  names.forEach((n, i) => {
    if (!(CSV_COLUMNS as readonly string[]).includes(n) && !/^detail\.[A-Za-z][A-Za-z0-9_-]{0,63}$/.test(n)) problems.push(`CSV header column ${i + 1}: unknown column ${JSON.stringify(n)}`);
  });
  for (const required of ['subject', 'kind', 'confidence', 'matchedOn']) if (!names.includes(required)) problems.push(`CSV header: missing column ${required}`);
  if (!names.includes('packet') && packet === undefined) problems.push('CSV header: no packet column, and no --packet given');
  if (problems.length) throw new ClientError('config', problems.join('\n'));
  const byPacket = new Map<string, HitsBatch>();
  for (const row of rows) {
    if (row.cells.length !== names.length) throw new ClientError('config', `CSV line ${row.line}: ${row.cells.length} cells, the header has ${names.length}`);
    const get = (n: string) => {
      const i = names.indexOf(n);
      return i < 0 ? '' : row.cells[i]!.trim();
    };
    const pkt = get('packet') || packet!;
    const detail: Record<string, string> = {};
    names.forEach((n, i) => {
      if (n.startsWith('detail.') && row.cells[i] !== '') detail[n.slice(7)] = row.cells[i]!;
    });
    const hit = {
      subject: get('subject'),
      kind: get('kind'),
      detail,
      matchedOn: get('matchedOn').split(';').map((s) => s.trim()).filter(Boolean),
      confidence: get('confidence'),
      ...(get('partnerRecordRef') ? { partnerRecordRef: get('partnerRecordRef') } : {}),
    };
    const batch = byPacket.get(pkt) ?? { submission: { schema: 'cordon.hits/v1', packet: pkt, hits: [] } as unknown as HitsSubmission, origin: [] };
    (batch.submission.hits as unknown[]).push(hit);
    batch.origin.push(`line ${row.line}`);
    byPacket.set(pkt, batch);
  }
  if (byPacket.size === 0) throw new ClientError('config', 'the CSV file has a header and no hits');
  return [...byPacket.values()];
}

function fromJson(text: string, packet: string | undefined): HitsBatch[] {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new ClientError('config', `the hits file is not valid JSON: ${(err as Error).message}`);
  }
  const list = Array.isArray(body) ? body : [body];
  return list.map((s, n) => {
    const sub = s && typeof s === 'object' ? ({ schema: 'cordon.hits/v1', ...(packet ? { packet } : {}), ...(s as object) } as HitsSubmission) : (s as HitsSubmission);
    const hits = Array.isArray(sub?.hits) ? sub.hits : [];
    return { submission: sub, origin: hits.map((_h, i) => `${list.length > 1 ? `/${n}` : ''}/hits/${i}`) };
  });
}

/** Reads a hits file (CSV when `format` says so or the name ends .csv) and checks each submission against the schema. */
export function readHitsFile(text: string, o: { name: string; packet?: string; format?: 'csv' | 'json' }): HitsBatch[] {
  const csv = o.format === 'csv' || (o.format === undefined && /\.csv$/i.test(o.name));
  const batches = csv ? fromCsv(text, o.packet) : fromJson(text, o.packet);
  const problems: string[] = [];
  for (const b of batches) {
    try {
      validateHits(b.submission);
    } catch (err) {
      if (!(err instanceof GatewayError)) throw err;
      for (const d of err.details ?? []) {
        // `/hits/3/kind` → `line 5: kind` for a CSV row.
        const m = /^\/hits\/(\d+)(\/.*)?$/.exec(d.path ?? '');
        const where = m && b.origin[Number(m[1])] ? `${b.origin[Number(m[1])]}${m[2] ? `: ${m[2].slice(1).replace(/\//g, '.')}` : ''}` : d.path || '(whole submission)';
        problems.push(`${where}: ${d.message}`);
      }
    }
  }
  if (problems.length) throw new ClientError('config', `the hits file does not match the hits schema (nothing was sent):\n  ${problems.join('\n  ')}`);
  return batches;
}
