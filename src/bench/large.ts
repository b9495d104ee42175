import { randomBytes } from 'node:crypto';
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
 *
 * Each is what a 25 MB mail is: a short text and a large attachment (a PDF, base64).
 * smtp-source's 25 MB of plain text would not be relayed as it is any more: text past
 * detectors.maxScanBytes is not scanned, so it counts as PHI found and goes to the portal.
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
      await runLoad({ port, messages, sessions: messages, size, reuse: false, raw: messageWithAttachment(size) });
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

/** A message of about `size` bytes: a short text part and a PDF attachment (random bytes, base64). */
function messageWithAttachment(size: number): Buffer {
  const boundary = 'bench-large-boundary';
  const head = [
    'From: <sender@bench.test>',
    'To: <rcpt@dest.bench.test>',
    'Subject: scan results',
    'MIME-Version: 1.0',
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    '',
    'The scan is attached.',
    `--${boundary}`,
    'Content-Type: application/pdf; name="scan.pdf"',
    'Content-Disposition: attachment; filename="scan.pdf"',
    'Content-Transfer-Encoding: base64',
    '',
    '',
  ].join('\r\n');
  // base64 grows 3 bytes to 4 and adds CRLF per 76 characters.
  const binary = randomBytes(Math.floor(((size - head.length) * 3 * 76) / (4 * 78)));
  const encoded = binary.toString('base64').replace(/.{76}/g, '$&\r\n');
  return Buffer.from(`${head}${encoded}\r\n--${boundary}--\r\n`);
}

