import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { adoptOrphanOutboxes } from '../../src/events/webhooks-adopt.js';
import { Outbox } from '../../src/events/webhooks-outbox.js';
import { tempDir } from './helpers.js';

const quiet = { flushIntervalMs: 0, onError: () => undefined };

/**
 * An outbox left by a shard no process owns any more can hold more events than the
 * receiving outbox's write buffer takes at once (100,000 lines): every one must arrive.
 */
describe('webhook outbox adoption', () => {
  it('moves 120,000 undelivered events into the remaining outbox, none lost, and removes the orphan', async () => {
    const dataDir = tempDir();
    const orphanDir = join(dataDir, 'webhooks', '1');
    const { outbox: orphan } = await Outbox.open(orphanDir, quiet);
    const total = 120_000;
    for (let i = 0; i < total; i++) {
      expect(orphan.add({ t: 'event', id: `d${i}`, hook: 'h1', event: 'delivered', at: 1_700_000_000_000 + i, payload: { n: i } }, () => undefined)).toBe(true);
      if ((i + 1) % 10_000 === 0) await orphan.flush();
    }
    await orphan.close();

    expect(await adoptOrphanOutboxes(dataDir, 1)).toBe(total);
    const { outbox: target, pending } = await Outbox.open(join(dataDir, 'webhooks', '0'), quiet);
    await target.close();
    expect(pending.length).toBe(total);
    expect(new Set(pending.map((p) => p.id)).size).toBe(total);
    expect(existsSync(orphanDir)).toBe(false);
  }, 120_000);
});
