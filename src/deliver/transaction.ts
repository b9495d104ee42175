import { Readable } from 'node:stream';
import { asciiDomainAddress } from '../common/domain-name.js';
import type { PooledConnection } from './pool.js';
import { decideSmtpUtf8, type Utf8Decision } from './smtputf8.js';
import { withSmtpUtf8 } from './smtputf8-param.js';

export interface RecipientReply {
  rcpt: string;
  ok: boolean;
  /** The server's reply, or our own words when there was none. */
  response: string;
  /**
   * No SMTP reply: network failure, timeout, or a check we made ourselves. `after-dot`:
   * the connection failed after the whole message was sent and before its reply, so the
   * server may have taken it (RFC 5321 §4.5.3.2.6); `internal`: the message could not be
   * opened for a further transaction.
   */
  local?: 'network' | 'after-dot' | 'internal' | 'smtputf8' | '8bitmime' | 'size' | undefined;
  /** The reply was the server's answer to this recipient's own RCPT TO. */
  atRcpt?: boolean | undefined;
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
  /** A Buffer goes out as one chunk; a stream is piped. */
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
  // nodemailer fills this object in as the replies come: rejectedErrors keeps each refused
  // RCPT TO with its reply, mailError a refused MAIL FROM.
  const envelope: SentEnvelope = { from: from || (false as const), to, size: input.size, use8BitMime: input.eightBit };
  let bodyEnded = false;
  let answered = false;
  const body = watchEnd(input.body, () => {
    // A server may answer (refuse) before it has read the whole message.
    if (answered) return;
    bodyEnded = true;
    pc.awaitingDataDone(true);
  });
  const result = await new Promise<TransactionResult>((resolve) => {
    pc.conn.send(smtputf8?.action === 'smtputf8' ? withSmtpUtf8(envelope) : envelope, body, (err, info) => {
      // By now the body was sent whole or never will be. Released on every path: nodemailer
      // does not touch it when it refuses before MAIL FROM (a SIZE the remote announced is
      // smaller), and a spool stream left open keeps its file descriptor and 64 KB buffer,
      // and a deleted segment's disk space, for the life of the process.
      answered = true;
      release(body);
      release(input.body);
      if (bodyEnded) pc.awaitingDataDone(false);
      const transmitMs = Date.now() - started;
      // A recipient refused at RCPT TO keeps that reply whatever happens to the message:
      // the reply to DATA or to its end (or a failure) is for those the server accepted.
      const refused = refusedAtRcpt(envelope);
      const replies = (forAccepted: (rcpt: string) => RecipientReply): RecipientReply[] =>
        input.to.map((rcpt, i) => {
          const own = refused.get(to[i]!);
          return own === undefined ? forAccepted(rcpt) : { rcpt, ok: false, response: own, atRcpt: true };
        });
      if (!err && info) {
        resolve({ replies: replies((rcpt) => ({ rcpt, ok: true, response: info.response })), reusable: !pc.closed, transmitMs });
        return;
      }
      const e = err as { code?: string; command?: string; response?: string; message: string };
      if (e.code === 'EMESSAGE' && !e.response && /size larger than allowed/i.test(e.message)) {
        resolve({ ...local(input.to, 'size', '552 5.3.4 Message exceeds the size limit the remote server announced', started), reusable: !pc.closed });
        return;
      }
      if (e.response && (e.code === 'EENVELOPE' || e.code === 'EMESSAGE')) {
        const response = e.response;
        resolve({
          replies: replies((rcpt) => ({ rcpt, ok: false, response })),
          // The session is still in step after a refused envelope or message; RSET before reuse.
          reusable: false,
          transmitMs,
        });
        return;
      }
      // No reply after the whole message went: the server may have it. A reply that ended
      // the session (421) is an answer, not silence.
      const afterDot = bodyEnded && !e.response;
      const why = afterDot
        ? `no reply after the end of the message (${e.message}): it may have been delivered, and may arrive twice when retried`
        : `connection failed during transaction: ${e.message}`;
      resolve({ replies: replies((rcpt) => ({ rcpt, ok: false, response: why, local: afterDot ? 'after-dot' : 'network' })), reusable: false, transmitMs });
    });
  });
  return smtputf8 ? { ...result, smtputf8 } : result;
}

/** The envelope as nodemailer leaves it once the replies are in. */
interface SentEnvelope {
  from: string | false;
  to: string[];
  size: number;
  use8BitMime: boolean;
  mailError?: unknown;
  rejectedErrors?: { recipient?: string; response?: string; command?: string }[];
}

/** Each recipient the server refused at RCPT TO, with its reply; none when MAIL FROM was refused (the whole envelope was). */
function refusedAtRcpt(envelope: SentEnvelope): Map<string, string> {
  if (envelope.mailError) return new Map();
  return new Map((envelope.rejectedErrors ?? []).filter((r) => r.command === 'RCPT TO' && r.recipient && r.response).map((r) => [r.recipient as string, r.response as string]));
}

/**
 * The body as it is handed to nodemailer, with `onEnd` called once all of it has been
 * taken (the final dot follows at once). A Buffer becomes a stream of itself, one chunk,
 * so that moment can be seen as well.
 */
function watchEnd(body: Readable | Buffer, onEnd: () => void): Readable {
  const stream = Buffer.isBuffer(body) ? Readable.from([body], { objectMode: false }) : body;
  stream.once('end', onEnd);
  return stream;
}

function release(body: Readable | Buffer): void {
  if (!Buffer.isBuffer(body)) body.destroy();
}

function local(to: string[], kind: RecipientReply['local'], response: string, started: number): TransactionResult {
  return { replies: to.map((rcpt) => ({ rcpt, ok: false, response, local: kind })), reusable: true, transmitMs: Date.now() - started };
}
