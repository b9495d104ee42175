import addressparser from 'nodemailer/lib/addressparser';

/**
 * The domain a message is signed for: the first address of its From header (what the
 * recipient sees and DMARC aligns with), else the envelope sender's domain; undefined
 * for a message with neither (a null-sender report without From).
 */
export function senderDomain(headerBlock: string, mailFrom: string): string | undefined {
  const from = /^from[ \t]*:(.*(?:\r\n[ \t].*)*)/im.exec(headerBlock)?.[1]?.replace(/\r\n/g, '');
  const parsed = from ? addressparser(from, { flatten: true }) : [];
  const address = parsed.find((a) => a.address?.includes('@'))?.address ?? mailFrom;
  const at = address.lastIndexOf('@');
  return at > 0 ? address.slice(at + 1).toLowerCase().replace(/\.$/, '') : undefined;
}
