import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';

const SMTP_SOURCE = '/usr/sbin/smtp-source';
/** Every load message goes to this one recipient (the encrypting setups hold its domain's key). */
export const LOAD_DOMAIN = 'dest.bench.test';
const RECIPIENT = `rcpt@${LOAD_DOMAIN}`;

export interface LoadSpec {
  port: number;
  messages: number;
  sessions: number;
  size: number;
  reuse: boolean;
  /**
   * A whole message to send instead of smtp-source's text (CRLF line endings, no line
   * starting with "."): sent by the Node client, one new session per message.
   */
  raw?: Buffer | undefined;
}

/** Sends the load and resolves when the client side is done (not when it is delivered). */
export async function runLoad(spec: LoadSpec): Promise<void> {
  if (spec.raw) return runRawLoad(spec, spec.raw);
  if (existsSync(SMTP_SOURCE)) return runSmtpSource(spec);
  return runNodeLoad(spec);
}

/** `spec.messages` copies of one message, each in a session of its own, `spec.sessions` at once. */
async function runRawLoad(spec: LoadSpec, raw: Buffer): Promise<void> {
  let next = 0;
  const session = async () => {
    while (next < spec.messages) {
      next++;
      const conn = await SmtpLine.open(spec.port);
      await conn.cmd('EHLO bench.test');
      await conn.cmd('MAIL FROM:<sender@bench.test>');
      await conn.cmd(`RCPT TO:<${RECIPIENT}>`);
      await conn.cmd('DATA');
      const reply = await conn.data(raw);
      if (!reply.startsWith('250')) throw new Error(`message refused: ${reply.trim()}`);
      await conn.cmd('QUIT');
      conn.close();
    }
  };
  await Promise.all(Array.from({ length: spec.sessions }, session));
}

function runSmtpSource(spec: LoadSpec): Promise<void> {
  const args = ['-s', String(spec.sessions), '-m', String(spec.messages), '-l', String(spec.size), '-f', 'sender@bench.test', '-t', RECIPIENT];
  if (spec.reuse) args.unshift('-d');
  args.push(`127.0.0.1:${spec.port}`);
  return new Promise((resolve, reject) => {
    const p = spawn(SMTP_SOURCE, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    p.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`smtp-source exited ${code}: ${err.trim()}`))));
  });
}

/** A plain Node client with the same behaviour, for machines without Postfix's tools. */
async function runNodeLoad(spec: LoadSpec): Promise<void> {
  let next = 0;
  const body = `Subject: bench\r\n\r\n${'x'.repeat(76)}\r\n`.repeat(Math.max(1, Math.ceil(spec.size / 96)));
  const session = async () => {
    while (next < spec.messages) {
      const conn = await SmtpLine.open(spec.port);
      await conn.cmd('EHLO bench.test');
      do {
        if (next >= spec.messages) break;
        next++;
        await conn.cmd('MAIL FROM:<sender@bench.test>');
        await conn.cmd(`RCPT TO:<${RECIPIENT}>`);
        await conn.cmd('DATA');
        await conn.cmd(`${body}.`);
      } while (spec.reuse);
      await conn.cmd('QUIT');
      conn.close();
    }
  };
  await Promise.all(Array.from({ length: spec.sessions }, session));
}

/** Minimal line client: one command, one (possibly multi-line) reply. */
export class SmtpLine {
  private buf = '';
  private waiter: ((line: string) => void) | undefined;
  private constructor(private readonly socket: import('node:net').Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf += d.toString('latin1');
      const m = /(?:^|\r\n)(\d{3}) [^\r\n]*\r\n$/.exec(this.buf);
      if (m && this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        const reply = this.buf;
        this.buf = '';
        w(reply);
      }
    });
    socket.on('error', () => undefined);
  }

  static async open(port: number): Promise<SmtpLine> {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.setNoDelay(true);
    const c = new SmtpLine(socket);
    await c.reply();
    return c;
  }

  reply(): Promise<string> {
    return new Promise((resolve) => {
      if (/(?:^|\r\n)\d{3} [^\r\n]*\r\n$/.test(this.buf)) {
        const r = this.buf;
        this.buf = '';
        resolve(r);
      } else this.waiter = resolve;
    });
  }

  cmd(line: string): Promise<string> {
    this.socket.write(`${line}\r\n`);
    return this.reply();
  }

  /** A message's bytes after 354, then the end of data; the reply to it. */
  data(raw: Buffer): Promise<string> {
    this.socket.write(raw);
    this.socket.write('.\r\n');
    return this.reply();
  }

  close(): void {
    this.socket.destroy();
  }
}
