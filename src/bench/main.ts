import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { runLarge, type LargeResult } from './large.js';
import { measure, type RunResult } from './measure.js';
import { HELP, parseOptions } from './options.js';
import { postfixAvailable, startPostfixRelay, type Relay } from './postfix.js';
import { startPostern } from './postern.js';
import { formatTable, summarize } from './report.js';
import { startSink, type Sink } from './sink.js';

/**
 * npm run bench: Postern next to the same load sent straight to the sink (the rig's
 * ceiling) and through a loopback Postfix relay, in interleaved rounds of one command,
 * because these machines are noisy and only ratios measured together mean anything.
 */
async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2), process.env);
  if (opts === 'help') {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  const base = mkdtempSync(join(tmpdir(), 'postern-bench-'));
  const relays: Relay[] = [];
  let sink: Sink | undefined;
  const cleanup = async () => {
    for (const r of relays.splice(0)) await r.stop().catch(() => undefined);
    await sink?.stop().catch(() => undefined);
    rmSync(base, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
  try {
    sink = await startSink(await freePort());
    relays.push(await startPostern(join(base, 'postern'), await freePort(), sink.port, opts.workers));
    const withPostfix = opts.postfix && postfixAvailable();
    if (withPostfix) relays.push(await startPostfixRelay(join(base, 'postfix'), await freePort(), sink.port));
    const setups = [{ name: 'direct', port: sink.port, pgid: undefined as number | undefined }, ...relays.map((r) => ({ name: r.name, port: r.port, pgid: r.pgid }))];
    log(`machine: ${cpus().length} CPUs; sink: ${sink.kind}; setups: ${setups.map((s) => s.name).join(', ')}${withPostfix ? '' : ' (Postfix not installed or not root: no Postfix comparison)'}`);

    // Every setup gets the same untimed warm-up, so the rounds compare steady states: a
    // gateway runs for months, and a cold Node process spends its first seconds compiling.
    if (opts.warmup > 0) {
      for (const s of setups.filter((x) => x.name !== 'direct')) {
        for (const size of opts.sizes) await measure({ setup: s.name, port: s.port, pgid: s.pgid, sink, size, mode: 'new', messages: opts.warmup, sessions: opts.sessions });
      }
      log(`warm-up: ${opts.warmup} untimed messages per setup and size`);
    }
    const runs: RunResult[] = [];
    for (let round = 1; round <= opts.rounds; round++) {
      // The order rotates each round so no setup always runs on a cooler machine.
      const order = setups.map((_, i) => setups[(i + round - 1) % setups.length]!);
      for (const size of opts.sizes) {
        const messages = size > 50_000 ? Math.max(1, Math.round((opts.messages * 2) / 5)) : opts.messages;
        for (const mode of opts.modes) {
          for (const s of order) {
            const r = await measure({ setup: s.name, port: s.port, pgid: s.pgid, sink, size, mode, messages, sessions: opts.sessions });
            runs.push(r);
            log(`round ${round}  ${String(size).padStart(6)} B  ${mode.padEnd(5)}  ${s.name.padEnd(7)}  ${r.msgsPerSec.toFixed(0).padStart(6)} msgs/s  CPU ${r.cpuMsPerMsg.toFixed(2)} ms/msg`);
          }
        }
      }
    }
    for (const r of relays.splice(0)) await r.stop();

    let large: LargeResult | undefined;
    if (opts.large) large = await runLarge(join(base, 'large'), sink, opts.workers, opts.largeMessages);

    const rows = summarize(runs);
    process.stdout.write(`\nMedians of ${opts.rounds} interleaved round(s), ${opts.sessions} sessions, Postern with its fsync'd spool (workers: ${opts.workers}):\n\n${formatTable(rows)}\n`);
    if (large) {
      process.stdout.write(
        `\n${large.messages} × ${(large.size / 1024 / 1024).toFixed(0)} MB messages at once through Postern: ${large.seconds.toFixed(1)} s end to end, ` +
          `peak RSS ${large.peakRssMbPerProcess.map((m) => m.toFixed(0)).join(' / ')} MB per process (target: under 300 MB)\n`,
      );
    }
    const out = opts.out ?? join(tmpdir(), `postern-bench-${Date.now()}.json`);
    writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), cpus: cpus().length, options: opts, rows, runs, large }, null, 2));
    process.stdout.write(`\nJSON results: ${out}\n`);
  } finally {
    await cleanup();
  }
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

main().catch((err: Error) => {
  process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
