import { readChainLines } from './chain-lines.js';
import { lineHash, parseRecord, type ChainRecord } from './chain-record.js';
import type { ArchiveLayout } from './layout.js';

/** A chain's first line (its genesis record, when it parses) and that line's hash; undefined without a log or a line. */
export async function genesisOf(layout: ArchiveLayout, name: string): Promise<{ record?: ChainRecord | undefined; hash: string } | undefined> {
  try {
    for await (const l of readChainLines(layout.chainLog(name))) {
      if (!l.complete) return undefined; // being written
      let record: ChainRecord | undefined;
      try {
        record = parseRecord(l.line);
      } catch {
        // the walk of that chain reports it
      }
      return { record, hash: lineHash(l.line) };
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return undefined;
}
