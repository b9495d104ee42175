import { stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { syncDirectory } from '../common/durable-file.js';
import type { Logger } from '../events/logger.js';
import { activeSegments } from './active-segments.js';
import { AdminChainBroken, verifiedAdminState } from './admin-state.js';
import { listedChainProblems } from './chain-listing.js';
import { journalChainNames } from './chain-names.js';
import type { DestroyRecord } from './chain-record.js';
import type { ChainWriter } from './chain-writer.js';
import { walkChain, type VerifyProblem } from './chain-walk.js';
import { ARCHIVE_EVENTS } from './events.js';
import { activeHolds, holdCovers } from './holds.js';
import { readItemHeader, shredEntry } from './item-file.js';
import { containsKeyword } from './keyword.js';
import type { ArchiveReader, CatalogEntry } from './reader.js';
import { removeRewrapLeftovers } from './rotate.js';
import { DAY_MS, retentionOf, shortestRetentionMs, type RetentionConfig } from './retention.js';

export interface PurgeReport {
  dryRun: boolean;
  /** Items old enough that some rule could have expired them. */
  examined: number;
  /** Destroyed now (or, in a dry run, that would be). */
  purged: { id: string; rule: string; days: number; receivedAt: number }[];
  /** Past retention but kept by a legal hold. */
  held: { id: string; holds: string[] }[];
  /** Could not be evaluated (never destroyed): unreadable item, failed keyword check, a record that does not match its item. */
  failed: { id: string; error: string }[];
  /** Journal chains that do not verify: none of their items was looked at (all kept). */
  brokenChains: VerifyProblem[];
  /** Destructions a crash interrupted, finished now. */
  finished: number;
  /** Files removed because every entry in them is destroyed. */
  filesRemoved: number;
}

const exists = (path: string) => stat(path).then(() => true, () => false);
const iso = (t: number) => new Date(t).toISOString();
const headerIntact = (path: string, offset: number) => readItemHeader(path, offset).then(() => true, () => false);

/**
 * Destroys items past their retention that no active legal hold covers: a destruction
 * record first (so an interrupted purge is finished next time, never forgotten), then
 * the entry's key is shredded; a file goes when all its entries are destroyed. Without
 * `chain` nothing is written (dry run). The admin chain is verified first: on any break
 * (a hold deleted or damaged, a release not linked in, the chain deleted) nothing is
 * purged and AdminChainBroken is thrown, since a destruction cannot be undone. Each
 * journal chain is walked too before its items are looked at: one that does not verify
 * (an edited receivedAt would make a young item look expired) keeps all its items.
 * Expiry is decided on the receivedAt sealed in the item's metadata, which must match
 * the record's.
 */
export interface PurgeOptions {
  now?: number | undefined;
  /** Each destruction is logged here (archive.destroyed) as soon as it is recorded, with `actor`. */
  log?: Logger | undefined;
  actor?: string | undefined;
}

export async function purgeExpired(reader: ArchiveReader, retention: RetentionConfig, chain: ChainWriter | undefined, opts: PurgeOptions = {}): Promise<PurgeReport> {
  const now = opts.now ?? Date.now();
  const state = await verifiedAdminState(reader);
  // A journal chain deleted whole: the archive is not what the admin chain says it is.
  const [gone] = await listedChainProblems(reader.layout, state);
  if (gone) throw new AdminChainBroken(gone, 'a journal chain the admin chain lists is missing or was replaced');
  const holds = activeHolds(state);
  const youngest = now - shortestRetentionMs(retention);
  const report: PurgeReport = { dryRun: !chain, examined: 0, purged: [], held: [], failed: [], brokenChains: [], finished: 0, filesRemoved: 0 };
  /** Per file: does it still hold an entry that is not destroyed? */
  const live = new Map<string, boolean>();
  const settle = (entry: CatalogEntry, destroyed: boolean) => live.set(reader.path(entry), (live.get(reader.path(entry)) ?? false) || !destroyed);
  const purgeOne = async (entry: CatalogEntry): Promise<void> => {
    const { id, receivedAt, seq, offset } = entry.record;
    const path = reader.path(entry);
    if (state.destroyed.has(id)) {
      if (chain && (await headerIntact(path, offset))) {
        await shredEntry(path, offset);
        report.finished++;
      }
      settle(entry, true);
      return;
    }
    if (receivedAt > youngest) {
      settle(entry, false);
      return;
    }
    report.examined++;
    let destroyed = false;
    try {
      const meta = await reader.meta(entry);
      if (meta.receivedAt !== receivedAt) throw new Error(`its index record says it was received ${iso(receivedAt)}, its sealed metadata says ${iso(meta.receivedAt)}: the index was edited (run postern archive verify)`);
      const { days, rule } = retentionOf(meta, retention);
      if (meta.receivedAt + days * DAY_MS <= now) {
        let text: Buffer | undefined;
        const hasKeyword = async (k: string) => containsKeyword((text ??= await reader.content(entry)), k);
        const heldBy: string[] = [];
        for (const h of holds) if (await holdCovers(h, meta, hasKeyword)) heldBy.push(h.id);
        if (heldBy.length) report.held.push({ id, holds: heldBy });
        else {
          if (chain) {
            const d = await chain.append<DestroyRecord>({ type: 'destroy', id, chain: entry.chain, itemSeq: seq, receivedAt, rule, days });
            // Logged once recorded: a run that fails later still leaves each destruction on record.
            opts.log?.info({ event: ARCHIVE_EVENTS.destroyed, itemId: id, chain: entry.chain, rule, days, receivedAt: iso(receivedAt), record: d.seq, actor: opts.actor }, 'archive item destroyed');
            await shredEntry(path, offset);
          }
          destroyed = true;
          report.purged.push({ id, rule, days, receivedAt });
        }
      }
    } catch (err) {
      report.failed.push({ id, error: (err as Error).message });
    }
    settle(entry, destroyed);
  };
  for (const name of await journalChainNames(reader.layout)) {
    const walk = await walkChain(reader, name);
    if (walk.problem) {
      report.brokenChains.push(walk.problem);
      continue;
    }
    for await (const record of reader.records(name)) {
      // Records appended after the walk were not verified: the next purge sees them.
      if (record.seq >= walk.records) break;
      if (record.type === 'item') await purgeOne({ chain: name, record });
    }
  }
  if (chain) {
    // A rotation cut short by a crash (its clean-up never ran) left copies of segments
    // with their wrapped item keys: they would keep what was just destroyed readable.
    // Safe here: purge holds the admin chain's lock, which every rotation holds too.
    report.filesRemoved += await removeRewrapLeftovers(reader.layout.itemsDir);
    const active = await activeSegments(reader, reader.layout);
    for (const [path, hasLive] of live) {
      if (hasLive || active.has(path) || !(await exists(path))) continue;
      await unlink(path);
      await syncDirectory(dirname(path));
      report.filesRemoved++;
    }
  }
  return report;
}
