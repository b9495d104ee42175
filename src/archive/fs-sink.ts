import { mkdir, readdir, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { MasterKey } from '../common/envelope-crypto.js';
import { DirectorySyncer } from '../queue/fs/group-sync.js';
import type { ChainWriter } from './chain-writer.js';
import type { ItemRecord } from './chain-record.js';
import { writeItemFile } from './item-file.js';
import type { ArchiveLayout } from './layout.js';
import { sealMeta } from './meta-crypto.js';
import { recordedIds } from './recent-records.js';
import type { JournalSink, PreparedItem } from './types.js';

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Encrypted items under <dataDir>/archive. Per item: one AES-GCM pass into tmp/, one
 * fdatasync of the item, a grouped fsync of tmp/, one grouped append to the index;
 * then the item is renamed into items/. An item is "stored" once its index record is
 * durable; the rename after it is redone by recover() if a crash loses it, which is
 * also why the file in items/ is what makes a second record() of a queue id a no-op.
 */
export class FsSink implements JournalSink {
  readonly name = 'fs';
  private readonly tmpDir: string;
  private readonly tmpSync: DirectorySyncer;
  private readonly inflight = new Map<string, Promise<void>>();
  /** Recorded in the index, rename into items/ not done yet (it failed). */
  private readonly unplaced = new Map<string, { tmp: string; final: string }>();

  constructor(
    private readonly layout: ArchiveLayout,
    private readonly chain: ChainWriter,
    private readonly keys: MasterKey[],
  ) {
    this.tmpDir = layout.tmpDir(chain.name);
    this.tmpSync = new DirectorySyncer(this.tmpDir);
  }

  /** Finishes what a crash interrupted: recorded items go into items/, the rest is removed. */
  async recover(): Promise<{ placed: number; removed: number }> {
    await mkdir(this.tmpDir, { recursive: true, mode: 0o700 });
    const names = (await readdir(this.tmpDir)).filter((n) => n.endsWith('.item'));
    if (!names.length) return { placed: 0, removed: 0 };
    const oldest = Math.min(...(await Promise.all(names.map(async (n) => (await stat(join(this.tmpDir, n))).mtimeMs))));
    const recorded = await recordedIds(this.layout.chainLog(this.chain.name), oldest);
    let placed = 0;
    for (const name of names) {
      const tmp = join(this.tmpDir, name);
      const rec = recorded.get(name.slice(0, -'.item'.length));
      if (rec) {
        await this.place(rec.id, { tmp, final: this.layout.resolve(rec.file) });
        placed++;
      } else {
        await unlink(tmp);
      }
    }
    return { placed, removed: names.length - placed };
  }

  store(item: PreparedItem): Promise<void> {
    const id = item.envelope.id;
    const running = this.inflight.get(id);
    if (running) return running;
    const p = this.storeOnce(item).finally(() => this.inflight.delete(id));
    this.inflight.set(id, p);
    return p;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.inflight.values()]);
    await this.tmpSync.close();
    await this.chain.close();
  }

  private async storeOnce(item: PreparedItem): Promise<void> {
    const { id, receivedAt } = item.envelope;
    const unplaced = this.unplaced.get(id);
    if (unplaced) return this.place(id, unplaced);
    const file = this.layout.itemFile(receivedAt, id);
    const final = this.layout.resolve(file);
    if (await exists(final)) return;
    const tmp = join(this.tmpDir, `${id}.item`);
    const { header, dataKey } = await writeItemFile(tmp, id, this.keys[0] as MasterKey, await item.openBody());
    let meta: string;
    try {
      meta = sealMeta(item.meta, dataKey);
    } finally {
      dataKey.fill(0);
    }
    await this.tmpSync.sync();
    await this.chain.append<ItemRecord>({ type: 'item', id, receivedAt, size: header.size, file, iv: header.iv, tag: header.tag, meta });
    this.unplaced.set(id, { tmp, final });
    await this.place(id, { tmp, final });
  }

  /**
   * Not fsynced: until the rename is durable the item is still in tmp/ and recover()
   * redoes it, so durability never depends on it.
   */
  private async place(id: string, p: { tmp: string; final: string }): Promise<void> {
    await mkdir(dirname(p.final), { recursive: true, mode: 0o700 });
    await rename(p.tmp, p.final);
    this.unplaced.delete(id);
  }
}
