/**
 * `cordon audit verify|export`: prove the audit trail has not been altered, and hand it to a regulator
 * or a SIEM as JSON Lines.
 *
 *   cordon audit verify --file audit.jsonl --key gateway.asc     an export, offline
 *   cordon audit verify --redis URL --prefix P --state DIR       the live log, against its head and anchor
 *   cordon audit export [--since T] [--until T] [--out FILE]     JSON Lines, one record per line, as stored
 *
 * verify exits 0 when intact, 1 naming the first bad record, 2 when it cannot run (bad options, no
 * key, Redis unreachable). Checkpoint signatures need the gateway's public key: `--key FILE` (from
 * `GET /v1/keys/gateway`) or `--state DIR` (the gateway's state directory, which also holds the anchor
 * of the latest record it wrote, so a log cut back past it is caught, and its audit key). Batch
 * signatures need the audit key: from `--state DIR`, or named by the export's own checkpoints.
 */
import { constants, createReadStream, createWriteStream } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { readAnchorFor, type Anchor } from '../../gateway/audit/checkpoint.js';
import { parseHead } from '../../gateway/audit/log.js';
import { parseAuditFilter, seqRange } from '../../gateway/audit/query.js';
import { ChainVerifier, type VerifyReport } from '../../gateway/audit/verify.js';
import { AUDIT_KEY_FILE, parseAuditSigningKey } from '../../gateway/crypto/audit-key.js';
import { GATEWAY_KEY_FILE } from '../../gateway/crypto/openpgp.js';
import { GatewayError } from '../../gateway/errors/index.js';
import { RedisAuditChain } from '../../gateway/store/audit.js';
import { connectRedis, Keys, whenReady, type Connection } from '../../gateway/store/redis.js';

const CHUNK = 1000;

export interface VerifyOptions {
  file?: string;
  redis?: string;
  prefix: string;
  state?: string;
  key?: string;
  maxUnsigned?: string;
}

export interface ExportOptions {
  redis?: string;
  prefix: string;
  since?: string;
  until?: string;
  out?: string;
}

class UsageError extends Error {}

/**
 * The keys to check against: the OpenPGP key (checkpoints) and, from a state directory, the anchor and
 * the audit key (batch signatures; an export names it in its checkpoints when only --key is given).
 */
async function gatewayKey(o: VerifyOptions): Promise<{ key: string; anchor?: Anchor; auditKey?: string }> {
  if (o.key) return { key: await readFile(o.key, 'utf8').catch(() => Promise.reject(new UsageError(`cannot read the key file ${o.key}`))) };
  if (o.state) {
    const key = await readFile(path.join(o.state, GATEWAY_KEY_FILE), 'utf8').catch(() =>
      Promise.reject(new UsageError(`${o.state} holds no ${GATEWAY_KEY_FILE}: is it the gateway's state directory?`)),
    );
    const auditKey = await readFile(path.join(o.state, AUDIT_KEY_FILE), 'utf8').then(
      (pem) => parseAuditSigningKey(pem).spki,
      () => undefined,
    );
    return { key, anchor: await readAnchorFor(o.state, o.prefix), ...(auditKey ? { auditKey } : {}) };
  }
  throw new UsageError('checkpoint signatures need the gateway key: give --state DIR (the gateway state directory) or --key FILE (from GET /v1/keys/gateway)');
}

async function open(url: string | undefined): Promise<Connection> {
  if (!url) throw new UsageError('give --redis URL (or set REDIS_URL)');
  const redis = connectRedis(url, { enableOfflineQueue: true });
  redis.on('error', () => undefined);
  try {
    await whenReady(redis, 5000);
  } catch (err) {
    redis.disconnect();
    throw new UsageError(`cannot reach Redis at ${url.replace(/\/\/[^@/]*@/, '//***@')}: ${(err as Error).message}`);
  }
  return redis;
}

export async function auditVerify(o: VerifyOptions): Promise<void> {
  try {
    if (!!o.file === !!o.redis) throw new UsageError('give exactly one of --file FILE (an export) or --redis URL (the live log)');
    const maxUnsigned = o.maxUnsigned === undefined ? undefined : Number(o.maxUnsigned);
    if (maxUnsigned !== undefined && !(Number.isInteger(maxUnsigned) && maxUnsigned > 0)) throw new UsageError('--max-unsigned must be a positive integer');
    const { key, anchor, auditKey } = await gatewayKey(o);
    const signing = { auditKey, requireSigned: anchor?.format === 2 };
    let report: VerifyReport;
    if (o.file) {
      const verifier = new ChainVerifier({ gatewayKey: key, anchor, anchorIsEnd: false, maxUnsigned, ...signing });
      await access(o.file, constants.R_OK).catch(() => Promise.reject(new UsageError(`cannot read ${o.file}`)));
      const lines = createInterface({ input: createReadStream(o.file, 'utf8'), crlfDelay: Infinity });
      let n = 0;
      for await (const line of lines) {
        n++;
        if (line.trim() === '') continue;
        await verifier.push(line, n);
        if (verifier.failed) break;
      }
      lines.close();
      report = verifier.finish();
    } else {
      const redis = await open(o.redis);
      try {
        const chain = new RedisAuditChain(redis, new Keys(o.prefix));
        const head = parseHead(await chain.head());
        const verifier = new ChainVerifier({ gatewayKey: key, head, anchor, anchorIsEnd: true, maxUnsigned, ...signing });
        const length = await chain.length();
        for (let start = 0; start < length && !verifier.failed; start += CHUNK) {
          const rows = await chain.range(start, start + CHUNK - 1);
          for (let i = 0; i < rows.length && !verifier.failed; i++) await verifier.push(rows[i]!, start + i + 1);
        }
        report = verifier.finish();
      } finally {
        redis.disconnect();
      }
    }
    print(report, o.file ? `line` : 'position');
    if (!report.ok) process.exitCode = 1;
  } catch (err) {
    if (err instanceof UsageError || err instanceof GatewayError) {
      process.stderr.write(`cordon audit verify: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw err;
  }
}

function print(r: VerifyReport, where: string): void {
  if (r.ok) {
    const range = r.records ? `seq ${r.firstSeq}–${r.lastSeq}` : 'empty';
    process.stdout.write(`audit trail intact: ${r.records} record(s), ${range}, ${r.checkpoints} signed checkpoint(s)`);
    process.stdout.write(r.lastCheckpointSeq ? `, the last at seq ${r.lastCheckpointSeq} by ${r.signer}\n` : '\n');
    if (r.records) process.stdout.write(`last hash ${r.lastHash}\n`);
  } else {
    const f = r.failure!;
    process.stderr.write(`audit trail BROKEN at ${f.seq !== undefined ? `record seq ${f.seq}` : 'a record'} (${where} ${f.line}): ${f.problem}\n`);
    if (r.records) process.stderr.write(`records before it verified: ${r.records} (seq ${r.firstSeq}–${r.lastSeq})\n`);
  }
  for (const w of r.warnings) process.stderr.write(`note: ${w}\n`);
}

export async function auditExport(o: ExportOptions): Promise<void> {
  try {
    const filter = parseAuditFilter({ ...(o.since !== undefined ? { since: o.since } : {}), ...(o.until !== undefined ? { until: o.until } : {}) });
    const redis = await open(o.redis);
    const file = o.out ? createWriteStream(o.out, { mode: 0o600 }) : undefined;
    const out: NodeJS.WritableStream = file ?? process.stdout;
    let written = 0;
    try {
      const chain = new RedisAuditChain(redis, new Keys(o.prefix));
      const head = parseHead(await chain.head());
      const { lo, hi } = await seqRange(chain, head.seq, filter.since, filter.until);
      for (let start = lo; start <= hi; start += CHUNK) {
        const rows = await chain.range(start - 1, Math.min(hi, start + CHUNK - 1) - 1);
        for (const row of rows) {
          if (!out.write(row + '\n')) await once(out, 'drain');
          written++;
        }
      }
    } finally {
      redis.disconnect();
      if (file) {
        await new Promise<void>((resolve, reject) => {
          file.once('error', reject);
          file.end(() => resolve());
        });
      }
    }
    process.stderr.write(`exported ${written} record(s)${o.out ? ` to ${o.out}` : ''}\n`);
  } catch (err) {
    if (err instanceof UsageError || err instanceof GatewayError) {
      const details = err instanceof GatewayError ? (err.details ?? []).map((d) => `\n  --${d.path}: ${d.message}`).join('') : '';
      process.stderr.write(`cordon audit export: ${err.message}${details}\n`);
      process.exitCode = 2;
      return;
    }
    throw err;
  }
}
