import type { Mode } from './options.js';
import { groupsCpuSeconds, machineBusySeconds, peakRssMb, reapedChildrenCpuSeconds, resetPeakRss } from './proc.js';
import { percentile, startProbe } from './probe.js';
import type { Setup } from './setup.js';
import type { Sink } from './sink.js';
import { runLoad } from './source.js';

export interface RunResult {
  /** Which table the run belongs to: the main matrix, or the encryption one. */
  matrix: 'main' | 'encrypt';
  setup: string;
  size: number;
  mode: Mode;
  messages: number;
  seconds: number;
  msgsPerSec: number;
  p50Ms?: number | undefined;
  p99Ms?: number | undefined;
  /** Machine CPU during the run minus the load generator, the sink, the bench itself and the idle setups. */
  cpuMsPerMsg: number;
  /** The largest single process's peak resident set during this run (or since it started: see peakRssSinceStart). */
  peakRssMb?: number | undefined;
  /** The peak could not be reset before the run, so it is the process's lifetime peak. */
  peakRssSinceStart?: boolean | undefined;
}

export interface MeasureSpec {
  matrix: RunResult['matrix'];
  setup: Setup;
  /** Process groups of the other setups, idle meanwhile: their CPU is not this one's. */
  idlePgids: number[];
  sink: Sink;
  size: number;
  mode: Mode;
  messages: number;
  sessions: number;
}

/**
 * One timed run: the clock starts with the load and stops when the sink has counted
 * every message (end to end), so a relay that accepts fast but drains slowly shows.
 * A setup with several ports (instances) gets the load split evenly, all parts
 * started together; the clock and the CPU accounting cover all of them.
 */
export async function measure(spec: MeasureSpec): Promise<RunResult> {
  const { sink, setup } = spec;
  const rssReset = resetPeakRss(setup.pgids);
  const c0 = sink.count();
  const machine0 = machineBusySeconds();
  const sink0 = sink.cpuSeconds();
  const idle0 = groupsCpuSeconds(spec.idlePgids);
  const children0 = reapedChildrenCpuSeconds();
  const self0 = process.cpuUsage();
  const t0 = performance.now();
  // One probe session, on the first instance: the same probe load for every setup.
  const probe = startProbe(setup.ports[0] as number);
  await Promise.all(
    setup.ports.map((port, i) => runLoad({ port, messages: share(spec.messages, setup.ports.length, i), sessions: Math.max(1, share(spec.sessions, setup.ports.length, i)), size: spec.size, reuse: spec.mode === 'reuse' })),
  );
  const latencies = await probe.stop();
  const total = spec.messages + probe.sent();
  await sink.waitFor(c0 + total, 300_000);
  const seconds = (performance.now() - t0) / 1000;
  const self = process.cpuUsage(self0);
  const others = reapedChildrenCpuSeconds() - children0 + (sink.cpuSeconds() - sink0) + (self.user + self.system) / 1e6 + (groupsCpuSeconds(spec.idlePgids) - idle0);
  const relayCpu = Math.max(0, machineBusySeconds() - machine0 - others);
  const rss = setup.pgids.flatMap((pgid) => peakRssMb(pgid));
  return {
    matrix: spec.matrix,
    setup: setup.name,
    size: spec.size,
    mode: spec.mode,
    messages: total,
    seconds,
    msgsPerSec: total / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    cpuMsPerMsg: (relayCpu * 1000) / total,
    peakRssMb: rss.length ? Math.max(...rss) : undefined,
    peakRssSinceStart: !rssReset,
  };
}

/** Part i of n of a count, the remainder going to the first parts. */
function share(count: number, n: number, i: number): number {
  return Math.floor(count / n) + (i < count % n ? 1 : 0);
}
