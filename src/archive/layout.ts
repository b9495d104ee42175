import { join, relative } from 'node:path';

/**
 * Where the fs sink keeps things, under <dataDir>/archive:
 *
 *   chains/<name>.log    hash-chained index records, one JSON line each (append-only)
 *   chains/<name>.head   the last record's seq and hash (truncation check)
 *   chains/<name>.lock   pid of the one process that appends to that chain
 *   items/YYYY/MM/DD/<queue id>.item   one encrypted item (date = received, UTC)
 *   tmp/<name>/          items being written by that chain's writer
 *   sent/<sink>/YYYY-MM-DD/<queue id>  which queue ids an smtp sink already sent
 *   master.key           development master key (only when none is configured)
 */
export class ArchiveLayout {
  readonly chainsDir: string;
  readonly itemsDir: string;

  constructor(readonly root: string) {
    this.chainsDir = join(root, 'chains');
    this.itemsDir = join(root, 'items');
  }

  static forDataDir(dataDir: string): ArchiveLayout {
    return new ArchiveLayout(join(dataDir, 'archive'));
  }

  chainLog(name: string): string {
    return join(this.chainsDir, `${name}.log`);
  }

  tmpDir(chain: string): string {
    return join(this.root, 'tmp', chain);
  }

  sentDir(sink: string): string {
    return join(this.root, 'sent', sink);
  }

  get masterKeyFile(): string {
    return join(this.root, 'master.key');
  }

  /** Path of an item relative to the archive root, as index records store it. */
  itemFile(receivedAt: number, id: string): string {
    const d = new Date(receivedAt).toISOString();
    return relative(this.root, join(this.itemsDir, d.slice(0, 4), d.slice(5, 7), d.slice(8, 10), `${id}.item`));
  }

  resolve(relativePath: string): string {
    return join(this.root, relativePath);
  }
}

/** The chain a gateway process appends journal items to: one per spool shard. */
export const journalChainName = (shard: number) => `journal-${shard}`;
/** Holds, releases, destructions and key rotations: written by the CLI and the purge job. */
export const ADMIN_CHAIN = 'admin';
