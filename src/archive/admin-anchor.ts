import { join } from 'node:path';
import { genesisOf } from './chain-genesis.js';
import { journalChainNames } from './chain-names.js';
import type { ChainRecord } from './chain-record.js';
import type { VerifyProblem } from './chain-walk.js';
import type { MasterKey } from '../common/envelope-crypto.js';
import { isCreationHead, readHead } from './chain-head.js';
import { ChainWriter } from './chain-writer.js';
import { ADMIN_CHAIN, type ArchiveLayout } from './layout.js';

/**
 * The admin chain holds the legal holds: without it every hold is gone, and a purge
 * would destroy held items. So it is made before any journal chain, and each journal
 * chain's genesis names the hash of the admin chain's genesis line (its anchor). An
 * admin chain deleted (log and head), or deleted and made anew, then shows: verify
 * fails and every purge is refused.
 */

const anchorOf = (g: { record?: ChainRecord | undefined } | undefined) => (g?.record?.type === 'genesis' ? g.record.admin : undefined);

/** The journal chains whose genesis names an admin chain. */
async function anchoredChains(layout: ArchiveLayout): Promise<{ name: string; anchor: string }[]> {
  const out: { name: string; anchor: string }[] = [];
  for (const name of await journalChainNames(layout)) {
    const anchor = anchorOf(await genesisOf(layout, name));
    if (anchor) out.push({ name, anchor });
  }
  return out;
}

const missing = (layout: ArchiveLayout, why: string): VerifyProblem => ({
  chain: ADMIN_CHAIN,
  record: 0,
  problem: `the admin chain ${layout.chainLog(ADMIN_CHAIN)} is missing, ${why}: it was deleted, and with it every legal hold, release and destruction record; restore admin.log and admin.head from a backup`,
});

/**
 * Why a missing admin chain must not be made anew (undefined: it may be, on an archive
 * that never had one): its head is left, or a journal chain was started with it.
 */
export async function adminCreationProblem(layout: ArchiveLayout): Promise<VerifyProblem | undefined> {
  const head = await readHead(join(layout.chainsDir, `${ADMIN_CHAIN}.head`)).catch(() => 'unreadable' as const);
  // A head at its genesis only: a crash cut the chain's creation short (the head is written first).
  if (head && (head === 'unreadable' || !isCreationHead(head))) return missing(layout, 'but its head is still there');
  const anchored = (await anchoredChains(layout))[0];
  return anchored ? missing(layout, `but ${anchored.name} was started with it`) : undefined;
}

/**
 * Called by the fs sink before it opens its journal chain: returns the anchor for a new
 * journal chain's genesis (the admin genesis hash), making the admin chain first on an
 * archive that has none. undefined when the admin chain is missing and must not be made
 * anew (verify and the purge report it).
 */
export async function ensureAdminChain(layout: ArchiveLayout, keys: MasterKey[]): Promise<string | undefined> {
  const found = await genesisOf(layout, ADMIN_CHAIN);
  if (found) return found.hash;
  if (await adminCreationProblem(layout)) return undefined;
  // Another process may be making it at this moment: the chain's lock orders the two.
  await (await ChainWriter.open(layout.chainsDir, ADMIN_CHAIN, keys)).close();
  return (await genesisOf(layout, ADMIN_CHAIN))?.hash;
}

/**
 * For verify and before any purge: the admin chain must be there when the archive has
 * journal chains, and be the one each anchored journal chain was started with.
 */
export async function adminAnchorProblem(layout: ArchiveLayout): Promise<VerifyProblem | undefined> {
  const admin = await genesisOf(layout, ADMIN_CHAIN);
  const anchored = await anchoredChains(layout);
  if (!admin) {
    if (anchored[0]) return missing(layout, `but ${anchored[0].name} was started with it`);
    const journals = await journalChainNames(layout);
    return journals.length ? missing(layout, `but the archive has journal chains (${journals.join(', ')})`) : undefined;
  }
  const other = anchored.find((c) => c.anchor !== admin.hash);
  if (other) {
    return {
      chain: ADMIN_CHAIN,
      record: 0,
      problem: `the admin chain is not the one ${other.name} was started with (its genesis hashes to ${admin.hash}, ${other.name} names ${other.anchor}): it was deleted and made anew, losing the legal holds it had; restore admin.log and admin.head from a backup`,
    };
  }
  return undefined;
}
