#!/usr/bin/env node
/**
 * The `postern` command. libuv's thread pool runs every fsync, and its default of 4
 * threads caps how many transactions can be made durable at once. Its size is read when
 * the pool first starts; an ES module entry would start it while loading, so this entry
 * is CommonJS (loaded synchronously) and sets the size before importing the program.
 */
process.env.UV_THREADPOOL_SIZE ??= '16';
void import('./program.js').then(({ runCli }) => runCli(process.argv)).catch(exitWithError);

/**
 * An error no command handled: for a user of the command line, typically something to
 * fix on their side (a file that cannot be read, a directory given for a file, Redis not
 * reachable), so one line, not Node's stack trace; POSTERN_DEBUG=1 adds the stack, for a
 * bug report. Exit code 1, unless the command had set another one on purpose (2: an
 * invalid config). process.exit, not exitCode: what failed may hold the process open
 * (a Redis client that keeps reconnecting); stderr is written synchronously before it.
 */
function exitWithError(err: unknown): never {
  process.stderr.write(`postern: ${messageOf(err)}\n`);
  if (process.env.POSTERN_DEBUG === '1' && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  process.exit(Number(process.exitCode ?? 0) || 1);
}

/** The error's message on one line (an AggregateError's may be empty: its errors' then). */
function messageOf(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const parts = err.message || (err instanceof AggregateError ? err.errors.map(messageOf).join('; ') : '') || err.name;
  return parts.replace(/\s*\n\s*/g, ' ');
}
