import { formatTrace } from '../events/trace-format.js';
import { parseSince, traceMessages } from '../events/trace.js';
import { dataDirOf } from './audit.js';

/** postern trace <queue-id | Message-ID | address>: exit 1 when nothing matches. */
export async function traceCommand(query: string, opts: { config?: string; since?: string; json?: boolean }): Promise<void> {
  let since: number | undefined;
  try {
    since = opts.since === undefined ? undefined : parseSince(opts.since);
  } catch (err) {
    process.stderr.write(`--since: ${(err as Error).message}\n`);
    process.exitCode = 1;
    return;
  }
  const dataDir = dataDirOf(opts.config);
  if (!dataDir) return;
  const reports = await traceMessages(dataDir, query, { since });
  if (opts.json) process.stdout.write(`${JSON.stringify(reports, null, 2)}\n`);
  else if (reports.length) process.stdout.write(formatTrace(reports));
  if (!reports.length) {
    process.stderr.write(`no message in the audit trail matches ${query}${opts.since ? ` since ${opts.since}` : ''}\n`);
    process.exitCode = 1;
  }
}
