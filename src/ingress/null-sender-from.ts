import addressparser from 'nodemailer/lib/addressparser';
import { withinSenderDomains } from './authorize.js';
import { reply, type SmtpReplyError } from './smtp-error.js';

/**
 * The From check for a null-sender message (MAIL FROM:<>) of a session bound to sender
 * domains. The envelope check at MAIL FROM has nothing to look at for <>, yet Microsoft
 * 365 sends out-of-office replies and some notices that way through the outbound
 * connector: so <> stays allowed, and the author is checked instead. Every From address
 * must be in the client's sender domains (their From is a tenant user); without this any
 * host in the shared cloud ranges relays anything with <>. Messages with a real envelope
 * sender are not held to their From: forwarding rules relay outside authors with the
 * envelope rewritten (SRS) to a tenant domain. `fields` are the unfolded header fields
 * (header-scan.ts), read as latin1; an internationalised From (RFC 6532) is UTF-8.
 */
export function nullSenderFromRefusal(fields: [string, string][], binding: string[][]): SmtpReplyError | undefined {
  const addresses = fields
    .filter(([name]) => name === 'from')
    .flatMap(([, value]) => addressparser(Buffer.from(value, 'latin1').toString('utf8'), { flatten: true }))
    .map((a) => a.address ?? '');
  if (!addresses.length) return reply(550, '5.7.1', 'A message with the null sender <> must have a From address in the sender domains of this client');
  for (const address of addresses) {
    const at = address.lastIndexOf('@');
    const domain = at > 0 ? address.slice(at + 1) : '';
    if (!domain || !withinSenderDomains(binding, domain)) {
      return reply(550, '5.7.1', `From domain ${domain || '(none)'} is not permitted for this client with the null sender <>`);
    }
  }
  return undefined;
}
