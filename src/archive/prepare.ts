import type { Readable } from 'node:stream';
import { headerFacts, readHead } from './header-facts.js';
import type { ItemMeta, JournalItem, PreparedItem } from './types.js';

/** Looks at an item once (its header block) for the index, whatever number of sinks. */
export async function prepareItem(item: JournalItem): Promise<PreparedItem> {
  const { envelope, decisions, body } = item;
  const openBody = (): Promise<Buffer | Readable> => (Buffer.isBuffer(body) ? Promise.resolve(body) : body());
  const facts = headerFacts(await readHead(await openBody()));
  const byRcpt = new Map(decisions.map((d) => [d.rcpt, d]));
  const meta: ItemMeta = {
    id: envelope.id,
    receivedAt: envelope.receivedAt,
    mailFrom: envelope.mailFrom,
    rcptTo: envelope.rcptTo,
    subject: facts.subject,
    messageId: facts.messageId,
    size: envelope.size,
    recipients: envelope.rcptTo.map((rcpt) => {
      const d = byRcpt.get(rcpt);
      return { rcpt, method: d ? (d.method ?? d.candidates[0] ?? d.onNoMethod) : 'tls', ruleId: d?.ruleId ?? 'none' };
    }),
    categories: item.categories ?? [],
    client: { ip: envelope.client.ip, helo: envelope.client.helo },
  };
  return { envelope, meta, openBody };
}
