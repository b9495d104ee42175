import { randomBytes } from 'node:crypto';
import type { HoldCriteria, HoldRecord, ReleaseRecord } from './chain-record.js';
import type { ChainWriter } from './chain-writer.js';
import type { AdminState } from './holds.js';

/** Records a legal hold in the admin chain. A hold with no criterion would hold everything: refused. */
export async function addHold(chain: ChainWriter, criteria: HoldCriteria, reason: string, actor: string): Promise<HoldRecord> {
  if (!criteria.custodian && criteria.since === undefined && criteria.until === undefined && !criteria.keyword) {
    throw new Error('a hold needs at least one of: custodian, date range (since/until), keyword');
  }
  if (!reason.trim()) throw new Error('a hold needs a reason');
  const holdId = `hold-${randomBytes(5).toString('hex')}`;
  return chain.append<HoldRecord>({ type: 'hold', holdId, ...criteria, reason, actor });
}

export async function releaseHold(chain: ChainWriter, state: AdminState, holdId: string, reason: string, actor: string): Promise<ReleaseRecord> {
  const hold = state.holds.get(holdId);
  if (!hold) throw new Error(`no hold ${holdId}`);
  if (hold.released) throw new Error(`hold ${holdId} was already released at ${hold.released.at} by ${hold.released.actor}`);
  if (!reason.trim()) throw new Error('a release needs a reason');
  return chain.append<ReleaseRecord>({ type: 'release', holdId, reason, actor });
}
