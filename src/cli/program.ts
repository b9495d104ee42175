import { Command } from 'commander';
import { registerArchiveCommands } from './archive-commands.js';

/**
 * The `postern` command line. Each command's code is imported when that command runs, not
 * before: `postern start` needs the whole gateway, `postern audit verify` a few files, and
 * loading everything for every command made each one take seconds to start.
 */
export async function runCli(argv: string[]): Promise<void> {
  const program = new Command()
    .name('postern')
    .description('Postern secure email gateway')
    .showHelpAfterError();

  program
    .command('start')
    .description('run the gateway')
    .option('-c, --config <file>', 'config file (default: $POSTERN_CONFIG or config/postern.yaml)')
    .action((opts: { config?: string }) => import('./start.js').then((m) => m.startCommand(opts.config)));

  program
    .command('check-config')
    .description('validate a config file (and the policy it names) and print what it resolves to')
    .option('-c, --config <file>', 'config file (default: $POSTERN_CONFIG or config/postern.yaml)')
    .action((opts: { config?: string }) => import('./check-config.js').then((m) => m.checkConfigCommand(opts.config)));

  program
    .command('hash-password')
    .description('read a password on stdin and print the scrypt hash for smtp.auth.users[].passwordHash (and admin.users[].passwordHash)')
    .action(() => import('./hash-password.js').then((m) => m.hashPasswordCommand()));

  program
    .command('hash-api-key')
    .description('read an API key on stdin (or make one with --generate) and print the scrypt hash for admin.apiKeys[].hash')
    .option('--generate', 'make a new random key and print it with its hash')
    .action((opts: { generate?: boolean }) => import('./hash-api-key.js').then((m) => m.hashApiKeyCommand(opts)));

  const policy = program.command('policy').description('per-recipient policy: explain decisions, check a policy file');
  policy
    .command('explain')
    .description("print each recipient's decision, the rule that chose it and why, without sending anything")
    .requiredOption('--from <address>', 'envelope sender')
    .requiredOption('--to <address...>', 'recipient(s)')
    .option('--subject <text>', "subject (replaces the --file message's Subject before it is inspected)")
    .option('--file <message.eml>', 'a message to inspect (detectors, headers, subject)')
    .option('--size <size>', "the message size size rules see (e.g. 30MB; default: the --file message's, else a few hundred bytes)")
    .option('--policy <file>', "policy file (default: the config's policy: its file, its inline section, or config/policy.yaml)")
    .option('-c, --config <file>', 'config file')
    .option('--json', 'machine-readable output')
    .action((opts: { from: string; to: string[]; subject?: string; file?: string; size?: string; policy?: string; config?: string; json?: boolean }) => import('./policy.js').then((m) => m.policyExplainCommand(opts)));
  policy
    .command('check [file]')
    .description("validate a policy file (default: the config's policy, file or inline)")
    .option('-c, --config <file>', 'config file')
    .action((file: string | undefined, opts: { config?: string }) => import('./policy.js').then((m) => m.policyCheckCommand(file, opts.config)));

  const portal = program.command('portal').description('the secure portal: withdraw messages, list them, rotate the master key');
  portal
    .command('revoke <id>')
    .description('withdraw a portal message: recipients see "withdrawn by the sender"')
    .option('-c, --config <file>', 'config file')
    .option('--by <name>', 'who withdrew it (recorded)')
    .action((id: string, opts: { config?: string; by?: string }) => import('./portal.js').then((m) => m.portalRevokeCommand(id, opts)));
  portal
    .command('list')
    .description('list portal messages (no content)')
    .option('-c, --config <file>', 'config file')
    .action((opts: { config?: string }) => import('./portal.js').then((m) => m.portalListCommand(opts)));
  portal
    .command('rotate-key')
    .description('re-wrap every message key with the first configured master key')
    .option('-c, --config <file>', 'config file')
    .action((opts: { config?: string }) => import('./portal.js').then((m) => m.portalRotateCommand(opts)));

  registerArchiveCommands(program);

  const audit = program.command('audit').description('the hash-chained audit trail under <dataDir>/audit');
  audit
    .command('verify')
    .description('check every chain; report the first altered, removed or damaged line (exit 1); exit 4 when there is no audit trail')
    .option('-c, --config <file>', 'config file (default: $POSTERN_CONFIG or config/postern.yaml)')
    .option('--json', 'machine-readable output')
    .action((opts: { config?: string; json?: boolean }) => import('./audit.js').then((m) => m.auditVerifyCommand(opts)));

  program
    .command('trace <query>')
    .description('the life of a message from the audit trail: by queue id, Message-ID, or sender/recipient address')
    .option('--since <when>', 'only records since a duration ago (2h, 3d) or an ISO 8601 time')
    .option('--json', 'machine-readable output (an array of reports)')
    .option('-c, --config <file>', 'config file (default: $POSTERN_CONFIG or config/postern.yaml)')
    .action((query: string, opts: { config?: string; since?: string; json?: boolean }) => import('./trace.js').then((m) => m.traceCommand(query, opts)));

  const keys = program.command('keys').description("recipients' OpenPGP keys and S/MIME certificates");
  keys
    .command('import <file>')
    .description('store the armored OpenPGP keys and PEM certificates in FILE (unusable ones are refused, with the reason)')
    .option('--address <address>', 'serve only this address (it must be in the key or certificate)')
    .option('--domain <domain>', 'serve every address of this domain (gateway-to-gateway key)')
    .option('-c, --config <file>', 'config file')
    .action((file: string, opts: { config?: string; address?: string; domain?: string }) => import('./keys.js').then((m) => m.keysImportCommand(file, opts)));
  keys
    .command('list')
    .description('list stored keys: addresses, source, expiry, and whether each is usable')
    .option('-c, --config <file>', 'config file')
    .option('--json', 'machine-readable output')
    .action((opts: { config?: string; json?: boolean }) => import('./keys.js').then((m) => m.keysListCommand(opts)));
  keys
    .command('show <address>')
    .description('the keys stored for an address or its domain, and which one is used')
    .option('--discover', 'also ask WKD and the keyserver, as delivery would')
    .option('-c, --config <file>', 'config file')
    .action((address: string, opts: { config?: string; discover?: boolean }) => import('./keys.js').then((m) => m.keysShowCommand(address, opts)));
  keys
    .command('remove <id>')
    .description('remove a stored key by id (pgp:FPR, smime:FPR) or fingerprint')
    .option('-c, --config <file>', 'config file')
    .action((id: string, opts: { config?: string }) => import('./keys.js').then((m) => m.keysRemoveCommand(id, opts)));

  const dkim = program.command('dkim').description('DKIM signing keys');
  dkim
    .command('keygen')
    .description('make a signing key; print the DNS TXT record to publish and the config entry')
    .requiredOption('--domain <domain>', 'signing domain (d=)')
    .requiredOption('--selector <selector>', 'selector (s=)')
    .option('--algorithm <algorithm>', 'rsa-sha256 (2048-bit RSA) or ed25519-sha256', 'rsa-sha256')
    .option('--out <file>', 'where to write the private key (default dkim-<domain>-<selector>.pem)')
    .action((opts: { domain: string; selector: string; algorithm?: string; out?: string }) => import('./dkim.js').then((m) => m.dkimKeygenCommand(opts)));

  await program.parseAsync(argv);
}
