import { SMTPServer } from 'smtp-server';

/** A next hop that keeps what it receives, for checking what a setup really sends. */
export interface Capture {
  port: number;
  /** The next message received (raw, as delivered), or a rejection after `timeoutMs`. */
  next(timeoutMs: number): Promise<Buffer>;
  stop(): Promise<void>;
}

export async function startCapture(port: number): Promise<Capture> {
  const received: Buffer[] = [];
  const waiters: ((m: Buffer) => void)[] = [];
  const server = new SMTPServer({
    authOptional: true,
    // Like smtp-sink: no TLS offered, so Postern delivers as it does to the sink.
    disabledCommands: ['AUTH', 'STARTTLS'],
    disableReverseLookup: true,
    logger: false,
    onData(stream, _session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (d: Buffer) => chunks.push(d));
      stream.on('end', () => {
        const message = Buffer.concat(chunks);
        const waiter = waiters.shift();
        if (waiter) waiter(message);
        else received.push(message);
        cb();
      });
    },
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  return {
    port,
    next(timeoutMs) {
      const ready = received.shift();
      if (ready) return Promise.resolve(ready);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(done), 1);
          reject(new Error(`nothing was delivered to the capture server within ${timeoutMs} ms`));
        }, timeoutMs);
        const done = (m: Buffer) => {
          clearTimeout(timer);
          resolve(m);
        };
        waiters.push(done);
      });
    },
    stop: () => new Promise((r) => server.close(() => r())),
  };
}
