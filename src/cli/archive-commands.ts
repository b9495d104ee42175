import type { Command } from 'commander';
import type { ConfigOption } from './archive-common.js';
import type { AccessOptions } from './archive-search.js';

/** The archive code (crypto, zip, mail parsing) is loaded only by the command that needs it. */
const impl = () => import('./archive.js');
const access = () => import('./archive-search.js');

const withFilters = (c: Command) =>
  c
    .option('--since <date>', 'received on or after (2026-01-31: from the start of that UTC day; or a date-time with Z or an offset)')
    .option('--until <date>', 'received on or before (2026-01-31: to the end of that UTC day; or a date-time with Z or an offset)')
    .option('--participant <address>', 'sender or any recipient ("*" wildcards, e.g. *@example.org)')
    .option('--sender <address>', 'envelope sender')
    .option('--recipient <address>', 'any envelope recipient')
    .option('--subject <text>', 'part of the subject (case-insensitive)')
    .option('--message-id <id>', 'Message-ID, with or without <>')
    .option('--keyword <text>', 'in the decrypted text (bounded by archive.searchLimits)')
    .option('-c, --config <file>', 'config file');

/** The `postern archive` command group; the code behind it loads only when one runs. */
export function registerArchiveCommands(program: Command): void {
  const archive = program.command('archive').description('the compliance archive: verify, search, export, legal holds, retention purge, key rotation');
  archive
    .command('verify')
    .description('walk the index hash chains and every item file; exit 1 naming the first break')
    .option('--quick', 'do not decrypt content (presence, identity and size only)')
    .option('--json', 'machine-readable output')
    .option('-c, --config <file>', 'config file')
    .action((opts: { config?: string; quick?: boolean; json?: boolean }) => impl().then((m) => m.archiveVerifyCommand(opts)));
  withFilters(archive.command('search').description('find archived messages by date, participants, subject, message-id, keyword; exit 4 when the result may be incomplete'))
    .option('--json', 'machine-readable output')
    .option('--allow-partial', 'exit 0 even when a keyword limit was reached or items could not be read')
    .action((opts: AccessOptions & { json?: boolean }) => access().then((m) => m.archiveSearchCommand(opts)));
  withFilters(archive.command('export').description('write the messages a search finds as an mbox (mboxrd, manifest in FILE.manifest.json) or a zip of .eml with SHA-256 manifest'))
    .requiredOption('--format <format>', 'mbox or zip')
    .requiredOption('--out <file>', 'file to write')
    .option('--allow-partial', 'export what an incomplete search found (marked INCOMPLETE) instead of refusing with exit 4')
    .option('--force', 'replace FILE (and an mbox manifest) when it exists; without it an existing file or symlink is refused')
    .action((opts: AccessOptions & { format: string; out: string; force?: boolean }) => access().then((m) => m.archiveExportCommand(opts)));
  const hold = archive.command('hold').description('legal holds: held items are never purged');
  hold
    .command('add')
    .description('hold items by custodian, date range and/or keyword (all given must match)')
    .requiredOption('--reason <text>', 'why (recorded)')
    .option('--by <name>', 'who (recorded; default $USER)')
    .option('--custodian <address>', 'sender or any recipient: a bare address, "*" wildcards as search --participant (*@example.org)')
    .option('--since <date>', 'received on or after (as search --since)')
    .option('--until <date>', 'received on or before (as search --until)')
    .option('--keyword <text>', 'in the decrypted text')
    .option('-c, --config <file>', 'config file')
    .action((opts: ConfigOption & { reason: string; by?: string; custodian?: string; since?: string; until?: string; keyword?: string }) => impl().then((m) => m.archiveHoldAddCommand(opts)));
  hold
    .command('list')
    .description('list active holds')
    .option('--all', 'released ones too')
    .option('-c, --config <file>', 'config file')
    .action((opts: ConfigOption & { all?: boolean }) => impl().then((m) => m.archiveHoldListCommand(opts)));
  hold
    .command('release <id>')
    .description('release a hold; its items follow their retention again')
    .requiredOption('--reason <text>', 'why (recorded)')
    .option('--by <name>', 'who (recorded; default $USER)')
    .option('-c, --config <file>', 'config file')
    .action((id: string, opts: ConfigOption & { reason: string; by?: string }) => impl().then((m) => m.archiveHoldReleaseCommand(id, opts)));
  archive
    .command('purge')
    .description('destroy (crypto-shred) items past their retention that no hold covers')
    .option('--dry-run', 'only list what would be destroyed')
    .option('-c, --config <file>', 'config file')
    .action((opts: ConfigOption & { dryRun?: boolean }) => impl().then((m) => m.archivePurgeCommand(opts)));
  archive
    .command('rotate-key')
    .description('re-wrap every item key with the first archive.masterKeys entry')
    .option('--by <name>', 'who (recorded; default $USER)')
    .option('-c, --config <file>', 'config file')
    .action((opts: ConfigOption & { by?: string }) => impl().then((m) => m.archiveRotateCommand(opts)));
}
