import type { AddressObject, EmailAddress, ParsedMail } from 'mailparser';

/**
 * Who else a "reply to all" goes to: the addresses in the original's To and Cc headers,
 * less the original sender (the reply's To already) and the recipient who replies. Not
 * the envelope recipients the portal holds the message for: those include Bcc'd
 * recipients (who must stay hidden from each other) and leave out the To and Cc
 * recipients who got it another way (TLS, PGP, S/MIME). Bcc never counts, as a mail
 * client's reply-all would do.
 */
export function replyAllRecipients(original: ParsedMail, exclude: { sender: string; matches: (address: string) => boolean }): string[] {
  const seen = new Set([exclude.sender.toLowerCase(), ...fromAddresses(original)]);
  const out: string[] = [];
  for (const address of headerAddresses([original.to, original.cc])) {
    const key = address.toLowerCase();
    if (seen.has(key) || exclude.matches(address)) continue;
    seen.add(key);
    out.push(address);
  }
  return out;
}

function fromAddresses(original: ParsedMail): string[] {
  return headerAddresses([original.from]).map((a) => a.toLowerCase());
}

/** Plain addresses of address headers, groups opened up, anything without an @ left out. */
function headerAddresses(headers: (AddressObject | AddressObject[] | undefined)[]): string[] {
  const flat = (list: EmailAddress[]): EmailAddress[] => list.flatMap((a) => (a.group ? flat(a.group) : [a]));
  return flat(headers.flat().filter((h): h is AddressObject => Boolean(h)).flatMap((h) => h.value))
    .map((a) => a.address?.trim() ?? '')
    .filter((a) => /^[^\s@<>]+@[^\s@<>]+$/.test(a));
}
