import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import SMTPConnection from 'nodemailer/lib/smtp-connection';

/**
 * A line-level SMTP client for tests that must control every byte (smuggling,
 * pipelining, injection). Replies are read whole, multi-line replies included.
 */
export class RawSmtp {
  private buffer = '';
  private replies: string[] = [];
  private waiters: ((r: string) => void)[] = [];
  greeting = '';
  closed = false;

  private constructor(private socket: Socket | TLSSocket) {
    this.attach(socket);
  }

  static async connect(port: number, host = '127.0.0.1'): Promise<RawSmtp> {
    const socket = netConnect({ port, host });
    // Each write goes out as written (no Nagle coalescing): the tests decide the segments.
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    const c = new RawSmtp(socket);
    c.greeting = await c.read();
    return c;
  }

  private attach(socket: Socket | TLSSocket): void {
    socket.on('data', (d: Buffer) => {
      this.buffer += d.toString('latin1');
      for (;;) {
        const m = /^(?:\d{3}-[^\r\n]*\r?\n)*\d{3}(?: [^\r\n]*)?\r?\n/.exec(this.buffer);
        if (!m) break;
        this.buffer = this.buffer.slice(m[0].length);
        const reply = m[0].trimEnd();
        const w = this.waiters.shift();
        if (w) w(reply);
        else this.replies.push(reply);
      }
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w('(connection closed)');
    });
    socket.on('error', () => undefined);
  }

  /** The next reply (waits up to timeoutMs). */
  read(timeoutMs = 10_000): Promise<string> {
    const queued = this.replies.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.closed) return Promise.resolve('(connection closed)');
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve('(no reply)'), timeoutMs);
      this.waiters.push((r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
  }

  write(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  async command(line: string): Promise<string> {
    this.write(`${line}\r\n`);
    return this.read();
  }

  /** Upgrades after a 220 to STARTTLS; the caller sends EHLO again. */
  async startTls(ca?: string, servername = 'localhost'): Promise<void> {
    const plain = this.socket as Socket;
    plain.removeAllListeners('data');
    const secure = tlsConnect({ socket: plain, servername, ...(ca ? { ca } : { rejectUnauthorized: false }) });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.socket = secure;
    this.buffer = '';
    this.attach(secure);
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface SendResult {
  ok: boolean;
  response: string;
  queueId?: string | undefined;
}

/** One message over a fresh connection with nodemailer's client (STARTTLS when offered). */
export async function sendMail(port: number, opts: { from: string; to: string[]; raw: Buffer | string; requireTls?: boolean }): Promise<SendResult> {
  const conn = new SMTPConnection({ host: '127.0.0.1', port, requireTLS: opts.requireTls ?? false, tls: { rejectUnauthorized: false }, logger: false } as ConstructorParameters<typeof SMTPConnection>[0]);
  try {
    await new Promise<void>((resolve, reject) => {
      conn.once('error', reject);
      conn.connect(() => resolve());
    });
    return await new Promise<SendResult>((resolve) => {
      conn.send({ from: opts.from, to: opts.to }, typeof opts.raw === 'string' ? Buffer.from(opts.raw) : opts.raw, (err, info) => {
        if (err) return resolve({ ok: false, response: (err as { response?: string }).response ?? err.message });
        resolve({ ok: true, response: info.response, queueId: /queued as (\S+)/.exec(info.response)?.[1] });
      });
    });
  } catch (err) {
    return { ok: false, response: (err as { response?: string }).response ?? (err as Error).message };
  } finally {
    conn.quit();
  }
}

/** A small RFC 5322 message with CRLF line endings and a marker to find it by. */
export function testMessage(opts: { from?: string; to?: string; subject?: string; body?: string; extraHeaders?: string[] } = {}): Buffer {
  const lines = [
    `From: ${opts.from ?? 'sender@client.test'}`,
    `To: ${opts.to ?? 'rcpt@dest.test'}`,
    `Subject: ${opts.subject ?? 'test message'}`,
    `Message-ID: <${Math.random().toString(36).slice(2)}@client.test>`,
    'Date: Mon, 23 Nov 2026 10:00:00 +0000',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    ...(opts.extraHeaders ?? []),
    '',
    opts.body ?? 'Hello from the Postern test suite.',
    '',
  ];
  return Buffer.from(lines.join('\r\n'));
}
