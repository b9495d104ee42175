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
 * verify` does (parse, seq, prev hash, genesis, head). ArchiveReader.adminState() skips
 * what it cannot read, so a deleted or damaged hold record, or a release appended without
 * its link, would silently lift a hold; whatever destroys data reads the chain through
 * this instead, and throws AdminChainBroken at the first break.
 */
export async function verifiedAdminState(layout: ArchiveLayout): Promise<AdminState> {
  const state = emptyAdminState();
  const walk = await walkChain(layout, ADMIN_CHAIN, (r) => applyAdminRecord(state, r));
  if (walk.problem) throw new AdminChainBroken(walk.problem);
  return state;
}
