import { machineBusySeconds, peakRssMb, reapedChildrenCpuSeconds } from './proc.js';
import { percentile, startProbe } from './probe.js';
import type { Sink } from './sink.js';
import { runLoad } from './source.js';

export interface RunResult {
  setup: string;
  size: number;
  mode: 'new' | 'reuse';
  messages: number;
  seconds: number;
  msgsPerSec: number;
  p50Ms?: number | undefined;
  p99Ms?: number | undefined;
  /** Machine CPU during the run minus the load generator, the sink and the bench itself. */
  cpuMsPerMsg: number;
  peakRssMb?: number | undefined;
}

/**
 * One timed run: the clock starts with the load and stops when the sink has counted
 * every message (end to end), so a relay that accepts fast but drains slowly shows.
 */
export async function measure(opts: { setup: string; port: number; pgid?: number; sink: Sink; size: number; mode: 'new' | 'reuse'; messages: number; sessions: number }): Promise<RunResult> {
  const { sink } = opts;
  const c0 = sink.count();
  const machine0 = machineBusySeconds();
  const sink0 = sink.cpuSeconds();
  const children0 = reapedChildrenCpuSeconds();
  const self0 = process.cpuUsage();
  const t0 = performance.now();
  const probe = startProbe(opts.port);
  await runLoad({ port: opts.port, messages: opts.messages, sessions: opts.sessions, size: opts.size, reuse: opts.mode === 'reuse' });
  const latencies = await probe.stop();
  const total = opts.messages + probe.sent();
  await sink.waitFor(c0 + total, 300_000);
  const seconds = (performance.now() - t0) / 1000;
  const self = process.cpuUsage(self0);
  const others = reapedChildrenCpuSeconds() - children0 + (sink.cpuSeconds() - sink0) + (self.user + self.system) / 1e6;
  const relayCpu = Math.max(0, machineBusySeconds() - machine0 - others);
  const rss = opts.pgid ? peakRssMb(opts.pgid) : [];
  return {
    setup: opts.setup,
    size: opts.size,
    mode: opts.mode,
    messages: total,
    seconds,
    msgsPerSec: total / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    cpuMsPerMsg: (relayCpu * 1000) / total,
    peakRssMb: rss.length ? Math.max(...rss) : undefined,
  };
}
