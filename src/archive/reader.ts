import type { Readable } from 'node:stream';
import type { MasterKey } from '../common/envelope-crypto.js';
import { readChainLines } from './chain-lines.js';
import { chainNames } from './chain-names.js';
import { parseRecord, type ChainRecord, type ItemRecord } from './chain-record.js';
import { verifiedAdminState } from './admin-state.js';
import type { AdminState } from './holds.js';
import { itemDataKey, openItemContent, readItemContent, readItemHeader } from './item-file.js';
import { ADMIN_CHAIN, type ArchiveLayout } from './layout.js';
import { openMeta } from './meta-crypto.js';
import type { ItemMeta } from './types.js';

export interface CatalogEntry {
  chain: string;
  record: ItemRecord;
}

/**
 * Read side of the fs archive, for the CLI and the purge job: walks the chains,
 * decrypts an item's metadata or content on demand. Never writes. records() and items()
 * read the logs as they are, unverified: whatever decides on them walks the chain first
 * (purge), or reads through verifiedCatalog (search, export).
 */
export class ArchiveReader {
  constructor(
    readonly layout: ArchiveLayout,
    readonly keys: MasterKey[],
  ) {}

  chainNames(): Promise<string[]> {
    return chainNames(this.layout);
  }

  /** The parseable records of a chain, unverified (walkChain reports bad ones). */
  async *records(chain: string): AsyncGenerator<ChainRecord> {
    for await (const l of readChainLines(this.layout.chainLog(chain))) {
      if (!l.complete) continue;
      try {
        yield parseRecord(l.line);
      } catch {
        // skipped here
      }
    }
  }

  /** Every item record of every journal chain, destroyed ones included. */
  async *items(): AsyncGenerator<CatalogEntry> {
    for (const chain of await this.chainNames()) {
      if (chain === ADMIN_CHAIN) continue;
      for await (const r of this.records(chain)) if (r.type === 'item') yield { chain, record: r };
    }
  }

  /**
   * What the admin chain says (holds, destructions), once it verifies: AdminChainBroken
   * otherwise. Read unverified, a destruction appended by hand would hide an item.
   */
  adminState(): Promise<AdminState> {
    return verifiedAdminState(this);
  }

  path(entry: CatalogEntry): string {
    return this.layout.resolve(entry.record.file);
  }

  /** Runs `fn` with the item's data key, zeroed afterwards. */
  async withKey<T>(entry: CatalogEntry, fn: (dataKey: Buffer, header: Awaited<ReturnType<typeof readItemHeader>>) => Promise<T> | T): Promise<T> {
    const header = await readItemHeader(this.path(entry), entry.record.offset);
    const dataKey = itemDataKey(header, this.keys);
    try {
      return await fn(dataKey, header);
    } finally {
      dataKey.fill(0);
    }
  }

  meta(entry: CatalogEntry): Promise<ItemMeta> {
    return this.withKey(entry, (key) => openMeta(entry.record.meta, key, entry.record.id));
  }

  content(entry: CatalogEntry): Promise<Buffer> {
    return this.withKey(entry, (key, header) => readItemContent(this.path(entry), header, key, entry.record.offset));
  }

  /** The decrypted content as a stream; the key is copied into the decipher, so it is zeroed here. */
  contentStream(entry: CatalogEntry): Promise<Readable> {
    return this.withKey(entry, (key, header) => openItemContent(this.path(entry), header, key, entry.record.offset));
  }
}
