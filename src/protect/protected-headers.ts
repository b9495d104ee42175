/** The header fields a reader needs to see what the message is (draft-autocrypt-lamps-protected-headers §2). */
const PROTECTED = /^(subject|from|to|cc|date|message-id|reply-to)[ \t]*:/i;

/**
 * The entity that goes inside the encryption, with the message's own Subject, From, To,
 * Cc, Date, Message-ID and Reply-To copied into its header block and its Content-Type
 * marked `protected-headers="v1"`, so a client that knows the scheme (Thunderbird,
 * Mailpile, K-9) shows the real Subject although the outer one is replaced.
 */
export function withProtectedHeaders(outer: string[], entity: Buffer): Buffer {
  let end = entity.indexOf('\r\n\r\n');
  if (end === -1) end = entity.length;
  const fields = entity.subarray(0, end).toString('latin1').split(/\r\n(?![ \t])/).filter(Boolean);
  const marked = fields.map((f) => (/^content-type[ \t]*:/i.test(f) && !/protected-headers=/i.test(f) ? `${f.replace(/[ \t;]+$/, '')}; protected-headers="v1"` : f));
  const copied = outer.filter((f) => PROTECTED.test(f));
  return Buffer.concat([Buffer.from(`${[...copied, ...marked].join('\r\n')}\r\n\r\n`, 'latin1'), entity.subarray(end + 4)]);
}
