import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';

/**
 * Where the fs sink keeps things, under <dataDir>/archive:
 *
 *   chains/<name>.log    hash-chained index records, one JSON line each (append-only)
 *   chains/<name>.head   the last record's seq and hash (truncation check)
 *   chains/<name>.lock   pid of the one process that appends to that chain
 *   items/YYYY/MM/DD/<name>.<n>.seg    encrypted entries of small items, back to back (date = written)
 *   items/YYYY/MM/DD/<queue id>.item   one large item (date = received)
 *   tmp/<name>/          large items being written by that chain's writer
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

  /** Number of a segment file of `chain`, from its name. */
  segmentNumber(chain: string, name: string): number | undefined {
    const m = /^(.+)\.(\d+)\.seg$/.exec(name);
    return m && m[1] === chain ? Number(m[2]) : undefined;
  }

  sentDir(sink: string): string {
    return join(this.root, 'sent', sink);
  }

  get masterKeyFile(): string {
    return join(this.root, 'master.key');
  }

  /** A large item's file, relative to the archive root (as index records store paths). */
  itemFile(receivedAt: number, id: string): string {
    return relative(this.root, join(this.dayDir(receivedAt), `${id}.item`));
  }

  segmentFile(chain: string, n: number, writtenAt: number): string {
    return relative(this.root, join(this.dayDir(writtenAt), `${chain}.${n}.seg`));
  }

  dayDir(t: number): string {
    const d = new Date(t).toISOString();
    return join(this.itemsDir, d.slice(0, 4), d.slice(5, 7), d.slice(8, 10));
  }

  resolve(relativePath: string): string {
    return join(this.root, relativePath);
  }
}

/** The chain a gateway process appends journal items to: one per spool shard. */
export const journalChainName = (shard: number) => `journal-${shard}`;
/** Holds, releases, destructions and key rotations: written by the CLI and the purge job. */
export const ADMIN_CHAIN = 'admin';

/** Everything below `dir` (the items/ tree) that is not a folder, depth first; nothing when it does not exist. */
export async function* filesUnder(dir: string): AsyncGenerator<{ path: string; regular: boolean }> {
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, e.name);
    if (e.isDirectory()) yield* filesUnder(path);
    else yield { path, regular: e.isFile() };
  }
}
