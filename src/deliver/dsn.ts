import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { encode as qpEncode, wrap as qpWrap } from 'nodemailer/lib/qp';
import { asciiDomainAddress } from '../common/domain-name.js';
import { rfc5322Date, LOOP_HEADER } from '../ingress/trace-headers.js';
import { readHeaderSectionOf } from '../protect/header-end.js';
import type { Envelope } from '../types.js';

export interface FailedRecipient {
  rcpt: string;
  /** RFC 3463 status, e.g. 5.1.1. */
  status: string;
  /** The remote reply or our reason, one line. */
  diagnostic: string;
  /** 'smtp' when the diagnostic is a remote SMTP reply. */
  diagnosticType: 'smtp' | 'x-postern';
  remoteMta?: string | undefined;
  lastAttemptAt: number;
}

/**
 * The header fields of the original message (bounded), for the text/rfc822-headers part:
 * its header section as readers split it (protect/header-end.ts), at the blank line or at
 * the first line that is no header field. A message sent without the blank line has its
 * first body lines there, and a report returned them as headers: body text (a patient's
 * results) in a report that may travel in clear.
 */
export async function readHeaderBlock(body: Readable, limit = 64 * 1024): Promise<Buffer> {
  const { read, end } = await readHeaderSectionOf(body, limit);
  if (end && end.fields <= limit) return read.subarray(0, end.fields);
  // Every line within the limit is a header field: whole lines only, none at all when
  // the first line alone exceeds the limit.
  const lastLineEnd = read.lastIndexOf('\n', limit - 1);
  return lastLineEnd === -1 ? Buffer.alloc(0) : read.subarray(0, lastLineEnd + 1);
}

/**
 * An RFC 3464 non-delivery report: multipart/report with a human-readable part, the
 * message/delivery-status part naming only the failed recipients, and the original
 * headers. Sent from the null sender with Auto-Submitted (RFC 3834) so it is never
 * answered or bounced again.
 *
 * The report is 7-bit whatever the original held: its text part and the original's
 * headers are quoted-printable when they are not ASCII, addresses whose domain only is
 * internationalised are written with the domain as A-labels (smtp-server hands domains
 * over as U-labels even when the client sent A-labels), and a recipient that is still not
 * ASCII is written as RFC 6533's utf-8 address type in its 7-bit form. An 8-bit report
 * would need 8BITMIME at the sender's server, and one refused there could not be reported
 * in turn (never a report about a report): the sender would never learn of the failure.
 *
 * One exception: a sender whose local part is not ASCII is written in To: as it is
 * (RFC 6532 UTF-8). No 7-bit form of such an address exists, and the report can only
 * reach it with SMTPUTF8 anyway, which a server offers only with 8BITMIME (RFC 6531 §3.1).
 */
export function buildDsn(opts: { hostname: string; original: Envelope; failed: FailedRecipient[]; originalHeaders: Buffer; sentProtected?: boolean; now?: Date }): Buffer {
  const { hostname, original, failed } = opts;
  const originalHeaders = opts.sentProtected ? withholdTopicFields(opts.originalHeaders) : opts.originalHeaders;
  const now = opts.now ?? new Date();
  const boundary = `postern-dsn-${randomBytes(12).toString('hex')}`;
  const clean = (s: string) => s.replace(/[\r\n]+/g, ' ').trim();
  const human = [
    `This is the mail system at host ${hostname}.`,
    '',
    'Your message could not be delivered to one or more recipients.',
    'It has been returned to you with the reason given by the receiving system.',
    '',
    ...failed.map((f) => wrapText(`<${f.rcpt}>: ${clean(f.diagnostic)}`, 76)),
    '',
  ].join('\r\n');
  const perMessage = [`Reporting-MTA: dns; ${hostname}`, `X-Postern-Queue-ID: ${original.id}`, `Arrival-Date: ${rfc5322Date(new Date(original.receivedAt))}`].join('\r\n');
  const perRecipient = failed
    .map((f) =>
      [
        `Final-Recipient: ${recipientField(f.rcpt)}`,
        'Action: failed',
        `Status: ${f.status}`,
        ...(f.remoteMta ? [`Remote-MTA: dns; ${f.remoteMta}`] : []),
        foldField(`Diagnostic-Code: ${f.diagnosticType}; ${asciiOnly(clean(f.diagnostic))}`),
        `Last-Attempt-Date: ${rfc5322Date(new Date(f.lastAttemptAt))}`,
      ].join('\r\n'),
    )
    .join('\r\n\r\n');
  const headers = [
    `From: Mail Delivery System <MAILER-DAEMON@${hostname}>`,
    `To: <${asciiDomainAddress(original.mailFrom)}>`,
    'Subject: Undelivered Mail Returned to Sender',
    `Date: ${rfc5322Date(now)}`,
    `Message-ID: <${original.id}.${now.getTime()}.dsn@${hostname}>`,
    'Auto-Submitted: auto-replied',
    `${LOOP_HEADER}: ${hostname}`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="${boundary}"`,
  ].join('\r\n');
  const body = [
    'This is a MIME-encapsulated message.',
    '',
    `--${boundary}`,
    'Content-Description: Notification',
    'Content-Type: text/plain; charset=utf-8',
    ...sevenBit(Buffer.from(human)),
    `--${boundary}`,
    'Content-Description: Delivery report',
    'Content-Type: message/delivery-status',
    '',
    perMessage,
    '',
    perRecipient,
    '',
    `--${boundary}`,
    'Content-Description: Undelivered Message Headers',
    'Content-Type: text/rfc822-headers',
    ...sevenBit(originalHeaders.length ? originalHeaders : Buffer.from('\r\n')),
  ].join('\r\n');
  return Buffer.from(`${headers}\r\n\r\n${body}\r\n--${boundary}--\r\n`);
}

/** Header fields that say what a message is about: its topic, not its routing. */
const TOPIC_FIELDS = new Set(['subject', 'thread-topic', 'keywords', 'comments']);

/** What a withheld field reads in the report. */
export const WITHHELD_FIELD_VALUE = '(withheld: the message was sent protected)';

/**
 * The original's header block with its topic fields (Subject, Thread-Topic, Keywords,
 * Comments) replaced, continuation lines and all, by WITHHELD_FIELD_VALUE. A report does
 * not travel the way the original did (it goes to the sender under the report's own
 * decision), so for a message that was sent protected — tagged, encrypted, put in the
 * portal, or found to hold PHI — its subject (a diagnosis, a patient's name; the subject
 * protect.pgp.protectSubject hid) must not come back in it. Message-ID, Date, From, To
 * and the trace fields stay: they are how the sender matches the report to the message.
 */
export function withholdTopicFields(block: Buffer): Buffer {
  const lines = block.toString('latin1').split(/(?<=\n)/);
  const out: string[] = [];
  let dropping = false;
  for (const line of lines) {
    if (/^[ \t]/.test(line)) {
      if (!dropping) out.push(line);
      continue;
    }
    const name = /^([^:\s]+)[ \t]*:/.exec(line)?.[1]?.toLowerCase();
    dropping = name !== undefined && TOPIC_FIELDS.has(name);
    out.push(dropping ? `${line.slice(0, line.indexOf(':'))}: ${WITHHELD_FIELD_VALUE}\r\n` : line);
  }
  return Buffer.from(out.join(''), 'latin1');
}

/**
 * A MIME part's Content-Transfer-Encoding line, the empty line, and its content: as it
 * is when it is ASCII, else quoted-printable (readable where it is ASCII).
 */
function sevenBit(content: Buffer): string[] {
  const text = content.toString('latin1');
  if (!/[^\x00-\x7f]/.test(text)) return ['Content-Transfer-Encoding: 7bit', '', text];
  return ['Content-Transfer-Encoding: quoted-printable', '', qpWrap(qpEncode(content), 76)];
}

/**
 * Final-Recipient's value: `rfc822; address` (an internationalised domain as A-labels, as
 * the address went out), or for an address that is still not ASCII (its local part) the
 * utf-8 type (RFC 6533 §3) in its 7-bit form: every character outside printable ASCII,
 * and "+" and "\\", as \\x{HEX}.
 */
function recipientField(address: string): string {
  const rcpt = asciiDomainAddress(address);
  if (!/[^\x21-\x7e]/.test(rcpt)) return `rfc822; ${rcpt}`;
  const escaped = Array.from(rcpt, (ch) => {
    const code = ch.codePointAt(0) as number;
    return code < 0x21 || code > 0x7e || ch === '+' || ch === '\\' ? `\\x{${code.toString(16).toUpperCase()}}` : ch;
  }).join('');
  return `utf-8; ${escaped}`;
}

/** A remote's words in a 7-bit field: any byte outside ASCII becomes "?". */
function asciiOnly(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?');
}

/** Wraps prose at spaces; a word longer than the width is cut so no line exceeds it. */
function wrapText(text: string, width: number): string {
  const lines: string[] = [];
  let current = '';
  for (let word of text.split(' ')) {
    while (word.length > width) {
      if (current) lines.push(current);
      lines.push(word.slice(0, width));
      word = word.slice(width);
      current = '';
    }
    if (current && current.length + 1 + word.length > width) {
      lines.push(current);
      current = word;
    } else current = current ? `${current} ${word}` : word;
  }
  if (current) lines.push(current);
  return lines.map((l, i) => (i ? `    ${l}` : l)).join('\r\n');
}

/** Folds a long header-style line at spaces (RFC 5322 §2.2.3, 78 characters). */
function foldField(line: string): string {
  if (line.length <= 78) return line;
  const words = line.split(' ');
  const lines: string[] = [];
  let current = '';
  for (const w of words) {
    if (current && current.length + 1 + w.length > 76) {
      lines.push(current);
      current = ` ${w}`;
    } else current = current ? `${current} ${w}` : w;
  }
  lines.push(current);
  return lines.join('\r\n');
}
