import { globMatches } from '../policy/match.js';
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

/** local@domain, "*" anywhere for any run of characters: no display name, no <>, no list. */
const ADDRESS_PATTERN = /^[^\s<>()[\]@,;:"\\]+@[^\s<>()[\]@,;:"\\]+$/;

/**
 * Refuses criteria that would make a hold cover less than it says: a custodian that is no
 * address ("Patient <patient@example.net>" matched no participant, so the hold held
 * nothing, silently), a date range that ends before it starts, an empty keyword. A hold
 * with no criterion would hold everything: refused too. `prefix` ("--" for the CLI) goes
 * before the names in the message.
 */
export function checkHoldCriteria(c: HoldCriteria, prefix = ''): void {
  const { custodian, since, until, keyword } = c;
  if (custodian !== undefined) {
    if (!ADDRESS_PATTERN.test(custodian)) {
      throw new Error(`${prefix}custodian: "${custodian}" is not an address: give the bare address (patient@example.net), no display name or <>; "*" matches any run of characters (*@example.net)`);
    }
    if (!/[^*.]/.test(custodian.slice(custodian.indexOf('@') + 1))) throw new Error(`${prefix}custodian: "${custodian}" would match every address: name the domain at least (*@example.net)`);
  }
  if (since !== undefined && until !== undefined && since > until) {
    throw new Error(`${prefix}since (${new Date(since).toISOString()}) is after ${prefix}until (${new Date(until).toISOString()}): the hold would cover nothing`);
  }
  if (keyword !== undefined && !keyword.trim()) throw new Error(`${prefix}keyword is empty`);
  if (!custodian && since === undefined && until === undefined && !keyword) throw new Error('a hold needs at least one of: custodian, date range (since/until), keyword');
}

const participants = (meta: ItemMeta) => [meta.mailFrom, ...meta.rcptTo];

/**
 * Whether a hold covers an item: every criterion it has must match. The custodian is
 * matched as search's participant is (case-insensitive, "*" wildcards), so a hold placed
 * with the pattern a search used covers what that search found. The keyword is checked
 * last, and only when the others match, because it needs the decrypted text.
 */
export async function holdCovers(hold: HoldCriteria, meta: ItemMeta, hasKeyword: (keyword: string) => Promise<boolean>): Promise<boolean> {
  const custodian = hold.custodian;
  if (custodian && !participants(meta).some((p) => globMatches(custodian, p))) return false;
  if (hold.since !== undefined && meta.receivedAt < hold.since) return false;
  if (hold.until !== undefined && meta.receivedAt > hold.until) return false;
  if (hold.keyword) return hasKeyword(hold.keyword);
  return true;
}
