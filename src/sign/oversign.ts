import type { HeaderField } from 'mailauth/lib/dkim/message-parser.js';

/** Header fields signed when present (RFC 6376 §5.4.1; mailauth's default list). */
const SIGNED = new Set(
  [
    'From', 'Sender', 'Reply-To', 'Subject', 'Date', 'Message-ID', 'To', 'Cc', 'MIME-Version', 'Content-Type', 'Content-Transfer-Encoding',
    'Content-ID', 'Content-Description', 'Resent-Date', 'Resent-From', 'Resent-Sender', 'Resent-To', 'Resent-Cc', 'Resent-Message-ID',
    'In-Reply-To', 'References', 'List-Id', 'List-Help', 'List-Unsubscribe', 'List-Subscribe', 'List-Post', 'List-Owner', 'List-Archive', 'BIMI-Selector',
  ].map((n) => n.toLowerCase()),
);

/**
 * Header fields listed in h= once more than they occur (RFC 6376 §5.4.2, §8.15): a
 * verifier takes instances from the bottom up and hashes a missing one as empty, so a
 * From, Subject, Reply-To or Cc that a relay or replayer puts above the signed ones (or
 * adds where there was none) breaks the signature instead of being shown to the reader
 * under the signer's name.
 */
const OVERSIGNED = ['From', 'To', 'Cc', 'Subject', 'Reply-To', 'In-Reply-To', 'References', 'MIME-Version', 'Content-Type'];

/**
 * Oversigned only when present: a relay on the way may add a Date or Message-ID that the
 * message lacks (RFC 6409 §8.2–8.3; some smarthosts do), and the absence of one signed
 * would then break every such message; adding one where it is missing gains a forger little.
 */
const OVERSIGNED_WHEN_PRESENT = ['Date', 'Message-ID'];

/**
 * What a signature covers: `headers`, the signed fields in the order a verifier will take
 * them (bottom up), and `keys`, the h= tag: their names, then one more of each oversigned
 * name, which no field answers.
 */
export function signedFields(parsed: HeaderField[]): { keys: string; headers: HeaderField[] } {
  const headers = parsed.filter((h) => h.key !== null && SIGNED.has(h.key)).reverse();
  const present = new Set(headers.map((h) => h.key));
  const extra = [...OVERSIGNED, ...OVERSIGNED_WHEN_PRESENT.filter((n) => present.has(n.toLowerCase()))];
  return { keys: [...headers.map((h) => h.casedKey ?? (h.key as string)), ...extra].join(': '), headers };
}
