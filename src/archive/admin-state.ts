import { adminAnchorProblem } from './admin-anchor.js';
import { walkChain, type VerifyProblem } from './chain-walk.js';
import { applyAdminRecord, emptyAdminState, type AdminState } from './holds.js';
import { ADMIN_CHAIN, type ArchiveLayout } from './layout.js';

/** The admin chain does not verify: what it says about holds cannot be trusted. */
export class AdminChainBroken extends Error {
  constructor(readonly problem: VerifyProblem) {
    super(`the admin chain (holds, releases, destructions) does not verify: ${problem.problem}; run postern archive verify`);
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
export async function verifiedAdminState(layout: ArchiveLayout): Promise<AdminState> {
  const anchor = await adminAnchorProblem(layout);
  if (anchor) throw new AdminChainBroken(anchor);
  const state = emptyAdminState();
  const walk = await walkChain(layout, ADMIN_CHAIN, (r) => applyAdminRecord(state, r));
  if (walk.problem) throw new AdminChainBroken(walk.problem);
  return state;
}
