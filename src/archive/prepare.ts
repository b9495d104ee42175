import type { Readable } from 'node:stream';
import { headerFacts, readHead } from './header-facts.js';
import type { ItemMeta, JournalItem, PreparedItem, RecipientEntry } from './types.js';

/** Looks at an item once (its header block) for the index, whatever number of sinks. */
export async function prepareItem(item: JournalItem): Promise<PreparedItem> {
  const { envelope, decisions, body } = item;
  const openBody = (): Promise<Buffer | Readable> => (Buffer.isBuffer(body) ? Promise.resolve(body) : body());
  const facts = headerFacts(await readHead(await openBody()));
  const byRcpt = new Map(decisions.map((d) => [d.rcpt, d]));
  const held = new Map((item.held ?? []).map((h) => [h.rcpt, h]));
  const meta: ItemMeta = {
    id: envelope.id,
    receivedAt: envelope.receivedAt,
    mailFrom: envelope.mailFrom,
    rcptTo: envelope.rcptTo,
    subject: facts.subject,
    messageId: facts.messageId,
    size: envelope.size,
    recipients: envelope.rcptTo.map((rcpt): RecipientEntry => {
      // Never guessed: the archive is evidence of how each recipient was protected.
      const d = byRcpt.get(rcpt);
      const h = held.get(rcpt);
      if (h) return { rcpt, method: h.result, ruleId: d?.ruleId ?? 'none', reason: h.reason };
      if (d?.method) return { rcpt, method: d.method, ruleId: d.ruleId };
      if (d) return { rcpt, method: 'none', ruleId: d.ruleId, reason: 'no method had been chosen for this recipient when the message was journaled' };
      return { rcpt, method: 'none', ruleId: 'none', reason: 'no policy decision for this recipient when the message was journaled' };
    }),
    categories: item.categories ?? [],
    client: { ip: envelope.client.ip, helo: envelope.client.helo },
  };
  return { envelope, meta, openBody };
}
