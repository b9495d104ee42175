import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** A per-process directory (<root>/<n>) that no process of this run owns, and the shard that takes it over. */
export interface OrphanShard {
  dir: string;
  into: number;
}

/**
 * The per-process directories under `root` (spool/, webhooks/) that no process of this
 * run owns: the numbered shards left by an earlier run with more than `count` processes
 * (n ≥ count goes into shard n mod count), and, when `primary` names the directory a
 * primary process keeps there (webhooks/primary), that one too if this run has no
 * primary: a single process (count 1) is its own primary, so it goes into shard 0. With
 * count > 1 the primary runs and owns it. None when `root` does not exist.
 */
export async function orphanShards(root: string, count: number, o: { primary?: string } = {}): Promise<OrphanShard[]> {
  const names = await readdir(root).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  const shards = names.filter((name) => /^\d+$/.test(name) && Number(name) >= count).map((name) => ({ dir: join(root, name), into: Number(name) % count }));
  const primary = count === 1 && o.primary !== undefined && names.includes(o.primary) ? [{ dir: join(root, o.primary), into: 0 }] : [];
  return [...shards, ...primary];
}
