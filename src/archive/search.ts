import { globMatches } from '../policy/match.js';
import { verifiedCatalog } from './chain-catalog.js';
import type { VerifyProblem } from './chain-walk.js';
import { containsKeyword } from './keyword.js';
import type { ArchiveReader, CatalogEntry } from './reader.js';
import type { ItemMeta } from './types.js';

export interface SearchQuery {
  /** receivedAt range, epoch ms, inclusive. */
  since?: number | undefined;
  until?: number | undefined;
  /** Sender or any recipient; "*" matches any run of characters (e.g. *@example.org). */
  participant?: string | undefined;
  sender?: string | undefined;
  recipient?: string | undefined;
  /** Case-insensitive part of the subject. */
  subject?: string | undefined;
  messageId?: string | undefined;
  /** Case-insensitive, over the decrypted text: bounded by `limits`. */
  keyword?: string | undefined;
}

export interface SearchLimits {
  /** Items whose content may be decrypted for a keyword. */
  maxItems: number;
  /** Bytes of content that may be decrypted for a keyword. */
  maxBytes: number;
}

export interface SearchHit {
  entry: CatalogEntry;
  meta: ItemMeta;
}

export interface SearchResult {
  hits: SearchHit[];
  /** Items whose metadata was looked at (not destroyed, in the date range). */
  examined: number;
  keyword?: { scannedItems: number; scannedBytes: number; notScanned: number; stoppedBecause?: string | undefined } | undefined;
  /** Items that could not be read (missing file, unknown key...): verify says more. */
  unreadable: { id: string; error: string }[];
  /** Chains that do not verify (verify's first break of each): items may be missing, or destroyed ones shown as unreadable. */
  brokenChains: VerifyProblem[];
}

const bareId = (id: string) => id.trim().replace(/^<|>$/g, '');

function metaMatches(q: SearchQuery, m: ItemMeta): boolean {
  const people = [m.mailFrom, ...m.rcptTo];
  if (q.participant && !people.some((p) => globMatches(q.participant as string, p))) return false;
  if (q.sender && !globMatches(q.sender, m.mailFrom)) return false;
  if (q.recipient && !m.rcptTo.some((r) => globMatches(q.recipient as string, r))) return false;
  if (q.subject && !m.subject.toLowerCase().includes(q.subject.toLowerCase())) return false;
  if (q.messageId && bareId(m.messageId ?? '') !== bareId(q.messageId)) return false;
  return true;
}

/**
 * Finds items by metadata (decrypted per item), then by keyword over the decrypted
 * content, within the limits: when a limit is reached the remaining candidates are not
 * scanned and the result says so, rather than pretending the search was complete. The
 * chains are verified as they are read (chain-catalog.ts): one that does not verify
 * makes the result incomplete too.
 */
export async function searchArchive(reader: ArchiveReader, q: SearchQuery, limits: SearchLimits): Promise<SearchResult> {
  const catalog = await verifiedCatalog(reader);
  const { destroyed } = catalog;
  const result: SearchResult = { hits: [], examined: 0, unreadable: [], brokenChains: catalog.problems };
  const kw = q.keyword ? { scannedItems: 0, scannedBytes: 0, notScanned: 0, stoppedBecause: undefined as string | undefined } : undefined;
  result.keyword = kw;
  for await (const entry of catalog.items()) {
    const { id, receivedAt, size } = entry.record;
    if (destroyed.has(id)) continue;
    if ((q.since !== undefined && receivedAt < q.since) || (q.until !== undefined && receivedAt > q.until)) continue;
    result.examined++;
    try {
      const meta = await reader.meta(entry);
      if (!metaMatches(q, meta)) continue;
      if (kw && q.keyword) {
        if (!kw.stoppedBecause && kw.scannedItems >= limits.maxItems) kw.stoppedBecause = `searchLimits.maxItems (${limits.maxItems} items)`;
        if (!kw.stoppedBecause && kw.scannedBytes + size > limits.maxBytes) kw.stoppedBecause = `searchLimits.maxBytes (${limits.maxBytes} bytes)`;
        if (kw.stoppedBecause) {
          kw.notScanned++;
          continue;
        }
        kw.scannedItems++;
        kw.scannedBytes += size;
        if (!(await containsKeyword(await reader.content(entry), q.keyword))) continue;
      }
      result.hits.push({ entry, meta });
    } catch (err) {
      result.unreadable.push({ id, error: (err as Error).message });
    }
  }
  result.hits.sort((a, b) => a.meta.receivedAt - b.meta.receivedAt);
  return result;
}

/**
 * Why a search may have missed items (empty: complete): a chain that does not verify, a
 * keyword search stopped at a limit, items that could not be read. Such a result must
 * not pass for a whole one.
 */
export function incompleteReasons(r: SearchResult): string[] {
  const reasons: string[] = [];
  for (const b of r.brokenChains) reasons.push(`chain ${b.chain} does not verify, so items may be missing or shown as unreadable (run postern archive verify): ${b.problem}`);
  if (r.keyword?.stoppedBecause) reasons.push(`keyword search stopped at ${r.keyword.stoppedBecause}: ${r.keyword.notScanned} candidate(s) not scanned`);
  if (r.unreadable.length) reasons.push(`${r.unreadable.length} item(s) could not be read (run postern archive verify): ${r.unreadable.slice(0, 5).map((u) => u.id).join(', ')}${r.unreadable.length > 5 ? ', ...' : ''}`);
  return reasons;
}

