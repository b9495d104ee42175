import { asciiDomain, asciiDomainAddress } from '../common/domain-name.js';
import type { ClientInfo } from '../types.js';

/** Postern's own stamp; the loop guard counts it, and mail admins key M365 rules on it. */
export const LOOP_HEADER = 'X-Postern-Loop';

export interface TraceInput {
  hostname: string;
  queueId: string;
  client: ClientInfo;
  clientHostname: string;
  /** RFC 3848 protocol: ESMTP, ESMTPS, ESMTPA, ESMTPSA. */
  protocol: string;
  rcptTo: string[];
  date: Date;
}

/**
 * The headers Postern prepends to every message it accepts: a RFC 5321 §4.4 Received
 * line, then the loop stamp. The recipient is named only for single-recipient
 * messages, so a Bcc list never leaks into the headers.
 *
 * Internationalised domain names (the HELO name, the recipient's domain, which
 * smtp-server hands over as U-labels even when the client sent A-labels) are written as
 * A-labels: the same names, in ASCII. UTF-8 in the header section makes a message need
 * SMTPUTF8 (RFC 6532; src/deliver/smtputf8.ts), and Postern's own stamp must not make a
 * message need what the client's did not. An address with a non-ASCII local part is
 * written as it came: that address needs SMTPUTF8 on the wire anyway.
 */
export function traceHeaders(input: TraceInput): Buffer {
  const { client } = input;
  // smtp-server gives "[ip]" when no reverse lookup was made; Postfix-style "unknown" then.
  const rdns = input.clientHostname && !input.clientHostname.startsWith('[') ? traceName(input.clientHostname) : 'unknown';
  // RFC 5321 §4.1.3: an IPv6 address literal is tagged "IPv6:".
  const literal = client.ip.includes(':') ? `IPv6:${client.ip}` : client.ip;
  const from = `from ${traceName(client.helo)} (${rdns} [${literal}])`;
  const tls = client.tls ? `\r\n\t(using ${safe(client.tls.protocol)} with cipher ${safe(client.tls.cipher)})` : '';
  const only = input.rcptTo.length === 1 ? `\r\n\tfor <${safe(asciiDomainAddress(input.rcptTo[0] as string))}>` : '';
  const received = `Received: ${from}\r\n\tby ${input.hostname} (Postern) with ${input.protocol} id ${input.queueId}${tls}${only};\r\n\t${rfc5322Date(input.date)}\r\n`;
  return Buffer.from(`${received}${LOOP_HEADER}: ${input.hostname}\r\n`, 'utf8');
}

const ADDRESS_LITERAL = /^\[(?:\d{1,3}(?:\.\d{1,3}){3}|IPv6:[0-9A-Fa-f:.]+)\]$/i;

/**
 * A name the client gave (HELO, PTR) as the Received line can carry it. A domain name
 * (an internationalised one as A-labels) or an address literal is written as it came.
 * Anything else is the client's free text, and written as such it rewrote our line:
 * "evil(" or "a)by(trusted.example" turned the rest of the field into a comment or a
 * forged "by", "x;Mon, 1 Jan 2001" ended it with a date of the client's choosing, and
 * raw UTF-8 made every message of the session need SMTPUTF8 at the next hop. So it is
 * percent-encoded (UTF-8 bytes, like a URL): ASCII letters, digits, '.', '-' and '_'
 * stay, everything else becomes %XX, and the name is still there to read.
 */
export function traceName(name: string): string {
  if (!name) return 'unknown';
  if (ADDRESS_LITERAL.test(name)) return name;
  if (/^[A-Za-z0-9.-]+$/.test(name) && asciiDomain(name)) return name;
  if (/[^\x00-\x7f]/.test(name)) {
    const ascii = asciiDomain(name);
    if (ascii && name === name.trim()) return ascii;
  }
  const encoded = [...Buffer.from(name, 'utf8')].map((b) => (SAFE_BYTE.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('');
  // Cut to 255 characters, never in the middle of a %XX.
  return encoded.slice(0, 255).replace(/%[0-9A-F]?$/, '');
}

const SAFE_BYTE = /^[A-Za-z0-9._-]$/;

/** Values we did not choose (TLS strings, the recipient) lose anything that could break the header. */
function safe(text: string): string {
  return text.replace(/[^\x21-\x7e\u0080-\uffff]/g, '').slice(0, 255);
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

export function rfc5322Date(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}
