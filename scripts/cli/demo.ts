/**
 * `cordon demo`: the whole flow against a running gateway with the sample configuration. Pushes the
 * full example dossier as the force, waits for delivery, pulls and decrypts every partner's packet with
 * the TEST keys and prints what each partner received side by side; then hits, the match step of
 * after-match partners (demo-match.ts: a no trace, a follow-up, an approval) and a tenancy-only request
 * (demo-recipients.ts: who is sent it, and who is not).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as openpgpKeys from '../../gateway/crypto/openpgp.js';
import { GatewayError } from '../../gateway/errors/index.js';
import { demoMatch } from './demo-match.js';
import { demoBlind } from './demo-blind.js';
import { demoTenancyOnly } from './demo-recipients.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface Delivery {
  partner: string;
  state: string;
  reason?: string;
  packetId?: string;
}
interface Status {
  state: string;
  deliveries: Delivery[];
}

async function call<T = Record<string, unknown>>(url: string, token: string, method = 'GET', body?: unknown): Promise<{ status: number; text: string; json: T }> {
  const res = await fetch(url, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  }).catch((err: Error) => {
    throw new GatewayError('store_unavailable', `cannot reach the gateway at ${url}: ${err.message} (start it with npm start)`);
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json: json as T };
}

/** Flattens a redacted dossier to `path → value` rows, naming subjects by their position. */
function flatten(value: unknown, prefix: string, out: Map<string, string>): void {
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== 'object')) out.set(prefix, value.join(', '));
    else value.forEach((v, i) => flatten(v, `${prefix}[${i}]`, out));
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (value !== undefined) {
    out.set(prefix, String(value));
  }
}

export async function demo(o: { url: string; policies: string }): Promise<void> {
  const base = o.url.replace(/\/$/, '');
  const tokens = JSON.parse(await readFile(path.join(ROOT, 'test/fixtures/sample-tokens.json'), 'utf8')) as Record<string, string>;
  const dossier = JSON.parse(await readFile(path.join(ROOT, 'examples/dossier-full.json'), 'utf8')) as { reference: string } & Record<string, unknown>;
  const source = tokens['west-midlands-rocu']!;

  const pushed = await call<{ id: string }>(`${base}/v1/dossiers`, source, 'POST', dossier);
  if (pushed.status !== 202) throw new GatewayError('internal', `the gateway refused the dossier: ${pushed.text}`);
  process.stdout.write(`pushed ${dossier.reference} as ${pushed.json.id}\n`);

  let status: Status = { state: 'accepted', deliveries: [] };
  for (let i = 0; i < 300; i++) {
    status = (await call<Status>(`${base}/v1/dossiers/${pushed.json.id}`, source)).json;
    if (status.state !== 'accepted' && status.deliveries.every((d) => d.state !== 'queued')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const d of status.deliveries) process.stdout.write(`  ${d.partner.padEnd(24)} ${d.state}${d.reason ? ` (${d.reason})` : ''}\n`);

  const gatewayPublic = await (await fetch(`${base}/v1/keys/gateway`)).text();
  const verifyKey = await openpgpKeys.parseArmoredPublicKey(gatewayPublic);
  const columns: Array<{ partner: string; rows: Map<string, string> }> = [];
  const received = new Map<string, { id: string; body: DemoPacket }>();
  for (const d of status.deliveries) {
    if (!d.packetId || !tokens[d.partner]) continue;
    const armored = await call(`${base}/v1/packets/${d.packetId}`, tokens[d.partner]!);
    const secret = await openpgpKeys.parseArmoredPrivateKey(await readFile(path.join(ROOT, `test/fixtures/keys/${d.partner}.sec.asc`), 'utf8'));
    const { data } = await openpgpKeys.decryptAndVerify(armored.text, secret, [verifyKey]);
    if ((JSON.parse(data) as { dossier?: unknown }).dossier) received.set(d.partner, { id: d.packetId, body: JSON.parse(data) as DemoPacket });
    const rows = new Map<string, string>();
    // A partner asked first (after-match) holds a match request: identifiers only, no dossier.
    const body = JSON.parse(data) as { dossier?: unknown; subjects?: Array<Record<string, unknown>>; request?: { elements: string[] } };
    // A partner asked blind holds only blinded elements: no identifier at all.
    if (body.request) rows.set('request.elements', `${body.request.elements.length} blinded`);
    else flatten(body.dossier ?? { subjects: body.subjects?.map(({ ref, ...rest }) => ({ id: ref, ...rest })) }, '', rows);
    columns.push({ partner: body.dossier ? d.partner : `${d.partner} (${body.request ? 'blind' : 'match'})`, rows });
  }

  const paths = [...new Set(columns.flatMap((c) => [...c.rows.keys()]))].filter((p) => p !== 'schema');
  const width = 18;
  const cell = (s: string) => (s.length > width ? s.slice(0, width - 1) + '…' : s).padEnd(width);
  const pathWidth = Math.min(48, Math.max(...paths.map((p) => p.length)));
  process.stdout.write(`\nWhat each partner received (signature verified, decrypted with the TEST keys):\n\n`);
  process.stdout.write(''.padEnd(pathWidth) + ' | ' + columns.map((c) => cell(c.partner)).join(' | ') + '\n');
  process.stdout.write('-'.repeat(pathWidth + columns.length * (width + 3) + 1) + '\n');
  for (const p of paths) {
    const label = p.length > pathWidth ? '…' + p.slice(-(pathWidth - 1)) : p.padEnd(pathWidth);
    process.stdout.write(label + ' | ' + columns.map((c) => cell(c.rows.get(p) ?? '·')).join(' | ') + '\n');
  }
  process.stdout.write(`\n"·" = not shared. Subject ids are packet-scoped refs; each partner sees only its own.\n`);

  await demoHits(base, tokens, pushed.json.id, received, verifyKey);
  await demoMatch(base, tokens, pushed.json.id, call, verifyKey);
  await demoBlind(base, tokens, pushed.json.id, call);
  await demoTenancyOnly(base, source, dossier, call);
}

interface DemoPacket {
  dossier: { subjects: Array<{ id: string; name?: { given?: string } }> };
}

/**
 * The return path: council housing and DVLA report hits quoting the refs of their own packets, then
 * the force fetches its bundle and decrypts it with its (TEST) key.
 */
async function demoHits(
  base: string,
  tokens: Record<string, string>,
  dossierId: string,
  received: Map<string, { id: string; body: DemoPacket }>,
  verifyKey: Awaited<ReturnType<typeof openpgpKeys.parseArmoredPublicKey>>,
): Promise<void> {
  const ref = (partner: string, given: string) => received.get(partner)?.body.dossier.subjects.find((s) => s.name?.given === given)?.id;
  const reports: Record<string, Array<Record<string, unknown> & { subject: string | undefined }>> = {
    'council-housing': [
      { subject: ref('council-housing', 'Daniel'), kind: 'tenancy', detail: { line1: '18 Cedar Road', town: 'Coventry', postcode: 'CV6 5HX', tenure: 'council', since: '2022-05-01' }, matchedOn: ['name', 'dateOfBirth'], confidence: 'confirmed', partnerRecordRef: 'HSG-778812' },
      { subject: ref('council-housing', 'Daniel'), kind: 'address', detail: { line1: '22 Cedar Road', town: 'Coventry', postcode: 'CV6 5HX', occupants: 9, note: 'HMO licence refused 2025' }, matchedOn: ['postcode'], confidence: 'possible', partnerRecordRef: 'HMO-2025-0441' },
      { subject: ref('council-housing', 'Daniel'), kind: 'address', detail: { line1: '22 Cedar Rd', town: 'Coventry', postcode: 'cv6 5hx', role: 'landlord of record' }, matchedOn: ['name', 'dateOfBirth'], confidence: 'probable', partnerRecordRef: 'HMO-2025-0441-APP' },
    ],
    dvla: [
      { subject: ref('dvla', 'Samuel'), kind: 'vehicle', detail: { vrm: 'kx19 lmn', make: 'Mercedes-Benz', model: 'Sprinter', keeperSince: '2024-02-11' }, matchedOn: ['name', 'dateOfBirth'], confidence: 'confirmed', partnerRecordRef: 'V5C-7781-2024' },
      { subject: ref('dvla', 'Samuel'), kind: 'address', detail: { line1: '14 Cedar Rd', town: 'Coventry', postcode: 'CV65HX', record: 'driving licence address' }, matchedOn: ['name', 'dateOfBirth'], confidence: 'confirmed' },
    ],
  };
  process.stdout.write('\nPartners report hits, quoting the refs of their own packets:\n');
  for (const [partner, hits] of Object.entries(reports)) {
    const packet = received.get(partner);
    if (!packet || !tokens[partner] || hits.some((h) => !h.subject)) {
      process.stdout.write(`  ${partner.padEnd(24)} skipped (no packet with those subjects)\n`);
      continue;
    }
    const res = await call<{ accepted: number; duplicates: number }>(`${base}/v1/packets/${packet.id}/hits`, tokens[partner]!, 'POST', { schema: 'cordon.hits/v1', packet: packet.id, hits });
    if (res.status !== 202) throw new GatewayError('internal', `the gateway refused ${partner}'s hits: ${res.text}`);
    process.stdout.write(`  ${partner.padEnd(24)} ${res.status} accepted ${res.json.accepted}, duplicates ${res.json.duplicates}\n`);
  }

  const bundle = await call(`${base}/v1/dossiers/${dossierId}/hits`, tokens['west-midlands-rocu']!);
  if (bundle.status !== 200) throw new GatewayError('internal', `the gateway did not hand out the hits bundle: ${bundle.text}`);
  const secret = await openpgpKeys.parseArmoredPrivateKey(await readFile(path.join(ROOT, 'test/fixtures/keys/west-midlands.sec.asc'), 'utf8'));
  const { data } = await openpgpKeys.decryptAndVerify(bundle.text, secret, [verifyKey]);
  const decoded = JSON.parse(data) as {
    subjects: Record<string, Array<{ partner: string; kind: string; confidence: string; partnerRecordRef?: string; detail: Record<string, unknown> }>>;
    links: Array<{ kind: string; value: string; subjects: string[]; otherDossiers?: unknown[]; evidence: Array<{ dossier?: string; subject: string; source: string }> }>;
  };
  process.stdout.write(`\nThe force's hits bundle (decrypted with test/fixtures/keys/west-midlands.sec.asc, gateway signature verified):\n\n`);
  for (const [subject, hits] of Object.entries(decoded.subjects)) {
    for (const h of hits) {
      const detail = Object.values(h.detail).slice(0, 4).join(', ');
      process.stdout.write(`  ${subject.padEnd(4)} ${h.partner.padEnd(16)} ${h.kind.padEnd(9)} ${h.confidence.padEnd(9)} ${(h.partnerRecordRef ?? '').padEnd(18)} ${detail}\n`);
    }
  }
  process.stdout.write('\nLinks between subjects:\n');
  for (const l of decoded.links) {
    const sources = [...new Set(l.evidence.filter((e) => !e.dossier).map((e) => `${e.subject} ${e.source}`))].join('; ');
    const elsewhere = l.otherDossiers?.length ? `, and ${l.otherDossiers.length} subject(s) of your other dossiers` : '';
    process.stdout.write(`  ${l.kind.padEnd(9)} ${l.value.padEnd(24)} ${l.subjects.join(', ').padEnd(12)} (${sources}${elsewhere})\n`);
  }
  process.stdout.write(`\nThe whole bundle:\n${JSON.stringify(decoded, null, 2)}\n`);
}
