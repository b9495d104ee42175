/** What the message and its envelope say about SMTPUTF8. */
export interface Utf8Facts {
  /** The client sent MAIL FROM with SMTPUTF8. */
  requested: boolean;
  /** An envelope address has a non-ASCII local part (a domain alone goes as A-labels). */
  address: boolean;
  /** The header section of the message as it leaves has UTF-8 in it (RFC 6532). */
  header: boolean;
}

export type Utf8Decision =
  /** MAIL FROM carries SMTPUTF8. */
  | { action: 'smtputf8'; reason: 'address' | 'requested' | 'header' }
  /** The next hop does not offer SMTPUTF8 and the message goes without it (see below). */
  | { action: 'without'; reason: 'not-needed' | 'not-requested' }
  /** Not sent to this next hop: the reply its recipients get, with RFC 6531's 5.6.7. */
  | { action: 'refuse'; reason: 'address' | 'header'; response: string };

/**
 * Postern decides as Postfix does (SMTPUTF8_README, smtputf8.h):
 *
 * - The next hop offers SMTPUTF8: the parameter goes with a non-ASCII address, with a
 *   header section in UTF-8 (RFC 6531 §3.4: the message needs it), and whenever the client
 *   asked for it: the client knows its message (UTF-8 in a MIME part's header fields or a
 *   message/global part, RFC 6532 §3.5, §3.7) better than a look at the top header
 *   section does, and a relay passes the request on.
 * - It does not: a non-ASCII address cannot be written at all (553 5.6.7). Otherwise the
 *   message is refused (5.6.7) only when the client asked for SMTPUTF8 and the message
 *   does need it (UTF-8 header fields). A client that asked for it with an all-ASCII
 *   message is sent on without it (Postfix: the flag without the content is no reason to
 *   bounce). And a client that never asked, with raw UTF-8 in its headers, is sent on as
 *   it sent it: mail like that flowed before SMTPUTF8 existed and receivers take it today;
 *   bouncing it for a flag its own client never set would break working mail flows, which
 *   is why Postfix only autodetects SMTPUTF8 for local submissions, not for relayed mail.
 *   Postern does not downgrade (RFC 6857): that would rewrite a message it may have
 *   signed, and is the originator's job.
 *
 * Nothing to decide (undefined) when neither the client nor the message has anything to
 * do with SMTPUTF8.
 */
export function decideSmtpUtf8(facts: Utf8Facts, offered: boolean, host: string): Utf8Decision | undefined {
  const { requested, address, header } = facts;
  if (!requested && !address && !header) return undefined;
  if (offered) return { action: 'smtputf8', reason: address ? 'address' : requested ? 'requested' : 'header' };
  if (address) return { action: 'refuse', reason: 'address', response: '553 5.6.7 Remote server does not support SMTPUTF8, required by an internationalised address' };
  if (requested && header) {
    return { action: 'refuse', reason: 'header', response: `554 5.6.7 SMTPUTF8 is required (sent with SMTPUTF8, UTF-8 header fields), but was not offered by ${host}` };
  }
  return { action: 'without', reason: requested ? 'not-needed' : 'not-requested' };
}
