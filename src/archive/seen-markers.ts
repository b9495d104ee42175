import { close, open, statSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { DirectorySyncer } from '../queue/fs/group-sync.js';
import type { ArchiveLayout } from './layout.js';

const DAY = 86_400_000;
// The callback forms: a FileHandle per marker costs more than the create itself.
const openFd = promisify(open);
const closeFd = promisify(close);

/**
 * Which queue ids a chain has journaled: an empty file per id in a folder per day of
 * receipt, made after the index record is durable. Checking is one stat; making one is
 * a create and a share of a grouped directory fsync. Days older than any retry could
 * come from (`keepMs`) are removed.
 */
export class SeenMarkers {
  private readonly syncers = new Map<string, DirectorySyncer>();

  constructor(
    private readonly layout: ArchiveLayout,
    private readonly chain: string,
    private readonly keepMs: number,
  ) {}

  /**
   * Synchronous on purpose: a lookup in a folder the kernel has cached, where the async
   * form costs far more (a thread-pool round trip, and an exception for every miss).
   * Errors other than "no such file" throw (fail-closed).
   */
  has(id: string, receivedAt: number): boolean {
    return statSync(join(this.layout.seenDir(this.chain, receivedAt), id), { throwIfNoEntry: false }) !== undefined;
  }

  async mark(id: string, receivedAt: number): Promise<void> {
    const dir = this.layout.seenDir(this.chain, receivedAt);
    let syncer = this.syncers.get(dir);
    if (!syncer) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      syncer = new DirectorySyncer(dir);
      this.syncers.set(dir, syncer);
      void this.prune();
    }
    await closeFd(await openFd(join(dir, id), 'a', 0o600));
    await syncer.sync();
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.syncers.values()].map((s) => s.close()));
    this.syncers.clear();
  }

  private async prune(now = Date.now()): Promise<void> {
    const root = join(this.layout.root, 'seen', this.chain);
    for (const day of await readdir(root).catch(() => [] as string[])) {
      const t = Date.parse(`${day}T00:00:00Z`);
      if (Number.isFinite(t) && t + DAY + this.keepMs < now) {
        await rm(join(root, day), { recursive: true, force: true }).catch(() => undefined);
        const dir = join(root, day);
        void this.syncers.get(dir)?.close();
        this.syncers.delete(dir);
      }
    }
  }
}
