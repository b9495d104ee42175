import { FsSpool } from '../../src/queue/fs/spool.js';
import { spoolShardDir } from '../../src/queue/fs/shards.js';
import { newQueueId } from '../../src/queue/ids.js';

/**
 * Queues `n` messages straight into spool shard `shard` of `dataDir`, as its worker would
 * have (no gateway may be running on it: the spool is locked while it is open). Returns
 * their queue ids.
 */
export async function queueInShard(dataDir: string, shard: number, n: number): Promise<string[]> {
  const q = new FsSpool(spoolShardDir(dataDir, shard));
  await q.open();
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = newQueueId();
    const w = await q.receive({ id, receivedAt: Date.now(), mailFrom: 'a@client.test', rcptTo: ['b@dest.test'], client: { ip: '127.0.0.1', helo: 'c', sessionId: 's' }, bodyType: '7bit', smtpUtf8: false });
    await w.write(Buffer.from(`Subject: shard ${shard} #${i}\r\n\r\nbody\r\n`));
    await w.commit();
    ids.push(id);
  }
  await q.close();
  return ids;
}
