import { adminStateUpToBreak } from './admin-state.js';
import { listedChainProblems } from './chain-listing.js';
import { readChainLines } from './chain-lines.js';
import { journalChainNames } from './chain-names.js';
import { parseRecord, type DestroyRecord } from './chain-record.js';
import { walkRecords, type VerifyProblem } from './chain-walk.js';
import type { ArchiveReader, CatalogEntry } from './reader.js';

export interface Catalog {
  /** Destroyed items, from the admin chain's records before its first break. */
  destroyed: Map<string, DestroyRecord>;
  /** Every item record of every journal chain, destroyed ones included, streamed; fills `problems`. */
  items(): AsyncGenerator<CatalogEntry>;
  /**
   * What does not verify: the admin chain (destructions after its break are not
   * applied), a chain it lists that is missing or was replaced, and each journal chain's
   * first break (known once items() has run to its end). Empty: the catalog is whole.
   */
  problems: VerifyProblem[];
}

/**
 * The archive's items as search and export see them: each chain walked as `postern
 * archive verify` walks it, while it is read (one pass, nothing held in memory). A
 * destruction record appended by hand hides nothing, and a line that does not parse is
 * a break that is reported, never skipped quietly. Records after a journal chain's break
 * are still listed when they parse: their items authenticate under their own data keys,
 * and a search that says it is incomplete had better show what it can.
 */
export async function verifiedCatalog(reader: ArchiveReader): Promise<Catalog> {
  const admin = await adminStateUpToBreak(reader);
  const problems: VerifyProblem[] = admin.problem ? [admin.problem] : [];
  problems.push(...(await listedChainProblems(reader.layout, admin.state)));
  const chains = await journalChainNames(reader.layout);
  async function* items(): AsyncGenerator<CatalogEntry> {
    for (const chain of chains) {
      const walk = walkRecords(reader, chain);
      let next = await walk.next();
      for (; !next.done; next = await walk.next()) if (next.value.type === 'item') yield { chain, record: next.value };
      if (!next.value.problem) continue;
      problems.push(next.value.problem);
      yield* afterBreak(reader, chain, next.value.records);
    }
  }
  return { destroyed: admin.state.destroyed, items, problems };
}

/** The item records that still parse from line `from` on (the chain broke there). */
async function* afterBreak(reader: ArchiveReader, chain: string, from: number): AsyncGenerator<CatalogEntry> {
  for await (const l of readChainLines(reader.layout.chainLog(chain))) {
    if (l.index < from || !l.complete) continue;
    let record;
    try {
      record = parseRecord(l.line);
    } catch {
      continue; // within the reported break
    }
    if (record.type === 'item') yield { chain, record };
  }
}
