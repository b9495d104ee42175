import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatPair } from './compare.js';
import { formatEncryptTable } from './encrypt-report.js';
import { formatLargeRss, runLarge, type LargeResult } from './large.js';
import { HELP, parseOptions } from './options.js';
import { freePort } from './proc.js';
import { formatTable, summarize } from './report.js';
import { runRounds, warmUp, type Matrix } from './rounds.js';
import type { Setup } from './setup.js';
import { startSetups } from './setups.js';
import { startSink, type Sink } from './sink.js';

/**
 * npm run bench: Postern next to the same load sent straight to the sink (the rig's
 * ceiling), through a loopback Postfix relay, and through Postern's own variants
 * (journaling off, two instances on Redis, OpenPGP and S/MIME), in interleaved rounds
 * of one command, because these machines are noisy and only ratios measured together
 * mean anything. Figures only: nothing here passes or fails on a number.
 */
async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2), process.env);
  if (opts === 'help') {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  const base = mkdtempSync(join(tmpdir(), 'postern-bench-'));
  const running: Setup[] = [];
  let sink: Sink | undefined;
  // One cleanup, however many ask: after ^C the interrupted run fails too and reaches
  // `finally`, and the process must not exit before every setup has been stopped.
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      for (const r of running.splice(0)) await r.stop().catch(() => undefined);
      await sink?.stop().catch(() => undefined);
      rmSync(base, { recursive: true, force: true });
    })());
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
  try {
    sink = await startSink(await freePort());
    const setups = await startSetups(opts, base, sink, running, log);
    const names = [...new Set([...setups.main, ...setups.encrypt].map((s) => s.name))];
    log(`machine: ${cpus().length} CPUs; sink: ${sink.kind}; setups: ${names.join(', ')}${setups.skipped.map((s) => `\nskipped ${s}`).join('')}`);

    const matrices: Matrix[] = [{ label: 'main', setups: setups.main, sizes: opts.sizes, modes: opts.modes, messages: (size) => (size > 50_000 ? Math.max(1, Math.round((opts.messages * 2) / 5)) : opts.messages) }];
    if (setups.encrypt.length) matrices.push({ label: 'encrypt', setups: setups.encrypt, sizes: [opts.encryptSize], modes: opts.encryptModes, messages: () => opts.encryptMessages });
    const spec = { matrices, all: running, sink, sessions: opts.sessions, log };
    await warmUp(spec, opts.warmup);
    const runs = await runRounds(spec, opts.rounds);
    for (const r of running.splice(0)) await r.stop();

    let large: LargeResult | undefined;
    if (opts.large) large = await runLarge(join(base, 'large'), sink, opts.workers, opts.largeMessages);

    const rows = summarize(runs.filter((r) => r.matrix === 'main'));
    const encryptRows = summarize(runs.filter((r) => r.matrix === 'encrypt'));
    const out: string[] = [`\nMedians of ${opts.rounds} interleaved round(s), ${opts.sessions} sessions, Postern with its fsync'd spool (workers: ${opts.workers}; postern-redis-x2: 2 instances × workers 1):\n\n${formatTable(rows)}\n`];
    out.push(setups.skipped.map((s) => `Skipped ${s}\n`).join(''));
    out.push(formatPair(rows, 'Journaling on ÷ off', 'postern', 'postern-nojournal'));
    out.push(formatPair(rows, 'Two instances on Redis ÷ one on the fs spool', 'postern-redis-x2', 'postern'));
    out.push(formatEncryptTable(encryptRows));
    if (large) {
      out.push(
        `${large.messages} × ${(large.size / 1024 / 1024).toFixed(0)} MB messages at once through Postern: ${large.seconds.toFixed(1)} s end to end, ` +
          `${formatLargeRss(large)}\n`,
      );
    }
    process.stdout.write(out.filter(Boolean).join('\n'));
    const file = opts.out ?? join(tmpdir(), `postern-bench-${Date.now()}.json`);
    writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), cpus: cpus().length, options: opts, skipped: setups.skipped, rows, encryptRows, runs, large }, null, 2));
    process.stdout.write(`\nJSON results: ${file}\n`);
  } finally {
    await cleanup();
  }
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
