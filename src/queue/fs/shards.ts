import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { orphanShards } from '../../common/orphan-shards.js';
import { isQueueId } from '../ids.js';
import { lockHolder } from './lock.js';
import { FsSpool } from './spool.js';

/** <dataDir>/spool/<n>: the spool of gateway process n. */
export function spoolShardDir(dataDir: string, shard: number): string {
  return join(dataDir, 'spool', String(shard));
}

/**
 * Before the worker processes start: messages in shards that no process will own (the
 * worker count went down since the last run) move into shard (n mod count), so nothing
 * is left behind. Runs while no worker is up; moving a file is a rename, so each message
 * is always in exactly one shard.
 */
export async function adoptOrphanShards(dataDir: string, count: number): Promise<number> {
  const root = join(dataDir, 'spool');
  await mkdir(root, { recursive: true });
  let moved = 0;
  for (const { dir: from, into } of await orphanShards(root, count)) {
    const holder = await lockHolder(join(from, 'postern.lock'));
    if (holder) throw new Error(`spool shard ${from} is in use by running process ${holder}: another Postern instance uses this dataDir`);
    // Log segments cannot be merged into another shard's log: their messages first move
    // into files of their own, which can.
    const orphan = new FsSpool(from, { lockWaitMs: 0 });
    await orphan.open();
    await orphan.moveAllToFiles();
    await orphan.close();
    const to = spoolShardDir(dataDir, into);
    for (const sub of ['msg', 'state', 'corrupt']) {
      const src = join(from, sub);
      if (!(await stat(src).catch(() => undefined))) continue;
      await mkdir(join(to, sub), { recursive: true });
      for (const file of await readdir(src)) {
        if (sub !== 'corrupt' && !isQueueId(file.replace(/\.json$/, ''))) continue;
        await rename(join(src, file), join(to, sub, file));
        if (sub === 'msg') moved++;
      }
    }
    await rm(from, { recursive: true, force: true });
  }
  return moved;
}
