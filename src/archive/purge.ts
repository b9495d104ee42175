import { stat } from 'node:fs/promises';
import type { DestroyRecord } from './chain-record.js';
import type { ChainWriter } from './chain-writer.js';
import { activeHolds, holdCovers } from './holds.js';
import { shredItemFile } from './item-file.js';
import { containsKeyword } from './keyword.js';
import type { ArchiveReader } from './reader.js';
import { DAY_MS, retentionOf, shortestRetentionMs, type RetentionConfig } from './retention.js';

export interface PurgeReport {
  dryRun: boolean;
  /** Items old enough that some rule could have expired them. */
  examined: number;
  /** Destroyed now (or, in a dry run, that would be). */
  purged: { id: string; rule: string; days: number; receivedAt: number }[];
  /** Past retention but kept by a legal hold. */
  held: { id: string; holds: string[] }[];
  /** Could not be evaluated (never destroyed): unreadable item, failed keyword check. */
  failed: { id: string; error: string }[];
  /** Destructions a crash interrupted, finished now. */
  finished: number;
}

/**
 * Destroys items past their retention that no active legal hold covers: a destruction
 * record first (so an interrupted purge is finished next time, never forgotten), then
 * the item is crypto-shredded. Without `chain` nothing is written (dry run).
 */
export async function purgeExpired(reader: ArchiveReader, retention: RetentionConfig, chain: ChainWriter | undefined, now = Date.now()): Promise<PurgeReport> {
  const state = await reader.adminState();
  const holds = activeHolds(state);
  const youngest = now - shortestRetentionMs(retention);
  const report: PurgeReport = { dryRun: !chain, examined: 0, purged: [], held: [], failed: [], finished: 0 };
  for await (const entry of reader.items()) {
    const { id, receivedAt, seq } = entry.record;
    const path = reader.path(entry);
    if (state.destroyed.has(id)) {
      if (chain && (await stat(path).then(() => true, () => false))) {
        await shredItemFile(path);
        report.finished++;
      }
      continue;
    }
    if (receivedAt > youngest) continue;
    report.examined++;
    try {
      const meta = await reader.meta(entry);
      const { days, rule } = retentionOf(meta, retention);
      if (receivedAt + days * DAY_MS > now) continue;
      let text: Buffer | undefined;
      const hasKeyword = async (k: string) => containsKeyword((text ??= await reader.content(entry)), k);
      const heldBy: string[] = [];
      for (const h of holds) if (await holdCovers(h, meta, hasKeyword)) heldBy.push(h.id);
      if (heldBy.length) {
        report.held.push({ id, holds: heldBy });
        continue;
      }
      if (chain) {
        await chain.append<DestroyRecord>({ type: 'destroy', id, chain: entry.chain, itemSeq: seq, receivedAt, rule, days });
        await shredItemFile(path);
      }
      report.purged.push({ id, rule, days, receivedAt });
    } catch (err) {
      report.failed.push({ id, error: (err as Error).message });
    }
  }
  return report;
}
