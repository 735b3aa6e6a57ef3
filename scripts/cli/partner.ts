/**
 * `cordon partner pull|report|answer` and `cordon force status|hits|approve`: the clients of
 * gateway/client/ for a terminal or cron. Progress goes to stderr, results to stdout, a summary line
 * last; exit codes in gateway/client/http.ts (EXIT_CODES), documented in docs/partners.md.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { bundleText, ForceClient, statusText } from '../../gateway/client/force.js';
import { readHitsFile } from '../../gateway/client/hits-file.js';
import { ClientError, EXIT_CODES } from '../../gateway/client/http.js';
import { loadOwnKey, loadPinnedGateway } from '../../gateway/client/keys.js';
import { OutDir } from '../../gateway/client/outdir.js';
import { packetRefs, PartnerClient, type AnswerResult } from '../../gateway/client/partner.js';

/** Flags every client command takes; each falls back to an environment variable. */
export interface ConnectionFlags {
  url?: string;
  tokenFile?: string;
  key?: string;
  gnupgHome?: string;
  keyId?: string;
  passphraseFile?: string;
  gatewayKey?: string;
  gatewayFingerprint?: string;
}

const env = process.env;
const err = (s: string) => process.stderr.write(s + '\n');
const out = (s: string) => process.stdout.write(s + '\n');

async function token(o: ConnectionFlags): Promise<string> {
  const file = o.tokenFile ?? env.CORDON_TOKEN_FILE;
  if (file) {
    const t = (await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new ClientError('config', `token file ${file}: ${e.code ?? e.message}`);
    })).trim();
    if (t) return t;
  }
  if (env.CORDON_TOKEN) return env.CORDON_TOKEN;
  throw new ClientError('config', 'no token: set CORDON_TOKEN or give --token-file FILE');
}

function url(o: ConnectionFlags): string {
  return o.url ?? env.CORDON_GATEWAY_URL ?? `http://127.0.0.1:${env.PORT || 8080}`;
}

async function ownKey(o: ConnectionFlags) {
  const key = o.key ?? env.CORDON_KEY_FILE;
  const gnupgHome = o.gnupgHome ?? env.CORDON_GNUPG_HOME;
  const keyId = o.keyId ?? env.CORDON_KEY_ID;
  const passphraseFile = o.passphraseFile ?? env.CORDON_PASSPHRASE_FILE;
  return loadOwnKey({ ...(key ? { secretKeyFile: key } : {}), ...(gnupgHome ? { gnupgHome } : {}), ...(keyId ? { keyId } : {}), ...(passphraseFile ? { passphraseFile } : {}) });
}

async function pinned(o: ConnectionFlags) {
  const file = o.gatewayKey ?? env.CORDON_GATEWAY_KEY;
  if (!file) throw new ClientError('config', "no pinned gateway key: give --gateway-key FILE (or CORDON_GATEWAY_KEY), the key saved from GET /v1/keys/gateway and checked out of band");
  return loadPinnedGateway(file, o.gatewayFingerprint ?? env.CORDON_GATEWAY_FINGERPRINT);
}

async function partnerClient(o: ConnectionFlags): Promise<PartnerClient> {
  return new PartnerClient({ url: url(o), token: await token(o), key: await ownKey(o), gateway: await pinned(o), progress: err });
}

function outDir(o: { out?: string }): string {
  return o.out ?? env.CORDON_OUT_DIR ?? './cordon-inbox';
}

// ---- partner ------------------------------------------------------------------------------------

export async function partnerPull(o: ConnectionFlags & { out?: string; retryRefused?: boolean }): Promise<void> {
  const client = await partnerClient(o);
  const dir = outDir(o);
  const s = await client.pull(dir, { retryRefused: o.retryRefused === true });
  for (const r of s.refused) out(`refused ${r.id}: ${r.reason}`);
  for (const r of s.removed) out(`removed ${r.id}: ${r.why === 'expired' ? 'expired' : `recalled by notice ${r.notice}`}`);
  for (const id of s.written) out(`wrote ${path.join(dir, `${id}.json`)}`);
  const status = s.stopped ? 'partial' : s.refused.length > 0 ? 'refused' : 'ok';
  out(
    `${status === 'ok' ? 'ok' : status.toUpperCase()}: ${s.written.length} written, ${s.acknowledged.length} acknowledged, ${s.refused.length} refused, ` +
      `${s.removed.length} removed, ${s.gone.length} gone${s.refusedEarlier ? `, ${s.refusedEarlier} refused earlier (--retry-refused to try again)` : ''}${s.stopped ? `; stopped: ${s.stopped} (run again to resume)` : ''}`,
  );
  process.exitCode = EXIT_CODES[status];
}

export async function partnerReport(o: ConnectionFlags & { file: string; packet?: string; format?: string }): Promise<void> {
  if (o.format !== undefined && o.format !== 'csv' && o.format !== 'json') throw new ClientError('config', `--format ${JSON.stringify(o.format)}: use csv or json`);
  const text = await readFile(o.file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new ClientError('config', `hits file ${o.file}: ${e.code ?? e.message}`);
  });
  // Checked whole before anything is sent: one bad row sends nothing.
  const batches = readHitsFile(text, { name: o.file, ...(o.packet ? { packet: o.packet } : {}), ...(o.format ? { format: o.format as 'csv' | 'json' } : {}) });
  const client = await partnerClient(o);
  let accepted = 0;
  let duplicates = 0;
  let sent = 0;
  for (const b of batches) {
    try {
      const r = await client.report(b.submission);
      err(`${b.submission.packet}: ${r.received} received, ${r.accepted} accepted, ${r.duplicates} duplicates`);
      accepted += r.accepted;
      duplicates += r.duplicates;
      sent++;
    } catch (e) {
      if (e instanceof ClientError && sent > 0) throw new ClientError('partial', `${sent} of ${batches.length} packets' hits sent, then ${b.submission.packet}: ${e.message}`, e.gateway);
      throw e;
    }
  }
  out(`ok: ${batches.reduce((n, b) => n + b.submission.hits.length, 0)} hits on ${batches.length} packet${batches.length === 1 ? '' : 's'} signed and sent: ${accepted} accepted, ${duplicates} duplicates`);
}

export async function partnerAnswer(o: ConnectionFlags & { packet: string; hit?: string[]; none?: string[]; withdraw?: string[]; rest?: string; out?: string }): Promise<void> {
  const results: AnswerResult[] = [
    ...(o.hit ?? []).map((subject) => ({ subject, result: 'hit' as const })),
    ...(o.none ?? []).map((subject) => ({ subject, result: 'no_trace' as const })),
    ...(o.withdraw ?? []).map((subject) => ({ subject, result: 'withdrawn' as const })),
  ];
  const named = new Set(results.map((r) => r.subject));
  if (named.size !== results.length) throw new ClientError('config', 'a subject ref is named twice');
  if (o.rest !== undefined) {
    if (o.rest !== 'no_trace' && o.rest !== 'hit') throw new ClientError('config', '--rest takes no_trace or hit');
    // Every other subject of the packet as pulled: the client knows the refs from the file it wrote.
    const dir = await OutDir.open(outDir(o));
    const file = await dir.read(o.packet);
    if (!file) throw new ClientError('config', `--rest needs the packet's file: ${dir.file(o.packet)} does not exist (cordon partner pull first)`);
    for (const ref of packetRefs(file)) if (!named.has(ref)) results.push({ subject: ref, result: o.rest });
  }
  const client = await partnerClient(o);
  const r = await client.answer(o.packet, results);
  const count = (x: AnswerResult['result']) => results.filter((a) => a.result === x).length;
  out(`ok: ${o.packet}: ${count('hit')} hit, ${count('no_trace')} no trace${count('withdrawn') ? `, ${count('withdrawn')} withdrawn` : ''} signed and sent: ${r.accepted} accepted, ${r.duplicates} duplicates`);
}

// ---- force --------------------------------------------------------------------------------------

export async function forceStatus(id: string, o: ConnectionFlags & { json?: boolean }): Promise<void> {
  const client = new ForceClient({ url: url(o), token: await token(o) });
  const s = await client.status(id);
  out(o.json ? JSON.stringify(s, null, 2) : statusText({ ...s, id: s.id ?? id }));
}

export async function forceHits(id: string, o: ConnectionFlags & { json?: boolean }): Promise<void> {
  const client = new ForceClient({ url: url(o), token: await token(o), key: await ownKey(o), gateway: await pinned(o) });
  const b = await client.hits(id);
  out(o.json ? JSON.stringify(b, null, 2) : bundleText(b));
}

export async function forceApprove(id: string, o: ConnectionFlags & { partner: string; officer: string; officerId: string; subject?: string[] }): Promise<void> {
  const client = new ForceClient({ url: url(o), token: await token(o) });
  const r = await client.approve(id, { partner: o.partner, officer: { name: o.officer, id: o.officerId }, ...(o.subject?.length ? { subjects: o.subject } : {}) });
  out(`ok: ${r.partner}: follow-up approved by ${r.officer.name} (${r.officer.id}) for ${r.approved.join(', ') || 'no subject'}`);
}
