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

/** A mail command the MX saw, whether or not the transaction went on to finish DATA. */
export interface SeenCommand {
  command: 'MAIL FROM' | 'RCPT TO' | 'DATA';
  /** The address of MAIL FROM / RCPT TO; empty for DATA. */
  address: string;
  /** Whether the session was inside TLS when the command came. */
  secure: boolean;
  sessionId: string;
}

export interface MxOptions {
  /**
   * The loopback address to listen on (default 127.0.0.1). MX delivery reaches every MX
   * host at one port (delivery.mxPort), so tests with several MX hosts give each its own
   * address, 127.0.0.2–7: see startMxHosts.
   */
  host?: string;
  /** Certificate for STARTTLS; without it STARTTLS is not offered. */
  tls?: { cert: string; key: string } | undefined;
  /** Reply to MAIL FROM: return e.g. [451, '4.3.0 try later'] to refuse the transaction. */
  mailReply?: ((from: string) => [number, string] | undefined) | undefined;
  /** Reply to RCPT TO per recipient: return e.g. [550, '5.1.1 no such user'] to refuse. */
  rcptReply?: ((rcpt: string) => [number, string] | undefined) | undefined;
  /** Reply after DATA: return [451, '...'] to refuse the message. */
  dataReply?: ((msg: ReceivedMessage) => [number, string] | undefined) | undefined;
  /**
   * Milliseconds to wait before answering the end of DATA (a slow MX). A message whose
   * connection closes during the wait is not recorded: its sender never got the reply.
   */
  dataDelay?: ((msg: ReceivedMessage) => number) | undefined;
  /** The SIZE limit announced in EHLO, in bytes (default 100 MB). */
  size?: number;
  /** Announce SMTPUTF8 / 8BITMIME (default true). */
  smtputf8?: boolean;
  eightBitMime?: boolean;
  port?: number;
}

/**
 * A receiving MX for tests (smtp-server on 127.0.0.1, or another loopback address). Records every accepted message
 * with its TLS state so tests can check what arrived, how, and that nothing else did.
 */
export class TestMx {
  messages: ReceivedMessage[] = [];
  /** Every MAIL FROM, RCPT TO and DATA in arrival order, including those of transactions that never finished. */
  commands: SeenCommand[] = [];
  connections = 0;
  private server: SMTPServer | undefined;
  private waiters: { count: number; resolve: () => void }[] = [];
  port = 0;

  constructor(private readonly opts: MxOptions = {}) {}

  async start(): Promise<this> {
    const o = this.opts;
    const host = o.host ?? '127.0.0.1';
    if (!/^127\.0\.0\.\d{1,3}$/.test(host)) throw new Error(`a test MX listens on loopback (127.0.0.x) only, not ${host}`);
    const closed = new Set<string>();
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
      size: o.size ?? 100 * 1024 * 1024,
      logger: false,
      // Postern keeps pooled connections open; don't let them hold up stop().
      closeTimeout: 200,
      onConnect: (_s, cb) => {
        this.connections++;
        cb();
      },
      onClose: (session) => {
        closed.add(session.id);
      },
      onMailFrom: (addr, session, cb) => {
        this.seen('MAIL FROM', addr.address, session);
        const r = o.mailReply?.(addr.address);
        cb(r ? Object.assign(new Error(r[1]), { responseCode: r[0] }) : undefined);
      },
      onRcptTo: (addr, session, cb) => {
        this.seen('RCPT TO', addr.address, session);
        const r = o.rcptReply?.(addr.address);
        if (!r) return cb();
        const err = Object.assign(new Error(r[1]), { responseCode: r[0] });
        cb(err);
      },
      onData: (stream, session: SMTPServerSession, cb) => {
        this.seen('DATA', '', session);
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
          const answer = () => {
            if (closed.has(session.id)) return;
            const r = o.dataReply?.(msg);
            if (r) return cb(Object.assign(new Error(r[1]), { responseCode: r[0] }));
            this.messages.push(msg);
            this.notify();
            cb(null, 'Ok: stored');
          };
          const delay = o.dataDelay?.(msg) ?? 0;
          if (delay > 0) setTimeout(answer, delay);
          else answer();
        });
      },
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(o.port ?? 0, host, () => resolve());
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

  private seen(command: SeenCommand['command'], address: string, session: SMTPServerSession): void {
    this.commands.push({ command, address, secure: session.secure, sessionId: session.id });
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

/**
 * Receiving MXs on several loopback addresses that share one port, as MX delivery needs
 * (delivery.mxPort is every MX host's port): the first takes a free port, the others
 * listen on it at their own address. Started again on another port if one of those
 * addresses has it taken already.
 */
export async function startMxHosts(specs: (MxOptions & { host: string })[]): Promise<TestMx[]> {
  for (let attempt = 1; ; attempt++) {
    const started: TestMx[] = [];
    try {
      for (const spec of specs) started.push(await new TestMx({ ...spec, port: started[0]?.port ?? 0 }).start());
      return started;
    } catch (err) {
      for (const m of started) await m.stop();
      if (attempt >= 5 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
  }
}
