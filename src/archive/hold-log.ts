import { randomBytes } from 'node:crypto';
import { EVENTS, type Logger } from '../events/logger.js';
import type { HoldCriteria, HoldRecord, ReleaseRecord } from './chain-record.js';
import type { ChainWriter } from './chain-writer.js';
import { checkHoldCriteria, type AdminState } from './holds.js';

const iso = (t: number | undefined) => (t === undefined ? undefined : new Date(t).toISOString());

/**
 * What a log line (and so the audit trail and webhooks) says of a hold's criteria. The
 * keyword is words from the messages (a patient's name, a diagnosis): only that there is
 * one. The admin chain keeps it, where `postern archive hold list` shows it.
 */
const loggedCriteria = (h: HoldCriteria) => ({ custodian: h.custodian, since: iso(h.since), until: iso(h.until), keywordGiven: h.keyword ? true : undefined });

/**
 * Records a legal hold in the admin chain. Criteria that would hold everything, or less
 * than they say, are refused (checkHoldCriteria). Logged as archive.hold-added once
 * durable, whoever placed it (CLI or admin API), so the audit trail has it too.
 */
export async function addHold(chain: ChainWriter, criteria: HoldCriteria, reason: string, actor: string, log: Logger): Promise<HoldRecord> {
  checkHoldCriteria(criteria);
  if (!reason.trim()) throw new Error('a hold needs a reason');
  const holdId = `hold-${randomBytes(5).toString('hex')}`;
  const r = await chain.append<HoldRecord>({ type: 'hold', holdId, ...criteria, reason, actor });
  log.info({ event: EVENTS.archiveHoldAdded, holdId, ...loggedCriteria(r), reason, actor, record: r.seq }, 'legal hold placed');
  return r;
}

/** Records the release of an active hold (archive.hold-released once durable). */
export async function releaseHold(chain: ChainWriter, state: AdminState, holdId: string, reason: string, actor: string, log: Logger): Promise<ReleaseRecord> {
  const hold = state.holds.get(holdId);
  if (!hold) throw new Error(`no hold ${holdId}`);
  if (hold.released) throw new Error(`hold ${holdId} was already released at ${hold.released.at} by ${hold.released.actor}`);
  if (!reason.trim()) throw new Error('a release needs a reason');
  const r = await chain.append<ReleaseRecord>({ type: 'release', holdId, reason, actor });
  log.info({ event: EVENTS.archiveHoldReleased, holdId, ...loggedCriteria(hold), reason, actor, record: r.seq }, 'legal hold released');
  return r;
}
