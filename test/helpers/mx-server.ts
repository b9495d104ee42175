import { SMTPServer, type SMTPServerSession } from 'smtp-server';

export interface ReceivedMessage {
  mailFrom: string;
  rcptTo: string[];
  raw: Buffer;
  secure: boolean;
  tlsProtocol?: string | undefined;
  servername?: string | undefined;
  sessionId: string;
}

export interface MxOptions {
  /** Certificate for STARTTLS; without it STARTTLS is not offered. */
  tls?: { cert: string; key: string } | undefined;
  /** Reply to RCPT TO per recipient: return e.g. [550, '5.1.1 no such user'] to refuse. */
  rcptReply?: ((rcpt: string) => [number, string] | undefined) | undefined;
  /** Reply after DATA: return [451, '...'] to refuse the message. */
  dataReply?: ((msg: ReceivedMessage) => [number, string] | undefined) | undefined;
  /** Announce SMTPUTF8 / 8BITMIME (default true). */
  smtputf8?: boolean;
  eightBitMime?: boolean;
  port?: number;
}

/**
 * A receiving MX for tests (smtp-server on 127.0.0.1). Records every accepted message
 * with its TLS state so tests can check what arrived, how, and that nothing else did.
 */
export class TestMx {
  messages: ReceivedMessage[] = [];
  connections = 0;
  private server: SMTPServer | undefined;
  private waiters: { count: number; resolve: () => void }[] = [];
  port = 0;

  constructor(private readonly opts: MxOptions = {}) {}

  async start(): Promise<this> {
    const o = this.opts;
    const server = new SMTPServer({
      name: 'mx.test',
      secure: false,
      hideSTARTTLS: !o.tls,
      ...(o.tls ? { key: o.tls.key, cert: o.tls.cert } : {}),
      authOptional: true,
      // Without a certificate STARTTLS is refused outright, not just left unadvertised.
      disabledCommands: o.tls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
      hideSMTPUTF8: o.smtputf8 === false,
      hide8BITMIME: o.eightBitMime === false,
      disableReverseLookup: true,
      size: 100 * 1024 * 1024,
      logger: false,
      // Postern keeps pooled connections open; don't let them hold up stop().
      closeTimeout: 200,
      onConnect: (_s, cb) => {
        this.connections++;
        cb();
      },
      onRcptTo: (addr, _s, cb) => {
        const r = o.rcptReply?.(addr.address);
        if (!r) return cb();
        const err = Object.assign(new Error(r[1]), { responseCode: r[0] });
        cb(err);
      },
      onData: (stream, session: SMTPServerSession, cb) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const msg: ReceivedMessage = {
            mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            rcptTo: session.envelope.rcptTo.map((r) => r.address),
            raw: Buffer.concat(chunks),
            secure: session.secure,
            tlsProtocol: session.tlsOptions ? (session.tlsOptions as { version?: string }).version : undefined,
            servername: session.servername || undefined,
            sessionId: session.id,
          };
          const r = o.dataReply?.(msg);
          if (r) return cb(Object.assign(new Error(r[1]), { responseCode: r[0] }));
          this.messages.push(msg);
          this.notify();
          cb(null, 'Ok: stored');
        });
      },
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(o.port ?? 0, '127.0.0.1', () => resolve());
    });
    server.on('error', () => undefined);
    const addr = server.server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : 0;
    return this;
  }

  /** Resolves once `count` messages have arrived in total. */
  waitFor(count: number, timeoutMs = 30_000): Promise<void> {
    if (this.messages.length >= count) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`test MX got ${this.messages.length} of ${count} messages in ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        count,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private notify(): void {
    this.waiters = this.waiters.filter((w) => {
      if (this.messages.length >= w.count) {
        w.resolve();
        return false;
      }
      return true;
    });
  }
}
