/** `cordon`: governance and operator commands. Every subcommand takes --policies DIR. */
import { Command } from 'commander';
import path from 'node:path';
import { GatewayError } from '../../gateway/errors/index.js';
import { clientsAdd } from './clients.js';
import { demo } from './demo.js';
import { keysImport, keysList } from './keys.js';
import { policyLint } from './policy.js';

const policiesDefault = process.env.CORDON_POLICY_DIR || './policies';
const clientsDefault = () => process.env.CORDON_CLIENTS || path.join(policiesDefault, 'clients.sample.yaml');

const program = new Command('cordon').description('Cordon gateway: policies, keys, clients, audit and demo').showHelpAfterError();

const policy = program.command('policy').description('lint, test and preview the policy set');
policy
  .command('lint')
  .description('validate every policy file; non-zero exit on errors')
  .option('--policies <dir>', 'policy directory', policiesDefault)
  .action(async (o: { policies: string }) => policyLint(o.policies));

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

program
  .command('demo')
  .description('push the example dossier to a running gateway and show what each partner received')
  .option('--url <url>', 'gateway base URL', `http://127.0.0.1:${process.env.PORT || 8080}`)
  .option('--policies <dir>', 'policy directory', policiesDefault)
  .action(async (o: { url: string; policies: string }) => demo(o));

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof GatewayError) {
    process.stderr.write(`cordon: ${err.message}\n`);
    for (const d of err.details ?? []) process.stderr.write(`  ${d.path ? d.path + ': ' : ''}${d.message}\n`);
  } else {
    process.stderr.write(`cordon: ${(err as Error).message}\n`);
  }
  process.exit(1);
});
