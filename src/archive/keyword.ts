import { simpleParser } from 'mailparser';

/**
 * Whether a message contains a keyword, case-insensitively, in its decoded subject,
 * text (HTML as text), attachment names, or anywhere in the raw MIME (headers, and
 * parts that need no decoding). Base64 and quoted-printable text parts are searched
 * decoded, which a plain byte search would miss.
 */
export async function containsKeyword(raw: Buffer, keyword: string): Promise<boolean> {
  const k = keyword.toLowerCase();
  if (raw.toString('utf8').toLowerCase().includes(k)) return true;
  const parsed = await simpleParser(raw, { skipImageLinks: true, skipTextLinks: true, skipHtmlToText: false });
  const names = parsed.attachments.map((a) => a.filename ?? '').join('\n');
  return [parsed.subject ?? '', parsed.text ?? '', typeof parsed.html === 'string' ? parsed.html : '', names].join('\n').toLowerCase().includes(k);
}
