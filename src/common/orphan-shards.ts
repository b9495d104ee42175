import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** A per-process directory (<root>/<n>) that no process of this run owns, and the shard that takes it over. */
export interface OrphanShard {
  dir: string;
  into: number;
}

/**
 * The numbered shard directories under `root` (spool/, webhooks/) left by an earlier run
 * with more than `count` processes: n ≥ count goes into shard n mod count. None when
 * `root` does not exist; other names (webhooks/primary) are not shards.
 */
export async function orphanShards(root: string, count: number): Promise<OrphanShard[]> {
  const names = await readdir(root).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  return names.filter((name) => /^\d+$/.test(name) && Number(name) >= count).map((name) => ({ dir: join(root, name), into: Number(name) % count }));
}
