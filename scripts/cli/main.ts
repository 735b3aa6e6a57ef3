/** `cordon`: governance and operator commands. Every subcommand takes --policies DIR. */
import { Command } from 'commander';
import path from 'node:path';
import { GatewayError } from '../../gateway/errors/index.js';
import { auditExport, auditVerify } from './audit.js';
import { clientsAdd, clientsRotate } from './clients.js';
import { demo } from './demo.js';
import { keysImport, keysList } from './keys.js';
import { policyDiff, policyLint, policyPreview, policyTest } from './policy.js';
import { policySign } from './policy-sign.js';
import { policyIsa } from './isa.js';
import { forceApprove, forceHits, forceStatus, partnerAnswer, partnerPull, partnerReport, type ConnectionFlags } from './partner.js';
import { ClientError, EXIT_CODES } from '../../gateway/client/http.js';

const policiesDefault = process.env.CORDON_POLICY_DIR || './policies';
const clientsDefault = () => process.env.CORDON_CLIENTS || path.join(policiesDefault, 'clients.sample.yaml');

const program = new Command('cordon').description('Cordon gateway: policies, keys, clients, audit and demo').showHelpAfterError();

const policy = program.command('policy').description('lint, test, preview, diff and sign the policy set');
policy
  .command('lint')
  .description('schema and semantic checks with file:line locations; non-zero exit on errors (warnings do not fail)')
  .option('--policies <dir>', 'policy directory', policiesDefault)
  .option('--now <date>', 'check agreements and keys as at this date (YYYY-MM-DD or ISO date-time)')
  .option('--signers <file>', 'governance public keys to verify the signatures with (default CORDON_POLICY_SIGNERS)')
  .option('--quorum <n>', 'signatures required (default CORDON_POLICY_QUORUM, else 1)')
  .option('--json', 'machine-readable findings')
  .action(async (o: { policies: string; now?: string; signers?: string; quorum?: string; json?: boolean }) => policyLint(o));
policy
  .command('test')
  .description('run the policy tests in <policies>/tests with a coverage figure per partner; non-zero exit on any failure')
  .option('--policies <dir>', 'policy directory', policiesDefault)
  .option('--json', 'machine-readable results')
  .action(async (o: { policies: string; json?: boolean }) => policyTest(o));
policy
  .command('preview')
  .description('what a partner would receive of a dossier, with the decision trace (rule → operation → path)')
  .requiredOption('--dossier <file>', 'dossier JSON')
  .requiredOption('--partner <id>', 'partner id')
  .option('--policies <dir>', 'policy directory', policiesDefault)
  .option('--now <date>', 'decide as at this date (default now)')
  .option('--json', 'the JSON POST /v1/preview answers')
  .action(async (o: { policies: string; dossier: string; partner: string; now?: string; json?: boolean }) => policyPreview(o));
policy
  .command('diff')
  .description('which paths each partner gains or loses between two policy sets, on the example dossiers')
  .option('--from <dir>', 'the old policy directory')
  .option('--from-rev <gitrev>', 'the old policy directory as committed at a git revision (e.g. HEAD, main~3)')
  .option('--to <dir>', 'the new policy directory (default: --policies)')
  .option('--dossier <file>', 'a dossier to compare on (repeatable; default the two example dossiers)', (v: string, prev: string[] = []) => [...prev, v])
  .option('--policies <dir>', 'policy directory', policiesDefault)
  .option('--now <date>', 'decide as at this date (default now)')
  .option('--signers <file>', 'governance public keys to verify both sides\' signatures with (default CORDON_POLICY_SIGNERS)')
  .option('--quorum <n>', 'signatures required (default CORDON_POLICY_QUORUM, else 1)')
  .option('--json', 'machine-readable diff')
  .action(async (o: { policies: string; from?: string; fromRev?: string; to?: string; dossier?: string[]; now?: string; signers?: string; quorum?: string; json?: boolean }) => policyDiff(o));
policy
  .command('isa')
  .description('the information-sharing agreement with a partner, rendered from the policy set (Markdown or HTML)')
  .requiredOption('--partner <id>', 'partner id')
  .option('--format <format>', 'md | html', 'md')
  .option('--policies <dir>', 'policy directory', policiesDefault)
  .option('--now <date>', 'state the agreement\'s status as at this date (default now)')
  .option('--gateway-key <file>', "the gateway's public key (GET /v1/keys/gateway), to list its fingerprint")
  .action(async (o: { policies: string; partner: string; format?: string; now?: string; gatewayKey?: string }) => policyIsa(o));
policy
  .command('sign')
  .description('sign the revision of the policy set (a manifest of its files and a growing sequence number) with a governance key')
  .requiredOption('--key <file>', 'the governance signer\'s OpenPGP secret key (armored)')
  .option('--passphrase-file <file>', 'the passphrase of a protected secret key')
  .option('--sequence <n>', 'the sequence number of a new manifest (default: one above the highest signed here)')
  .option('--policies <dir>', 'policy directory', policiesDefault)
  .action(async (o: { policies: string; key: string; passphraseFile?: string; sequence?: string }) => policySign(o));

const keys = program.command('keys').description('partner, source and peer public keys');
keys
  .command('import')
  .description('copy a public key into the policy directory and pin its fingerprint')
  .option('--partner <id>')
  .option('--source <id>')
  .option('--peer <id>')
  .requiredOption('--file <key.asc>', 'armored public key')
  .option('--policies <dir>', 'policy directory', policiesDefault)
  .action(async (o: { partner?: string; source?: string; peer?: string; file: string; policies: string }) => keysImport(o));
keys
  .command('list')
  .description('every configured key with its pinned fingerprint and state')
  .option('--policies <dir>', 'policy directory', policiesDefault)
  .action(async (o: { policies: string }) => keysList(o.policies));

const clients = program.command('clients').description('API credentials');
clients
  .command('add')
  .description('create a client; prints its token (only the token) and stores only its hash')
  .requiredOption('--id <id>')
  .requiredOption('--role <role>', 'source | partner | governance | peer')
  .option('--partner <id>')
  .option('--source <id>')
  .option('--peer <id>')
  .option('--clients <file>', 'credentials file')
  .option('--policies <dir>', 'policy directory', policiesDefault)
  .action(async (o: { id: string; role: string; partner?: string; source?: string; peer?: string; clients?: string; policies: string }) =>
    clientsAdd({ ...o, clients: o.clients ?? clientsDefault() }),
  );
clients
  .command('rotate')
  .description("add a second token for a client (prints it, only it); the old one works until --finish")
  .requiredOption('--id <id>')
  .option('--finish', 'drop the older token once the client uses the new one')
  .option('--clients <file>', 'credentials file')
  .option('--policies <dir>', 'policy directory', policiesDefault)
  .action(async (o: { id: string; finish?: boolean; clients?: string }) => clientsRotate({ ...o, clients: o.clients ?? clientsDefault() }));

program
  .command('demo')
  .description('push the example dossier to a running gateway and show what each partner received')
  .option('--url <url>', 'gateway base URL', `http://127.0.0.1:${process.env.PORT || 8080}`)
  .option('--policies <dir>', 'policy directory', policiesDefault)
  .action(async (o: { url: string; policies: string }) => demo(o));

/** The connection flags of the partner and force clients; each falls back to an environment variable (docs/partners.md). */
function connection(cmd: Command, own: boolean): Command {
  cmd
    .option('--url <url>', 'the gateway base URL (CORDON_GATEWAY_URL; default http://127.0.0.1:8080)')
    .option('--token-file <file>', 'a file holding the bearer token (CORDON_TOKEN_FILE, or the token itself in CORDON_TOKEN)');
  if (own) {
    cmd
      .option('--key <file>', 'your armored OpenPGP secret key (CORDON_KEY_FILE)')
      .option('--gnupg-home <dir>', 'or a GnuPG home holding it (CORDON_GNUPG_HOME), with --key-id')
      .option('--key-id <fingerprint>', 'the key in the GnuPG home (CORDON_KEY_ID)')
      .option('--passphrase-file <file>', 'the passphrase of a protected key (CORDON_PASSPHRASE_FILE)')
      .option('--gateway-key <file>', "the gateway's pinned public key, saved from GET /v1/keys/gateway (CORDON_GATEWAY_KEY)")
      .option('--gateway-fingerprint <fpr>', 'refuse a --gateway-key file that is not this key (CORDON_GATEWAY_FINGERPRINT)');
  }
  return cmd;
}
const collect = (v: string, prev: string[] = []) => [...prev, v];

const partner = program.command('partner').description("a partner agency's client: pull the mailbox, report hits, answer hit or no trace");
connection(partner.command('pull'), true)
  .description('drain the mailbox: decrypt, verify against the pinned gateway key only, write each packet (0600), acknowledge what was written; remove expired and recalled packets')
  .option('--out <dir>', 'where packets are written (CORDON_OUT_DIR; default ./cordon-inbox)')
  .option('--retry-refused', 'fetch again packets an earlier run refused')
  .action(async (o: ConnectionFlags & { out?: string; retryRefused?: boolean }) => partnerPull(o));
connection(partner.command('report'), true)
  .description('check a hits file (CSV or JSON) against the hits schema, sign it with your key and post it')
  .requiredOption('--file <file>', 'hits file: .csv (header in docs/partners.md) or JSON')
  .option('--packet <id>', 'the packet, when the file does not name it')
  .option('--format <format>', 'csv | json (default: from the file name)')
  .action(async (o: ConnectionFlags & { file: string; packet?: string; format?: string }) => partnerReport(o));
connection(partner.command('answer'), true)
  .description('answer hit or no trace per subject ref of a packet or match request (signed)')
  .requiredOption('--packet <id>', 'the packet or match request')
  .option('--hit <ref>', 'a subject ref answered hit (repeatable)', collect)
  .option('--none <ref>', 'a subject ref answered no trace: nothing found (repeatable)', collect)
  .option('--withdraw <ref>', 'take back the answer and hits on a subject ref (repeatable)', collect)
  .option('--rest <answer>', "answer every other subject of the pulled packet (no_trace or hit); needs the packet's file in --out")
  .option('--out <dir>', 'where pull wrote the packet (CORDON_OUT_DIR; default ./cordon-inbox)')
  .action(async (o: ConnectionFlags & { packet: string; hit?: string[]; none?: string[]; withdraw?: string[]; rest?: string; out?: string }) => partnerAnswer(o));

const force = program.command('force').description("a force's client: a dossier's status, its hits, approving follow-ups");
connection(force.command('status').argument('<id>', 'dossier id'), false)
  .description('the deliveries of a dossier and the partners\' answers per subject')
  .option('--json', 'the JSON the gateway answers')
  .action(async (id: string, o: ConnectionFlags & { json?: boolean }) => forceStatus(id, o));
connection(force.command('hits').argument('<id>', 'dossier id'), true)
  .description("the hits bundle, decrypted with the force's key and verified against the pinned gateway key: a table per subject")
  .option('--json', 'the decrypted bundle as JSON')
  .action(async (id: string, o: ConnectionFlags & { json?: boolean }) => forceHits(id, o));
connection(force.command('approve').argument('<id>', 'dossier id'), false)
  .description('approve the follow-up disclosure to a partner for the subjects it answered hit (followUp: approval)')
  .requiredOption('--partner <id>', 'the partner whose follow-up waits')
  .requiredOption('--officer <name>', 'the approving officer\'s name')
  .requiredOption('--officer-id <id>', 'the approving officer\'s collar or warrant number')
  .option('--subject <id>', 'only this subject (the dossier\'s own id; repeatable; default every hit awaiting approval)', collect)
  .action(async (id: string, o: ConnectionFlags & { partner: string; officer: string; officerId: string; subject?: string[] }) => forceApprove(id, o));

const prefixDefault = process.env.CORDON_REDIS_PREFIX || 'cordon';
const audit = program.command('audit').description('prove the audit trail intact; export it as JSON Lines');
audit
  .command('verify')
  .description('recompute the hash chain and check the signed checkpoints; names the first bad record, exit 1 if any')
  .option('--file <audit.jsonl>', 'an export (offline)')
  .option('--redis <url>', 'the live log in this Redis (default REDIS_URL when --file is not given)')
  .option('--prefix <prefix>', 'the gateway\'s Redis key prefix (also names its anchor in --state)', prefixDefault)
  .option('--state <dir>', 'the gateway state directory: its key and the anchor of the latest checkpoint')
  .option('--key <file>', 'the gateway public key (GET /v1/keys/gateway), when the state directory is not at hand')
  .option('--max-unsigned <n>', 'longest run of records without a checkpoint to accept (default: twice the interval)')
  .option('--policies <dir>', 'policy directory (unused)', policiesDefault)
  .action(async (o: { file?: string; redis?: string; prefix: string; state?: string; key?: string; maxUnsigned?: string }) =>
    auditVerify({ ...o, redis: o.redis ?? (o.file ? undefined : process.env.REDIS_URL) }),
  );
audit
  .command('export')
  .description('write the audit records (as stored, one per line) recorded between --since and --until')
  .option('--redis <url>', 'the gateway\'s Redis', process.env.REDIS_URL)
  .option('--prefix <prefix>', 'the gateway\'s Redis key prefix', prefixDefault)
  .option('--since <time>', 'RFC 3339 date-time or date (inclusive)')
  .option('--until <time>', 'RFC 3339 date-time or date (inclusive)')
  .option('--out <file>', 'write here (mode 0600) instead of stdout')
  .option('--policies <dir>', 'policy directory (unused)', policiesDefault)
  .action(async (o: { redis?: string; prefix: string; since?: string; until?: string; out?: string }) => auditExport(o));

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ClientError) {
    // The clients' exit codes tell a scheduler what to do (docs/partners.md).
    process.stderr.write(`cordon: ${err.message}\n`);
    for (const d of err.gateway?.details ?? []) process.stderr.write(`  ${d.path ? d.path + ': ' : ''}${d.message}\n`);
    process.exit(EXIT_CODES[err.kind]);
  }
  if (err instanceof GatewayError) {
    process.stderr.write(`cordon: ${err.message}\n`);
    for (const d of err.details ?? []) process.stderr.write(`  ${d.path ? d.path + ': ' : ''}${d.message}\n`);
  } else {
    process.stderr.write(`cordon: ${(err as Error).message}\n`);
  }
  process.exit(1);
});
