import { withAdminChain } from './admin.js';
import { genesisOf } from './chain-genesis.js';
import { readChainLines } from './chain-lines.js';
import { parseRecord, type ChainStartedRecord } from './chain-record.js';
import type { ChainAccess, VerifyProblem } from './chain-walk.js';
import type { AdminState } from './holds.js';
import { ADMIN_CHAIN, type ArchiveLayout } from './layout.js';

/**
 * Every journal chain is listed in the admin chain (a chain-started record with the hash
 * of its genesis line), so deleting a whole journal chain and its items, which leaves no
 * break in any remaining chain, shows: verify and the purge look for every listed chain.
 */

/** How long a starting gateway waits for the admin chain (a purge may hold it). */
const LIST_WAIT_MS = 60_000;

async function listedIn(layout: ArchiveLayout, name: string): Promise<boolean> {
  try {
    for await (const l of readChainLines(layout.chainLog(ADMIN_CHAIN))) {
      if (!l.line.includes('"chain-started"')) continue;
      try {
        const r = parseRecord(l.line);
        if (r.type === 'chain-started' && r.chain === name) return true;
      } catch {
        // verify reports it
      }
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return false;
}

/**
 * Called by the fs sink once its journal chain is open (its genesis durable), before it
 * journals anything: lists the chain in the admin chain unless it is already. A crash
 * between the two leaves an unlisted chain, listed at the next start.
 */
export async function ensureChainListed(archive: ChainAccess, name: string): Promise<void> {
  if (await listedIn(archive.layout, name)) return;
  const genesis = await genesisOf(archive.layout, name);
  if (!genesis) throw new Error(`archive chain ${name} has no genesis record to list`);
  try {
    await withAdminChain(archive, (admin) => admin.append<ChainStartedRecord>({ type: 'chain-started', chain: name, genesisHash: genesis.hash }), LIST_WAIT_MS);
  } catch (err) {
    throw new Error(`archive: cannot list journal chain ${name} in the admin chain: ${(err as Error).message}`);
  }
}

/**
 * The chains the admin chain names that are gone, or are not the chain it recorded (a
 * deleted chain made anew). `unlisted`: also journal chains it does not name (for
 * verify: their deletion would not show).
 */
export async function listedChainProblems(layout: ArchiveLayout, state: AdminState, unlisted: string[] = []): Promise<VerifyProblem[]> {
  const problems: VerifyProblem[] = [];
  for (const [name, listed] of state.chains) {
    const found = await genesisOf(layout, name);
    const restore = `restore ${name}.log and ${name}.head, and its items, from a backup`;
    if (!found) problems.push({ chain: name, record: 0, problem: `the admin chain names ${name} (its record ${listed.record}) but ${layout.chainLog(name)} is missing or empty: the chain was deleted, and with it the record of every item it journaled; ${restore}` });
    else if (listed.genesisHash && found.hash !== listed.genesisHash) problems.push({ chain: name, record: 0, problem: `${name} is not the chain the admin chain recorded (its record ${listed.record}): its genesis hashes to ${found.hash}, the admin chain says ${listed.genesisHash}: it was deleted and made anew; ${restore}` });
  }
  for (const name of unlisted.filter((n) => !state.chains.has(n))) {
    problems.push({ chain: name, record: 0, problem: `${name} is not listed in the admin chain (no chain-started record): its deletion would not show; a gateway lists its chain when it starts, so start the one that owns it (or the admin chain lost that record)` });
  }
  return problems;
}
