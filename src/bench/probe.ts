import { SmtpLine } from './source.js';

/**
 * Accept latency under load: one extra session sends a small message every 20 ms while
 * the load runs and times end-of-DATA → reply. Resolves with the latencies in ms.
 */
export function startProbe(port: number): { stop(): Promise<number[]>; sent(): number } {
  const latencies: number[] = [];
  let running = true;
  let sent = 0;
  const done = (async () => {
    const c = await SmtpLine.open(port).catch(() => undefined);
    if (!c) return;
    await c.cmd('EHLO probe.bench.test');
    while (running) {
      await c.cmd('MAIL FROM:<probe@bench.test>');
      await c.cmd('RCPT TO:<probe@dest.bench.test>');
      await c.cmd('DATA');
      const t0 = performance.now();
      const reply = await c.cmd('Subject: probe\r\n\r\nlatency probe\r\n.');
      if (reply.startsWith('250')) {
        latencies.push(performance.now() - t0);
        sent++;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    await c.cmd('QUIT');
    c.close();
  })().catch(() => undefined); // a probe failure must not fail the run; it only loses samples
  return {
    sent: () => sent,
    async stop() {
      running = false;
      await done;
      return latencies;
    },
  };
}

export function percentile(values: number[], p: number): number | undefined {
  if (!values.length) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
