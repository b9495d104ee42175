import libmime from 'libmime';
import { inspectMessage } from '../inspect/inspector.js';
import { headerEnd, headerFields } from '../protect/header-end.js';
import type { MessageFacts } from '../types.js';
import type { Policy } from './schema.js';

export interface ExplainMessageInput {
  from: string;
  to: string[];
  /** Replaces the message's subject (or is the subject of the message made up). */
  subject?: string | undefined;
  /** A whole message (RFC 5322) to inspect. */
  message?: Buffer | undefined;
  /** The size `size` rules see, in bytes (default: the message's own). */
  size?: number | undefined;
}

/**
 * The facts `policy explain` decides on, found as the gateway finds them: the message
 * (the one given, or one made of From, To and Subject) is inspected whole, by the same
 * inspectMessage, so the detectors scan the subject too. A subject given beside a
 * message replaces the message's own Subject field before inspection: what is explained
 * is the message with that subject, detectors and tag included. A size given stands
 * for the message's: "what happens to a 30 MB message?" without making one.
 */
export async function explainFacts(policy: Policy, input: ExplainMessageInput): Promise<MessageFacts> {
  const raw = explainMessage(input);
  return inspectMessage(raw, input.size ?? raw.length, policy.detectors);
}

/** The message to inspect (exported for tests). */
export function explainMessage(input: ExplainMessageInput): Buffer {
  if (!input.message) {
    const head = [`From: ${oneLine(input.from)}`, `To: ${input.to.map(oneLine).join(', ')}`];
    if (input.subject !== undefined) head.push(subjectField(input.subject));
    return Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1');
  }
  if (input.subject === undefined) return input.message;
  const m = input.message;
  // The header section as the gateway's inspection splits it (protect/header-end.ts): a
  // "Subject:" line among body lines left in the header section (no blank line) is body
  // text, kept for the detectors, as the gateway keeps it.
  const end = headerEnd(m).fields;
  const fields = headerFields(m.toString('latin1', 0, end)).filter((f) => !/^subject[ \t]*:/i.test(f));
  return Buffer.concat([Buffer.from([subjectField(input.subject), ...fields].join('\r\n') + '\r\n', 'latin1'), m.subarray(end)]);
}

/** A Subject field, RFC 2047-encoded when not ASCII (latin1 string of the field's bytes). */
function subjectField(subject: string): string {
  const value = oneLine(subject);
  // eslint-disable-next-line no-control-regex
  const encoded = /^[\x00-\x7f]*$/.test(value) ? value : libmime.encodeWords(value, 'Q', 52);
  return Buffer.from(`Subject: ${encoded}`, 'utf8').toString('latin1');
}

/** No line breaks in a header value made from an argument (no header injection). */
function oneLine(value: string): string {
  return value.replace(/[\r\n]+/g, ' ');
}
