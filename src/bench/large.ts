import { join } from 'node:path';
import { freePort, peakRssMb, rssMb } from './proc.js';
import { startPostern } from './postern.js';
import type { Sink } from './sink.js';
import { runLoad } from './source.js';

export interface LargeResult {
  messages: number;
  size: number;
  seconds: number;
  /** Each gateway process's peak resident set since it started (a fresh gateway per run). */
  peakRssMbPerProcess: number[];
  /** The largest sum of all gateway processes' resident sets seen at once (sampled every SAMPLE_MS). */
  peakRssMbSummed: number;
}

const SAMPLE_MS = 50;

/** The per-process peaks and their sum, said as what they are. */
export function formatLargeRss(r: LargeResult): string {
  const per = r.peakRssMbPerProcess;
  const sum = per.reduce((a, b) => a + b, 0);
  const bound = per.length > 1 ? ` (their sum, ${sum.toFixed(0)} MB, bounds the total from above: the peaks need not coincide)` : '';
  return (
    `peak RSS ${per.map((m) => m.toFixed(0)).join(' / ')} MB per process${bound}; ` +
    `all ${per.length} gateway process(es) together: ${r.peakRssMbSummed.toFixed(0)} MB at the highest sample (every ${SAMPLE_MS} ms) (target: under 300 MB)`
  );
}

/**
 * Ten 25 MB messages relayed at once through a fresh Postern: bodies must stream
 * through, never be held whole, so the peak RSS stays well under 300 MB.
 */
export async function runLarge(base: string, sink: Sink, workers: string, messages: number): Promise<LargeResult> {
  const size = 25 * 1024 * 1024;
  const port = await freePort();
  const relay = await startPostern({ name: 'postern-large', dir: join(base, 'postern'), port, sinkPort: sink.port, workers });
  try {
    const c0 = sink.count();
    let peakRssMbSummed = 0;
    const sample = () => (peakRssMbSummed = Math.max(peakRssMbSummed, relay.pgids.flatMap(rssMb).reduce((a, b) => a + b, 0)));
    const sampler = setInterval(sample, SAMPLE_MS);
    const t0 = performance.now();
    try {
      await runLoad({ port, messages, sessions: messages, size, reuse: false });
      await sink.waitFor(c0 + messages, 300_000);
    } finally {
      clearInterval(sampler);
    }
    const seconds = (performance.now() - t0) / 1000;
    sample();
    return { messages, size, seconds, peakRssMbPerProcess: relay.pgids.flatMap((pgid) => peakRssMb(pgid)), peakRssMbSummed };
  } finally {
    await relay.stop();
  }
}
