import type { PosternConfig } from '../config/schema.js';
import type { Logger } from '../events/logger.js';
import { ensureAdminChain } from './admin-anchor.js';
import { ensureChainListed } from './chain-listing.js';
import { ChainWriter } from './chain-writer.js';
import { ARCHIVE_EVENTS } from './events.js';
import { FsSink } from './fs-sink.js';
import { loadArchiveKeys } from './keys.js';
import { journalChainName, type ArchiveLayout } from './layout.js';

/**
 * The fs sink of one gateway process: the admin chain first (a new journal chain's
 * genesis names it, admin-anchor.ts), then its shard's journal chain, listed in the admin
 * chain (chain-listing.ts); then what a crash interrupted is finished, before the first
 * record(). A chain that cannot be listed (the admin chain broken, or busy for a minute)
 * does not stop journaling, which delivery waits for: it is logged, verify shows it, and
 * the next start lists it.
 */
export async function openFsSink(config: PosternConfig, layout: ArchiveLayout, log: Logger, shard: number): Promise<FsSink> {
  const { keys, development } = await loadArchiveKeys(config, layout);
  if (development) log.warn({ event: ARCHIVE_EVENTS.devKey, file: layout.masterKeyFile }, 'archive: using a development master key; set archive.masterKeys for production');
  const admin = await ensureAdminChain(layout, keys);
  const name = journalChainName(shard);
  const chain = await ChainWriter.open(layout.chainsDir, name, keys, { genesis: { admin } });
  let fs: FsSink;
  try {
    await ensureChainListed({ layout, keys }, name).catch((err: unknown) => log.error({ event: ARCHIVE_EVENTS.chainUnlisted, chain: name, err: (err as Error).message }, 'archive: journal chain not listed in the admin chain; its deletion would not show until it is'));
    fs = await FsSink.open(layout, chain, keys);
  } catch (err) {
    await chain.close();
    throw err;
  }
  try {
    const { placed, removed } = await fs.recover();
    if (placed || removed) log.info({ event: ARCHIVE_EVENTS.recovered, placed, removed }, 'archive: finished items interrupted by a crash');
  } catch (err) {
    await fs.close();
    throw err;
  }
  return fs;
}
