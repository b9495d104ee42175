import { headerEnd, headerFields } from './header-end.js';
import { replaceField } from './mime-entity.js';

/** The header fields a reader needs to see what the message is (draft-autocrypt-lamps-protected-headers §2). */
const PROTECTED = /^(subject|from|to|cc|date|message-id|reply-to)[ \t]*:/i;

/**
 * Outer header fields that carry the subject, or words about the content, besides
 * Subject itself: Thread-Topic (Exchange Online and Outlook add it to every message,
 * holding the subject without its Re:/Fw: prefix), and Keywords and Comments (RFC 5322
 * §3.6.5, free text about the message). Thread-Index stays outside: it is a timestamp and
 * a GUID in base64 (MS-OXOMSG PidTagConversationIndex), no words of the subject, and
 * Outlook threads the conversation by it.
 */
const SUBJECT_BEARING = /^(thread-topic|keywords|comments)[ \t]*:/i;

/**
 * The outer header fields with the subject hidden: Subject becomes "..." and the fields
 * that repeat it are left out; the entity inside keeps them all (withProtectedHeaders).
 */
export function hideSubject(outer: string[]): string[] {
  return replaceField(outer.filter((f) => !SUBJECT_BEARING.test(f)), 'Subject', '...');
}

/**
 * The entity that goes inside the encryption, with the message's own Subject, From, To,
 * Cc, Date, Message-ID, Reply-To and the fields that repeat the subject copied into its
 * header block and its Content-Type marked `protected-headers="v1"`, so a client that
 * knows the scheme (Thunderbird, Mailpile, K-9) shows the real Subject although the
 * outer one is replaced.
 */
export function withProtectedHeaders(outer: string[], entity: Buffer): Buffer {
  const end = headerEnd(entity);
  const fields = headerFields(entity.subarray(0, end.fields).toString('latin1'));
  const marked = fields.map((f) => (/^content-type[ \t]*:/i.test(f) && !/protected-headers=/i.test(f) ? `${f.replace(/[ \t;]+$/, '')}; protected-headers="v1"` : f));
  const copied = outer.filter((f) => PROTECTED.test(f) || SUBJECT_BEARING.test(f));
  return Buffer.concat([Buffer.from(`${[...copied, ...marked].join('\r\n')}\r\n\r\n`, 'latin1'), entity.subarray(end.body)]);
}
