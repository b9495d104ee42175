import type { Readable } from 'node:stream';
import { asciiDomainAddress } from '../common/domain-name.js';
import type { PooledConnection } from './pool.js';
import { decideSmtpUtf8, type Utf8Decision } from './smtputf8.js';
import { withSmtpUtf8 } from './smtputf8-param.js';

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
  /** What was decided about SMTPUTF8, when there was anything to decide (smtputf8.ts). */
  smtputf8?: Utf8Decision | undefined;
}

export interface TransactionInput {
  from: string;
  to: string[];
  size: number;
  eightBit: boolean;
  /** A Buffer goes out in one write; a stream is piped. */
  body: Readable | Buffer;
  /** The client sent MAIL FROM with SMTPUTF8. */
  smtpUtf8?: boolean | undefined;
  /** The header section of `body` has UTF-8 in it (header-section.ts). */
  utf8Header?: boolean | undefined;
}

/**
 * One SMTP transaction on a pooled connection, with a reply for every recipient.
 * Extension checks that the original client relied on happen here: SMTPUTF8 (RFC 6531,
 * decided in smtputf8.ts) and 8BITMIME for an 8-bit body (RFC 6152). Postern does not
 * downgrade; what cannot go as it is bounces with the standard status instead.
 */
export async function sendTransaction(pc: PooledConnection, input: TransactionInput): Promise<TransactionResult> {
  const started = Date.now();
  // smtp-server hands over internationalised domains as U-labels even when the client
  // sent A-labels: such an address goes out with its domain as A-labels, which needs no
  // SMTPUTF8. Only a non-ASCII local part does. Replies are matched by position.
  const from = asciiDomainAddress(input.from);
  const to = input.to.map(asciiDomainAddress);
  const facts = { requested: Boolean(input.smtpUtf8), address: /[^\x00-\x7f]/.test(from + to.join('')), header: Boolean(input.utf8Header) };
  const smtputf8 = decideSmtpUtf8(facts, pc.supports('SMTPUTF8'), pc.target.name);
  if (smtputf8?.action === 'refuse') {
    release(input.body);
    return { ...local(input.to, 'smtputf8', smtputf8.response, started), smtputf8 };
  }
  if (input.eightBit && !pc.supports('8BITMIME')) {
    release(input.body);
    return local(input.to, '8bitmime', '554 5.6.3 Remote server does not support 8BITMIME and the message is 8-bit', started);
  }
  pc.messages++;
  const envelope = { from: from || (false as const), to, size: input.size, use8BitMime: input.eightBit };
  const result = await new Promise<TransactionResult>((resolve) => {
    pc.conn.send(smtputf8?.action === 'smtputf8' ? withSmtpUtf8(envelope) : envelope, input.body, (err, info) => {
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
  return smtputf8 ? { ...result, smtputf8 } : result;
}

function release(body: Readable | Buffer): void {
  if (!Buffer.isBuffer(body)) body.destroy();
}

function local(to: string[], kind: RecipientReply['local'], response: string, started: number): TransactionResult {
  return { replies: to.map((rcpt) => ({ rcpt, ok: false, response, local: kind })), reusable: true, transmitMs: Date.now() - started };
}
