import addressparser from 'nodemailer/lib/addressparser';
import { comparableDomain } from '../common/domain-name.js';

/**
 * The author of a message: the first address of its From header (what the recipient
 * sees and DMARC aligns with), else the envelope sender; '' for a message with neither
 * (a null-sender report without From). Lower-cased.
 */
export function senderAddress(headerBlock: string, mailFrom: string): string {
  const from = /^from[ \t]*:(.*(?:\r\n[ \t].*)*)/im.exec(headerBlock)?.[1]?.replace(/\r\n/g, '');
  const parsed = from ? addressparser(from, { flatten: true }) : [];
  return (parsed.find((a) => a.address?.includes('@'))?.address ?? mailFrom).toLowerCase();
}

/** The domain a message is signed for (see senderAddress); undefined when there is none. */
export function senderDomain(headerBlock: string, mailFrom: string): string | undefined {
  const address = senderAddress(headerBlock, mailFrom);
  const at = address.lastIndexOf('@');
  return at > 0 ? address.slice(at + 1).replace(/\.$/, '') : undefined;
}

/**
 * The domain a message is DKIM-signed for (see senderAddress), in the form dkim.keys
 * domains are kept in: A-labels (common/domain-name.ts). The header block is latin1, a
 * character a byte (peek-headers.ts), but an internationalised From (RFC 6532) is UTF-8:
 * it is decoded as such first, or `bücher.example` would never meet its key.
 */
export function signingDomain(headerBlock: string, mailFrom: string): string | undefined {
  const domain = senderDomain(Buffer.from(headerBlock, 'latin1').toString('utf8'), mailFrom);
  return domain && comparableDomain(domain);
}
