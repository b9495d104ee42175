import { stat } from 'node:fs/promises';
import { readChainLines } from './chain-lines.js';
import { parseRecord, type ItemRecord } from './chain-record.js';

/** Clock skew and write time allowed between an item file's mtime and its record. */
const SLACK_MS = 5 * 60_000;
const WINDOW = 8 * 1024 * 1024;

/**
 * Item records written since `sinceMs` (minus slack), and perhaps some before: after a
 * crash only the newest records can lack their marker or have their file still in tmp/,
 * so the log is read from near its end, and from the start only when that window does
 * not reach back far enough.
 */
export async function recordedItems(logPath: string, sinceMs: number): Promise<Map<string, ItemRecord>> {
  const size = (await stat(logPath)).size;
  for (let from = Math.max(0, size - WINDOW); ; from = 0) {
    const found = new Map<string, ItemRecord>();
    let reachesBack = from === 0;
    for await (const l of readChainLines(logPath, from)) {
      if (!l.complete || (from > 0 && l.index === 0)) continue; // cut first line, torn last line
      let r;
      try {
        r = parseRecord(l.line);
      } catch {
        continue;
      }
      if (!reachesBack && Date.parse(r.at) < sinceMs - SLACK_MS) reachesBack = true;
      if (r.type === 'item') found.set(r.id, r);
    }
    if (reachesBack) return found;
  }
}
