import { Command } from 'commander';
import { checkConfigCommand } from './check-config.js';
import { startCommand } from './start.js';
import { hashPasswordCommand } from './hash-password.js';
import { policyCheckCommand, policyExplainCommand } from './policy.js';
import { portalListCommand, portalRevokeCommand, portalRotateCommand } from './portal.js';
import { registerArchiveCommands } from './archive.js';

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
    .description('validate a config file and print what it resolves to')
    .option('-c, --config <file>', 'config file (default: $POSTERN_CONFIG or config/postern.yaml)')
    .action((opts: { config?: string }) => checkConfigCommand(opts.config));

  program
    .command('hash-password')
    .description('read a password on stdin and print the scrypt hash for smtp.auth.users[].passwordHash')
    .action(() => hashPasswordCommand());

  const policy = program.command('policy').description('per-recipient policy: explain decisions, check a policy file');
  policy
    .command('explain')
    .description("print each recipient's decision, the rule that chose it and why, without sending anything")
    .requiredOption('--from <address>', 'envelope sender')
    .requiredOption('--to <address...>', 'recipient(s)')
    .option('--subject <text>', 'subject (overrides the one in --file)')
    .option('--file <message.eml>', 'a message to inspect (detectors, headers, subject)')
    .option('--policy <file>', 'policy file (default: the one the config names, or config/policy.yaml)')
    .option('-c, --config <file>', 'config file')
    .option('--json', 'machine-readable output')
    .action((opts: { from: string; to: string[]; subject?: string; file?: string; policy?: string; config?: string; json?: boolean }) => policyExplainCommand(opts));
  policy
    .command('check [file]')
    .description('validate a policy file')
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

  await program.parseAsync(argv);
}
