import { adoptOrphanOutboxes } from '../events/webhooks-adopt.js';
import { adoptOrphanShards } from '../queue/fs/shards.js';

export interface Adopted {
  /** Queued messages moved in from spool shards no process owns any more. */
  messages: number;
  /** Undelivered webhook events moved in from those shards' outboxes. */
  webhookEvents: number;
}

/**
 * What an earlier run with more processes left in shards this run has no process for
 * (its spool and its webhook outbox; for a single process, the former primary's webhook
 * outbox too) moves into the shards that remain, before any process opens them: the
 * primary does it for its workers, a single process for itself.
 */
export async function adoptOrphans(dataDir: string, count: number): Promise<Adopted> {
  return { messages: await adoptOrphanShards(dataDir, count), webhookEvents: await adoptOrphanOutboxes(dataDir, count) };
}
