import type { Readable } from 'node:stream';
import { asciiDomainAddress } from '../common/domain-name.js';
import type { PooledConnection } from './pool.js';

export interface RecipientReply {
  rcpt: string;
  ok: boolean;
  /** The server's reply, or our own words when there was none. */
  response: string;
  /** No SMTP reply: network failure, timeout, or a check we made ourselves. */
  local?: 'network' | 'smtputf8' | '8bitmime' | 'size' | undefined;
}

export interface TransactionResult {
  replies: RecipientReply[];
  /** Whether the connection can carry another message. */
  reusable: boolean;
  transmitMs: number;
}

export interface TransactionInput {
  from: string;
  to: string[];
  size: number;
  eightBit: boolean;
  /** A Buffer goes out in one write; a stream is piped. */
  body: Readable | Buffer;
}

/**
 * One SMTP transaction on a pooled connection, with a reply for every recipient.
 * Extension checks that the original client relied on happen here: an internationalised
 * address needs SMTPUTF8 (RFC 6531), and an 8-bit body needs 8BITMIME (RFC 6152) —
 * Postern does not downgrade, it bounces with the standard status instead.
 */
export async function sendTransaction(pc: PooledConnection, input: TransactionInput): Promise<TransactionResult> {
  const started = Date.now();
  // smtp-server hands over internationalised domains as U-labels even when the client
  // sent A-labels: such an address goes out with its domain as A-labels, which needs no
  // SMTPUTF8. Only a non-ASCII local part does. Replies are matched by position.
  const from = asciiDomainAddress(input.from);
  const to = input.to.map(asciiDomainAddress);
  const needsUtf8 = /[^\x00-\x7f]/.test(from + to.join(''));
  if (needsUtf8 && !pc.supports('SMTPUTF8')) {
    release(input.body);
    return local(input.to, 'smtputf8', '553 5.6.7 Remote server does not support SMTPUTF8, required by an internationalised address', started);
  }
  if (input.eightBit && !pc.supports('8BITMIME')) {
    release(input.body);
    return local(input.to, '8bitmime', '554 5.6.3 Remote server does not support 8BITMIME and the message is 8-bit', started);
  }
  pc.messages++;
  return new Promise((resolve) => {
    pc.conn.send({ from: from || false, to, size: input.size, use8BitMime: input.eightBit }, input.body, (err, info) => {
      // By now the body was sent whole or never will be. Released on every path: nodemailer
      // does not touch it when it refuses before MAIL FROM (a SIZE the remote announced is
      // smaller), and a spool stream left open keeps its file descriptor and 64 KB buffer,
      // and a deleted segment's disk space, for the life of the process.
      release(input.body);
      const transmitMs = Date.now() - started;
      if (!err && info) {
        const rejected = new Map((info.rejectedErrors ?? []).map((e) => [e.recipient ?? '', e.response ?? e.message]));
        resolve({
          replies: input.to.map((rcpt, i) => (rejected.has(to[i]!) ? { rcpt, ok: false, response: rejected.get(to[i]!) as string } : { rcpt, ok: true, response: info.response })),
          reusable: !pc.closed,
          transmitMs,
        });
        return;
      }
      const e = err as { code?: string; command?: string; response?: string; message: string; rejectedErrors?: { recipient?: string; response?: string }[] };
      if (e.code === 'EMESSAGE' && !e.response && /size larger than allowed/i.test(e.message)) {
        resolve({ ...local(input.to, 'size', '552 5.3.4 Message exceeds the size limit the remote server announced', started), reusable: !pc.closed });
        return;
      }
      if (e.response && (e.code === 'EENVELOPE' || e.code === 'EMESSAGE')) {
        const perRcpt = new Map((e.rejectedErrors ?? []).map((r) => [r.recipient ?? '', r.response ?? e.response]));
        resolve({
          replies: input.to.map((rcpt, i) => ({ rcpt, ok: false, response: perRcpt.get(to[i]!) ?? (e.response as string) })),
          // The session is still in step after a refused envelope or message; RSET before reuse.
          reusable: false,
          transmitMs,
        });
        return;
      }
      resolve({ ...local(input.to, 'network', `connection failed during transaction: ${e.message}`, started), reusable: false });
    });
  });
}

function release(body: Readable | Buffer): void {
  if (!Buffer.isBuffer(body)) body.destroy();
}

function local(to: string[], kind: RecipientReply['local'], response: string, started: number): TransactionResult {
  return { replies: to.map((rcpt) => ({ rcpt, ok: false, response, local: kind })), reusable: true, transmitMs: Date.now() - started };
}
