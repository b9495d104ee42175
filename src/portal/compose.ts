import MailComposer from 'nodemailer/lib/mail-composer';

export interface ComposeInput {
  from: string;
  to: string[];
  cc?: string[] | undefined;
  subject: string;
  text: string;
  html?: string | undefined;
  inReplyTo?: string | undefined;
  references?: string | undefined;
  headers?: Record<string, string> | undefined;
  attachments?: { filename: string; content: Buffer; contentType?: string | undefined }[] | undefined;
}

/** Builds an RFC 5322 message with nodemailer's composer (CRLF line ends throughout). */
export async function composeMessage(input: ComposeInput): Promise<Buffer> {
  const node = new MailComposer({
    from: input.from,
    to: input.to,
    cc: input.cc,
    subject: input.subject,
    text: input.text,
    html: input.html,
    inReplyTo: input.inReplyTo,
    references: input.references,
    headers: input.headers,
    attachments: input.attachments,
  } as ConstructorParameters<typeof MailComposer>[0]).compile();
  const raw = await node.build();
  // The composer ends lines with CRLF already; this guards against a stray LF anyway,
  // since the queue and ingress refuse bare line endings.
  return Buffer.from(raw.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}
