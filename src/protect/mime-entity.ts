import { headerEnd, headerFields } from './header-end.js';

/**
 * Splits a message into the headers that stay outside an encrypted or signed wrapper
 * (From, To, Subject, Date, Received, ...) and the MIME entity that goes inside: the
 * Content-* headers with the body, exactly as received. The header section ends where a
 * reader's ends (header-end.ts): body lines sent without the blank line before them are
 * body, and go inside.
 */
export function splitEntity(raw: Buffer): { outer: string[]; entity: Buffer } {
  const end = headerEnd(raw);
  const fields = headerFields(raw.subarray(0, end.fields).toString('latin1'));
  const content = fields.filter((f) => /^content-/i.test(f));
  const outer = fields.filter((f) => !/^(content-|mime-version\s*:)/i.test(f));
  const inner = content.length ? content : ['Content-Type: text/plain; charset=us-ascii'];
  return { outer, entity: Buffer.concat([Buffer.from(`${inner.join('\r\n')}\r\n\r\n`, 'latin1'), raw.subarray(end.body)]) };
}

/** The outer headers with one field replaced (e.g. a protected Subject). */
export function replaceField(outer: string[], name: string, value: string): string[] {
  const re = new RegExp(`^${name}\\s*:`, 'i');
  return outer.some((f) => re.test(f)) ? outer.map((f) => (re.test(f) ? `${name}: ${value}` : f)) : [...outer, `${name}: ${value}`];
}

export function boundary(tag: string): string {
  return `postern-${tag}-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
}

/** Wraps base64 text (no line breaks in it) at 76 characters, each line ending in CRLF. */
export function wrap76(text: string): string {
  // Slices rather than a /.{1,76}/g replace: for a 10 MB body that regex cost more than the encryption.
  const lines: string[] = [];
  for (let i = 0; i < text.length; i += 76) lines.push(text.slice(i, i + 76));
  return lines.length ? `${lines.join('\r\n')}\r\n` : '';
}
