import { mkdir, readdir, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import type { MasterKey } from '../common/envelope-crypto.js';
import { DirectorySyncer } from '../queue/fs/group-sync.js';
import type { ChainWriter } from './chain-writer.js';
import type { ItemRecord } from './chain-record.js';
import { encryptEntry, writeItemFile, type ItemHeader } from './item-file.js';
import type { ArchiveLayout } from './layout.js';
import { sealMeta } from './meta-crypto.js';
import { recordedItems } from './recent-records.js';
import { SegmentAppender } from './segment-appender.js';
import { RecentIds } from './recent-ids.js';
import type { ItemMeta, JournalSink, PreparedItem } from './types.js';

/** Items up to this size are appended to segments; larger ones get a file each (as the spool does). */
const SMALL_ITEM = 256 * 1024;

async function toBuffer(body: Buffer | Readable): Promise<Buffer> {
  if (Buffer.isBuffer(body)) return body;
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Encrypted items under <dataDir>/archive. A small item costs one AES-GCM pass, a share
 * of a grouped segment write + fdatasync and a share of a grouped index append; a large
 * one is streamed into its own file under tmp/ and renamed into items/ once recorded.
 * An item is stored once its index record is durable; the rename is redone by recover()
 * if a crash loses it, and the recent ids (see RecentIds) keep a queue id from being
 * stored twice.
 */
export class FsSink implements JournalSink {
  readonly name = 'fs';
  private readonly tmpDir: string;
  private readonly tmpSync: DirectorySyncer;
  private readonly inflight = new Map<string, Promise<void>>();
  private readonly seen = new RecentIds();
  /** Recorded large items whose rename into items/ failed: tried again with each store. */
  private readonly unplaced = new Map<string, string>();

  private constructor(
    private readonly layout: ArchiveLayout,
    private readonly chain: ChainWriter,
    private readonly segments: SegmentAppender,
    private readonly keys: MasterKey[],
  ) {
    this.tmpDir = layout.tmpDir(chain.name);
    this.tmpSync = new DirectorySyncer(this.tmpDir);
  }

  static async open(layout: ArchiveLayout, chain: ChainWriter, keys: MasterKey[]): Promise<FsSink> {
    return new FsSink(layout, chain, await SegmentAppender.open(layout, chain.name), keys);
  }

  /**
   * After a crash: recorded large items still in tmp/ go into items/, unrecorded ones are
   * removed; the ids recorded shortly before it are remembered again.
   */
  async recover(): Promise<{ placed: number; removed: number }> {
    await mkdir(this.tmpDir, { recursive: true, mode: 0o700 });
    const names = (await readdir(this.tmpDir)).filter((n) => n.endsWith('.item'));
    const mtimes = await Promise.all(names.map(async (n) => (await stat(join(this.tmpDir, n))).mtimeMs));
    const recorded = await recordedItems(this.layout.chainLog(this.chain.name), Math.min(Date.now() - RecentIds.WINDOW_MS, ...mtimes));
    let placed = 0;
    for (const name of names) {
      const tmp = join(this.tmpDir, name);
      const rec = recorded.get(name.slice(0, -'.item'.length));
      if (rec) {
        await this.place(tmp, this.layout.resolve(rec.file));
        placed++;
      } else await unlink(tmp);
    }
    // Remembered as of now: a message cut short by the crash is retried soon after the start.
    for (const r of recorded.values()) this.seen.add(r.id);
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
    await this.segments.close();
    await this.tmpSync.close();
    await this.chain.close();
  }

  private async storeOnce(item: PreparedItem): Promise<void> {
    const { id, receivedAt } = item.envelope;
    for (const [tmp, final] of this.unplaced) await this.place(tmp, final).then(() => this.unplaced.delete(tmp), () => undefined);
    if (this.seen.has(id)) return;
    const master = this.keys[0] as MasterKey;
    const body = await item.openBody();
    let tmp: string | undefined;
    let file: string | undefined;
    try {
      if ((Buffer.isBuffer(body) ? body.length : item.envelope.size) <= SMALL_ITEM) {
        const e = encryptEntry(id, master, await toBuffer(body));
        const meta = this.sealed(item.meta, e.dataKey);
        await this.record(item, e.header, await this.segments.append(e.pieces), meta);
      } else {
        tmp = join(this.tmpDir, `${id}.item`);
        const e = await writeItemFile(tmp, id, master, Buffer.isBuffer(body) ? Readable.from([body]) : body);
        const meta = this.sealed(item.meta, e.dataKey);
        await this.tmpSync.sync();
        file = this.layout.itemFile(receivedAt, id);
        await this.record(item, e.header, { file, offset: 0 }, meta);
      }
    } catch (err) {
      // Whatever failed, and however far the body was read: its file (the spool's) is let go.
      if (!Buffer.isBuffer(body)) body.destroy();
      throw err;
    }
    // From here the item is stored: nothing below may lead to storing it again.
    this.seen.add(id);
    // Not fsynced: until the rename is durable the item is in tmp/ and recover() redoes it.
    // A failed rename does not fail the journal step (the item is stored); it is retried.
    if (tmp && file) {
      const final = this.layout.resolve(file);
      await this.place(tmp, final).catch(() => this.unplaced.set(tmp, final));
    }
  }

  private sealed(meta: ItemMeta, dataKey: Buffer): string {
    try {
      return sealMeta(meta, dataKey);
    } finally {
      dataKey.fill(0);
    }
  }

  private async record(item: PreparedItem, header: ItemHeader, loc: { file: string; offset: number }, meta: string): Promise<void> {
    const { id, receivedAt } = item.envelope;
    await this.chain.append<ItemRecord>({ type: 'item', id, receivedAt, size: header.size, file: loc.file, offset: loc.offset, iv: header.iv, tag: header.tag, meta });
  }

  private async place(tmp: string, final: string): Promise<void> {
    await mkdir(dirname(final), { recursive: true, mode: 0o700 });
    await rename(tmp, final);
  }
}
