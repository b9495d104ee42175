import { Command } from 'commander';
import { checkConfigCommand } from './check-config.js';
import { startCommand } from './start.js';
import { hashPasswordCommand } from './hash-password.js';
import { hashApiKeyCommand } from './hash-api-key.js';
import { policyCheckCommand, policyExplainCommand } from './policy.js';
import { portalListCommand, portalRevokeCommand, portalRotateCommand } from './portal.js';
import { keysImportCommand, keysListCommand, keysRemoveCommand, keysShowCommand } from './keys.js';
import { dkimKeygenCommand } from './dkim.js';
import { registerArchiveCommands } from './archive.js';
import { registerAuditCommands } from './audit.js';
import { registerTraceCommand } from './trace.js';

export async function runCli(argv: string[]): Promise<void> {
  const program = new Command()
    .name('postern')
    .description('Postern secure email gateway')
    .showHelpAfterError();

  program
    .command('start')
    .description('run the gateway')
    .option('-c, --config <file>', 'config file (default: $POSTERN_CONFIG or config/postern.yaml)')
    .action((opts: { config?: string }) => startCommand(opts.config));

  program
    .command('check-config')
    .description('validate a config file (and the policy it names) and print what it resolves to')
    .option('-c, --config <file>', 'config file (default: $POSTERN_CONFIG or config/postern.yaml)')
    .action((opts: { config?: string }) => checkConfigCommand(opts.config));

  program
    .command('hash-password')
    .description('read a password on stdin and print the scrypt hash for smtp.auth.users[].passwordHash (and admin.users[].passwordHash)')
    .action(() => hashPasswordCommand());

  program
    .command('hash-api-key')
    .description('read an API key on stdin (or make one with --generate) and print the scrypt hash for admin.apiKeys[].hash')
    .option('--generate', 'make a new random key and print it with its hash')
    .action((opts: { generate?: boolean }) => hashApiKeyCommand(opts));

  const policy = program.command('policy').description('per-recipient policy: explain decisions, check a policy file');
  policy
    .command('explain')
    .description("print each recipient's decision, the rule that chose it and why, without sending anything")
    .requiredOption('--from <address>', 'envelope sender')
    .requiredOption('--to <address...>', 'recipient(s)')
    .option('--subject <text>', "subject (replaces the --file message's Subject before it is inspected)")
    .option('--file <message.eml>', 'a message to inspect (detectors, headers, subject)')
    .option('--policy <file>', "policy file (default: the config's policy: its file, its inline section, or config/policy.yaml)")
    .option('-c, --config <file>', 'config file')
    .option('--json', 'machine-readable output')
    .action((opts: { from: string; to: string[]; subject?: string; file?: string; policy?: string; config?: string; json?: boolean }) => policyExplainCommand(opts));
  policy
    .command('check [file]')
    .description("validate a policy file (default: the config's policy, file or inline)")
    .option('-c, --config <file>', 'config file')
    .action((file: string | undefined, opts: { config?: string }) => policyCheckCommand(file, opts.config));

  const portal = program.command('portal').description('the secure portal: withdraw messages, list them, rotate the master key');
  portal
    .command('revoke <id>')
    .description('withdraw a portal message: recipients see "withdrawn by the sender"')
    .option('-c, --config <file>', 'config file')
    .option('--by <name>', 'who withdrew it (recorded)')
    .action((id: string, opts: { config?: string; by?: string }) => portalRevokeCommand(id, opts));
  portal
    .command('list')
    .description('list portal messages (no content)')
    .option('-c, --config <file>', 'config file')
    .action((opts: { config?: string }) => portalListCommand(opts));
  portal
    .command('rotate-key')
    .description('re-wrap every message key with the first configured master key')
    .option('-c, --config <file>', 'config file')
    .action((opts: { config?: string }) => portalRotateCommand(opts));

  registerArchiveCommands(program);
  registerAuditCommands(program);
  registerTraceCommand(program);

  const keys = program.command('keys').description("recipients' OpenPGP keys and S/MIME certificates");
  keys
    .command('import <file>')
    .description('store the armored OpenPGP keys and PEM certificates in FILE (unusable ones are refused, with the reason)')
    .option('--address <address>', 'serve only this address (it must be in the key or certificate)')
    .option('--domain <domain>', 'serve every address of this domain (gateway-to-gateway key)')
    .option('-c, --config <file>', 'config file')
    .action((file: string, opts: { config?: string; address?: string; domain?: string }) => keysImportCommand(file, opts));
  keys
    .command('list')
    .description('list stored keys: addresses, source, expiry, and whether each is usable')
    .option('-c, --config <file>', 'config file')
    .option('--json', 'machine-readable output')
    .action((opts: { config?: string; json?: boolean }) => keysListCommand(opts));
  keys
    .command('show <address>')
    .description('the keys stored for an address or its domain, and which one is used')
    .option('--discover', 'also ask WKD and the keyserver, as delivery would')
    .option('-c, --config <file>', 'config file')
    .action((address: string, opts: { config?: string; discover?: boolean }) => keysShowCommand(address, opts));
  keys
    .command('remove <id>')
    .description('remove a stored key by id (pgp:FPR, smime:FPR) or fingerprint')
    .option('-c, --config <file>', 'config file')
    .action((id: string, opts: { config?: string }) => keysRemoveCommand(id, opts));

  const dkim = program.command('dkim').description('DKIM signing keys');
  dkim
    .command('keygen')
    .description('make a signing key; print the DNS TXT record to publish and the config entry')
    .requiredOption('--domain <domain>', 'signing domain (d=)')
    .requiredOption('--selector <selector>', 'selector (s=)')
    .option('--algorithm <algorithm>', 'rsa-sha256 (2048-bit RSA) or ed25519-sha256', 'rsa-sha256')
    .option('--out <file>', 'where to write the private key (default dkim-<domain>-<selector>.pem)')
    .action((opts: { domain: string; selector: string; algorithm?: string; out?: string }) => dkimKeygenCommand(opts));

  await program.parseAsync(argv);
}
