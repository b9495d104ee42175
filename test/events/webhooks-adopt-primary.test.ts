import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { adoptOrphanOutboxes } from '../../src/events/webhooks-adopt.js';
import { Outbox } from '../../src/events/webhooks-outbox.js';
import { tempDir } from './helpers.js';

const quiet = { flushIntervalMs: 0, onError: () => undefined };

/** An outbox holding `ids` undelivered, as a process left it. */
async function leftOutbox(dir: string, ids: string[]): Promise<void> {
  const { outbox } = await Outbox.open(dir, quiet);
  for (const [i, id] of ids.entries()) outbox.add({ t: 'event', id, hook: 'h1', event: 'keys.imported', at: 1_700_000_000_000 + i, payload: { n: i } }, () => undefined);
  await outbox.close();
}

async function pendingIds(dir: string): Promise<string[]> {
  const { outbox, pending } = await Outbox.open(dir, quiet);
  await outbox.close();
  return pending.map((p) => p.id).sort();
}

/**
 * With workers > 1 the primary keeps an outbox of its own (<dataDir>/webhooks/primary:
 * the admin API's keys.*, portal.revoked). Back to one process there is no primary: its
 * undelivered events must move into shard 0, with their delivery ids, not stay unsent.
 */
describe('adoption of the primary\'s webhook outbox', () => {
  it('a single process (count 1) takes over the primary\'s undelivered events into shard 0 and removes its outbox', async () => {
    const dataDir = tempDir();
    const primary = join(dataDir, 'webhooks', 'primary');
    await leftOutbox(primary, ['p1', 'p2']);
    await leftOutbox(join(dataDir, 'webhooks', '1'), ['w1']);
    expect(await adoptOrphanOutboxes(dataDir, 1)).toBe(3);
    expect(await pendingIds(join(dataDir, 'webhooks', '0'))).toEqual(['p1', 'p2', 'w1']);
    expect(existsSync(primary)).toBe(false);
  });

  it('with a primary (count > 1) its outbox stays its own', async () => {
    const dataDir = tempDir();
    const primary = join(dataDir, 'webhooks', 'primary');
    await leftOutbox(primary, ['p1']);
    expect(await adoptOrphanOutboxes(dataDir, 2)).toBe(0);
    expect(await pendingIds(primary)).toEqual(['p1']);
  });
});
