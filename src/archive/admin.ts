import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { PosternConfig } from '../config/schema.js';
import type { MasterKey } from '../common/envelope-crypto.js';
import { adminCreationProblem } from './admin-anchor.js';
import { AdminChainBroken } from './admin-state.js';
import type { ChainAccess } from './chain-walk.js';
import { ChainNotIntact, ChainWriter } from './chain-writer.js';
import { loadArchiveKeys } from './keys.js';
import { ADMIN_CHAIN, ArchiveLayout } from './layout.js';
import { ArchiveReader } from './reader.js';

export interface ArchiveAdmin {
  layout: ArchiveLayout;
  keys: MasterKey[];
  development: boolean;
  reader: ArchiveReader;
}

/** What the CLI and the purge job read the archive with. */
export async function openArchive(config: PosternConfig, dataDir = resolve(config.dataDir)): Promise<ArchiveAdmin> {
  const layout = ArchiveLayout.forDataDir(dataDir);
  const { keys, development } = await loadArchiveKeys(config, layout);
  return { layout, keys, development, reader: new ArchiveReader(layout, keys) };
}

/**
 * Runs `fn` with the admin chain open for appending (holds, releases, destructions,
 * rotations). One process at a time: others wait up to `lockWaitMs`, then fail. An admin
 * chain that was deleted is not made anew (AdminChainBroken): a fresh one would hide
 * that its holds are gone; nor is one appended to whose head is missing, forged or not
 * level with its log: a new head would sign over the evidence.
 */
export async function withAdminChain<T>({ layout, keys }: ChainAccess, fn: (chain: ChainWriter) => Promise<T>, lockWaitMs = 10_000): Promise<T> {
  if (!(await stat(layout.chainLog(ADMIN_CHAIN)).then(() => true, () => false))) {
    const problem = await adminCreationProblem(layout);
    if (problem) throw new AdminChainBroken(problem);
  }
  const chain = await ChainWriter.open(layout.chainsDir, ADMIN_CHAIN, keys, { lockWaitMs }).catch((err: unknown) => {
    throw err instanceof ChainNotIntact ? new AdminChainBroken({ chain: ADMIN_CHAIN, problem: err.reason }) : err;
  });
  try {
    return await fn(chain);
  } finally {
    await chain.close();
  }
}
