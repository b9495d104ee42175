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
  const { state, problem } = await adminStateUpToBreak(archive);
  if (problem) throw new AdminChainBroken(problem);
  return state;
}

/**
 * For readers that go on when the admin chain does not verify, saying so (search,
 * export): the state of the records before its first break, and the break. A record
 * after it (a destruction appended by hand) counts for nothing.
 */
export async function adminStateUpToBreak(archive: ChainAccess): Promise<{ state: AdminState; problem?: VerifyProblem | undefined }> {
  const state = emptyAdminState();
  const anchor = await adminAnchorProblem(archive.layout);
  if (anchor) return { state, problem: anchor };
  const walk = await walkChain(archive, ADMIN_CHAIN, (r) => applyAdminRecord(state, r));
  return { state, problem: walk.problem };
}
