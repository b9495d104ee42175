import type { Readable } from 'node:stream';
import type { ItemMeta } from './types.js';

/**
 * An envelope-journal report, as Exchange journaling sends one: the envelope (who sent
 * it, to whom it really went and how, which may differ from the To/Cc headers) in a
 * first text part, the original as received attached as message/rfc822. The report's
 * own Subject and headers carry no content of the original.
 */
export function journalReport(meta: ItemMeta, original: Buffer | Readable, opts: { from: string; to: string; hostname: string }) {
  const lines = [
    `Sender: ${meta.mailFrom || '<>'}`,
    `Subject: ${meta.subject}`,
    `Message-Id: ${meta.messageId ?? ''}`,
    `Queue-Id: ${meta.id}`,
    `Received-At: ${new Date(meta.receivedAt).toISOString()}`,
    `Client: ${meta.client.ip} (${meta.client.helo})`,
    `Size: ${meta.size}`,
    `Categories: ${meta.categories.join(', ')}`,
    ...meta.recipients.map((r) => `To: ${r.rcpt}, Method: ${r.method}, Rule: ${r.ruleId}${r.reason ? `, Reason: ${r.reason}` : ''}`),
  ];
  return {
    envelope: { from: opts.from, to: [opts.to] },
    from: opts.from,
    to: opts.to,
    subject: `Journal report ${meta.id}`,
    // The same report id on every attempt, so an archive can drop a duplicate.
    messageId: `<journal.${meta.id}@${opts.hostname}>`,
    headers: { 'X-Postern-Journal-Report': '1', 'X-Postern-Queue-Id': meta.id },
    text: `${lines.join('\r\n')}\r\n`,
    attachments: [{ filename: 'original.eml', contentType: 'message/rfc822', contentDisposition: 'attachment' as const, content: original }],
  };
}
