import { adminAnchorProblem } from './admin-anchor.js';
import { walkChain, type ChainAccess, type VerifyProblem } from './chain-walk.js';
import { applyAdminRecord, emptyAdminState, type AdminState } from './holds.js';
import { ADMIN_CHAIN } from './layout.js';

/** The admin chain does not verify: what it says about holds cannot be trusted. */
export class AdminChainBroken extends Error {
  constructor(
    readonly problem: VerifyProblem,
    lead = 'the admin chain (holds, releases, destructions) does not verify',
  ) {
    super(`${lead}: ${problem.problem}; run postern archive verify`);
    this.name = 'AdminChainBroken';
  }
}

/**
 * The holds and destructions of the admin chain, walked and verified as `postern archive
 * verify` does (parse, seq, prev hash, genesis, head; present, and the one the journal
 * chains were started with). ArchiveReader.adminState() skips what it cannot read, so a
 * deleted or damaged hold record, a release appended without its link, or the whole
 * chain deleted would silently lift a hold; whatever destroys data reads the chain
 * through this instead, and throws AdminChainBroken at the first break.
 */
export async function verifiedAdminState(archive: ChainAccess): Promise<AdminState> {
  const anchor = await adminAnchorProblem(archive.layout);
  if (anchor) throw new AdminChainBroken(anchor);
  const state = emptyAdminState();
  const walk = await walkChain(archive, ADMIN_CHAIN, (r) => applyAdminRecord(state, r));
  if (walk.problem) throw new AdminChainBroken(walk.problem);
  return state;
}
