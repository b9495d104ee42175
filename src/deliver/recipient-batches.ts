import { classifyReply } from './classify.js';
import type { PooledConnection } from './pool.js';
import type { RecipientReply, TransactionResult } from './transaction.js';

/** One transaction's recipients and what came of it. */
export interface Batch {
  rcpts: string[];
  result: TransactionResult;
}

/**
 * The recipients of one delivery at one address, in transactions of at most
 * delivery.maxRecipientsPerTransaction on one pooled connection (RFC 5321 §4.5.3.1.10: a
 * server must take 100 recipients and may refuse more; Postfix's
 * smtp_destination_recipient_limit). Those a server refuses as too many (452, 4.5.3) go at
 * once in a further transaction on the same connection: nothing failed for them, and left
 * to the retry they would wait out its backoff, once for every hundred. That goes on while
 * each transaction delivers someone, so it ends; one that delivers nobody leaves them their
 * reply. A transaction the server refused is ended with RSET before the next; when the
 * connection cannot carry another, the recipients not sent get a local failure, and the
 * next address of the route takes them.
 *
 * `send` runs one transaction (it opens the message each time). Each recipient's reply is
 * that of the last transaction it was in.
 */
export async function sendInBatches(pc: PooledConnection, rcpts: string[], send: (to: string[]) => Promise<TransactionResult>): Promise<Batch[]> {
  const max = pc.limits.maxRecipientsPerTransaction;
  const queue: string[][] = [];
  for (let i = 0; i < rcpts.length; i += max) queue.push(rcpts.slice(i, i + max));
  const batches: Batch[] = [];
  for (let to = queue.shift(); to; to = queue.shift()) {
    const previous = batches[batches.length - 1]?.result;
    if (previous && !previous.reusable && !(await pc.reset())) {
      const rest = [to, ...queue].flat();
      batches.push({ rcpts: rest, result: notSent(rest) });
      break;
    }
    const result = await send(to);
    batches.push({ rcpts: to, result });
    const tooMany = result.replies.filter(refusedAsTooMany).map((r) => r.rcpt);
    if (tooMany.length && result.replies.some((r) => r.ok)) queue.unshift(tooMany);
  }
  return batches;
}

/** The final reply of every recipient: the last transaction it was in decides. */
export function finalReplies(batches: Batch[]): { reply: RecipientReply; result: TransactionResult }[] {
  const last = new Map<string, { reply: RecipientReply; result: TransactionResult }>();
  for (const b of batches) for (const reply of b.result.replies) last.set(reply.rcpt, { reply, result: b.result });
  return [...last.values()];
}

/** A RCPT TO refused because the transaction has enough recipients (RFC 5321 §4.5.3.1.10; 452 or 552, 4.5.3). */
function refusedAsTooMany(reply: RecipientReply): boolean {
  return !reply.ok && Boolean(reply.atRcpt) && classifyReply(reply.response).category === 'too-many-recipients';
}

function notSent(rcpts: string[]): TransactionResult {
  const response = 'not sent: the connection could not carry another transaction after the previous one';
  return { replies: rcpts.map((rcpt) => ({ rcpt, ok: false, response, local: 'network' })), reusable: false, transmitMs: 0 };
}
