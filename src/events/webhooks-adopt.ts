import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { orphanShards } from '../common/orphan-shards.js';
import { Outbox, type OutboxEvent } from './webhooks-outbox.js';

/** Events added to the receiving outbox between waits for its disk: well under its write buffer's bound. */
const ADOPT_STEP = 10_000;

/**
 * Moves the undelivered events of file outboxes no process owns any more
 * (<dataDir>/webhooks/<n> for n ≥ count, left by an earlier run with more workers) into
 * the outbox of shard n mod count, as the spool's shards are (queue/fs/shards.ts), so
 * they are still sent; and those of the primary's outbox (<dataDir>/webhooks/primary:
 * keys.imported, portal.revoked, ... made through the admin API) into shard 0 when this
 * run has no primary (count 1, a single process). Each keeps its delivery id: should a
 * crash come between the copy and the removal, a receiver that de-duplicates on
 * Postern-Delivery sees it once.
 * Returns how many events moved. An outbox another process is writing stops the start.
 */
export async function adoptOrphanOutboxes(dataDir: string, count: number): Promise<number> {
  const root = join(dataDir, 'webhooks');
  const quiet = { flushIntervalMs: 0, onError: () => undefined };
  let moved = 0;
  for (const { dir: from, into } of await orphanShards(root, count, { primary: 'primary' })) {
    const { outbox: orphan, pending } = await Outbox.open(from, quiet);
    try {
      const events: OutboxEvent[] = [];
      // A damaged line cannot be sent from here either (Outbox.open reads it as nothing).
      for (const p of pending) {
        const e = await orphan.read(p).catch(() => undefined);
        // With its backoff as last recorded: it carries on in the outbox it moves into.
        if (e) events.push(p.attempts ? { ...e, attempts: p.attempts, dueAt: p.dueAt } : e);
      }
      if (events.length) {
        const { outbox: target } = await Outbox.open(join(root, String(into)), quiet);
        try {
          // In steps: the outbox's write buffer refuses lines beyond its bound, and a
          // refused event would be lost (the orphan is removed below) yet counted as moved.
          for (const [i, e] of events.entries()) {
            if (!target.add(e, () => undefined)) throw new Error(`webhook outbox ${join(root, String(into))} refused an event moved from ${from}`);
            if ((i + 1) % ADOPT_STEP === 0) await target.flush();
          }
          await target.flush();
        } finally {
          await target.close();
        }
        moved += events.length;
      }
    } finally {
      await orphan.close();
    }
    await rm(from, { recursive: true, force: true });
  }
  return moved;
}
