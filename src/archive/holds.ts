import type { ChainStartedRecord, DestroyRecord, HoldCriteria, HoldRecord, ReleaseRecord } from './chain-record.js';
import type { ItemMeta } from './types.js';

export interface Hold extends HoldCriteria {
  id: string;
  reason: string;
  actor: string;
  createdAt: string;
  released?: { at: string; reason: string; actor: string } | undefined;
}

/** A journal chain the admin chain names: it must be there. */
export interface ListedChain {
  /** The admin record that names it first. */
  record: number;
  /** From its chain-started record; a chain named only by destructions has none. */
  genesisHash?: string | undefined;
}

/** What the admin chain says now: holds (active and released), destroyed items, the journal chains it names. */
export interface AdminState {
  holds: Map<string, Hold>;
  destroyed: Map<string, DestroyRecord>;
  chains: Map<string, ListedChain>;
}

export function emptyAdminState(): AdminState {
  return { holds: new Map(), destroyed: new Map(), chains: new Map() };
}

export function applyAdminRecord(state: AdminState, r: { type: string }): void {
  if (r.type === 'hold') {
    const h = r as HoldRecord;
    state.holds.set(h.holdId, { id: h.holdId, custodian: h.custodian, since: h.since, until: h.until, keyword: h.keyword, reason: h.reason, actor: h.actor, createdAt: h.at });
  } else if (r.type === 'release') {
    const rel = r as ReleaseRecord;
    const h = state.holds.get(rel.holdId);
    if (h) h.released = { at: rel.at, reason: rel.reason, actor: rel.actor };
  } else if (r.type === 'destroy') {
    const d = r as DestroyRecord;
    state.destroyed.set(d.id, d);
    if (!state.chains.has(d.chain)) state.chains.set(d.chain, { record: d.seq });
  } else if (r.type === 'chain-started') {
    const c = r as ChainStartedRecord;
    state.chains.set(c.chain, { record: c.seq, genesisHash: c.genesisHash });
  }
}

export const activeHolds = (state: AdminState): Hold[] => [...state.holds.values()].filter((h) => !h.released);

const participants = (meta: ItemMeta) => [meta.mailFrom, ...meta.rcptTo].map((a) => a.toLowerCase());

/**
 * Whether a hold covers an item: every criterion it has must match. The keyword is
 * checked last, and only when the others match, because it needs the decrypted text.
 */
export async function holdCovers(hold: HoldCriteria, meta: ItemMeta, hasKeyword: (keyword: string) => Promise<boolean>): Promise<boolean> {
  if (hold.custodian && !participants(meta).includes(hold.custodian.toLowerCase())) return false;
  if (hold.since !== undefined && meta.receivedAt < hold.since) return false;
  if (hold.until !== undefined && meta.receivedAt > hold.until) return false;
  if (hold.keyword) return hasKeyword(hold.keyword);
  return true;
}
