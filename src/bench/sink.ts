import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { SMTPServer } from 'smtp-server';
import { killGroup, processCpuSeconds, startProcess, waitForSmtp } from './proc.js';

/** The next hop every setup delivers to; it only counts messages. */
export interface Sink {
  port: number;
  count(): number;
  /** Resolves when the count reaches `target` (or rejects at the timeout). */
  waitFor(target: number, timeoutMs: number): Promise<void>;
  cpuSeconds(): number;
  kind: string;
  stop(): Promise<void>;
}

const SMTP_SINK = '/usr/sbin/smtp-sink';

export async function startSink(port: number): Promise<Sink> {
  return existsSync(SMTP_SINK) ? startPostfixSink(port) : startNodeSink(port);
}

/** Postfix's smtp-sink (C, cheap): `-c` prints a running "mesg=N" counter on stdout. */
async function startPostfixSink(port: number): Promise<Sink> {
  const proc: ChildProcess = startProcess(SMTP_SINK, ['-c', '-u', 'nobody', `127.0.0.1:${port}`, '1000']);
  let count = 0;
  let tail = '';
  const waiters = new Set<() => void>();
  proc.stdout?.on('data', (d: Buffer) => {
    const text = tail + d.toString('latin1');
    const all = [...text.matchAll(/mesg=(\d+)/g)];
    const last = all[all.length - 1];
    if (last) count = Number(last[1]);
    tail = text.slice(-32);
    for (const w of waiters) w();
  });
  await waitForSmtp(port);
  return {
    port,
    kind: 'smtp-sink',
    count: () => count,
    waitFor: (target, timeoutMs) => waitCount(() => count, waiters, target, timeoutMs),
    cpuSeconds: () => processCpuSeconds(proc.pid as number),
    async stop() {
      killGroup(proc);
    },
  };
}

/** Fallback when Postfix's tools are not installed: a counting smtp-server in this process. */
async function startNodeSink(port: number): Promise<Sink> {
  let count = 0;
  const waiters = new Set<() => void>();
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    disableReverseLookup: true,
    logger: false,
    onData(stream, _s, cb) {
      stream.on('data', () => undefined);
      stream.on('end', () => {
        count++;
        for (const w of waiters) w();
        cb();
      });
    },
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  return {
    port,
    kind: 'node smtp-server sink (install postfix for smtp-sink)',
    count: () => count,
    waitFor: (target, timeoutMs) => waitCount(() => count, waiters, target, timeoutMs),
    cpuSeconds: () => 0, // counted as part of the bench process
    stop: () => new Promise((r) => server.close(() => r())),
  };
}

function waitCount(count: () => number, waiters: Set<() => void>, target: number, timeoutMs: number): Promise<void> {
  if (count() >= target) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      waiters.delete(check);
      reject(new Error(`sink counted ${count()} of ${target} messages in ${timeoutMs} ms`));
    }, timeoutMs);
    const check = () => {
      if (count() >= target) {
        clearTimeout(timer);
        waiters.delete(check);
        resolve();
      }
    };
    waiters.add(check);
  });
}
