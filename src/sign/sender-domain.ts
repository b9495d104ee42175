import addressparser from 'nodemailer/lib/addressparser';

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
