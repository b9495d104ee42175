import { join } from 'node:path';
import { freePort, peakRssMb } from './proc.js';
import { startPostern } from './postern.js';
import type { Sink } from './sink.js';
import { runLoad } from './source.js';

export interface LargeResult {
  messages: number;
  size: number;
  seconds: number;
  peakRssMbPerProcess: number[];
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
    const t0 = performance.now();
    await runLoad({ port, messages, sessions: messages, size, reuse: false });
    await sink.waitFor(c0 + messages, 300_000);
    const seconds = (performance.now() - t0) / 1000;
    return { messages, size, seconds, peakRssMbPerProcess: relay.pgids.flatMap((pgid) => peakRssMb(pgid)) };
  } finally {
    await relay.stop();
  }
}
