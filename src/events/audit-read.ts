import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readChainLines } from '../archive/chain-lines.js';
import { parseAuditRecord, type AuditRecord } from './audit-chain.js';
import { listSegments } from './audit-files.js';

/** One line of a chain as verify sees it. */
export interface AuditLine {
  /** Path relative to the data directory, e.g. audit/0/000001-2026-05-23.jsonl. */
  file: string;
  /** 1-based. */
  line: number;
  text: string;
  /** false for a last line without its newline (a write cut short). */
  complete: boolean;
  /** The last line of the chain's newest file. */
  last: boolean;
}

/** The chains under <dataDir>/audit: one directory per worker shard (and "cli"). */
export async function auditShards(dataDir: string): Promise<string[]> {
  const entries = await readdir(join(dataDir, 'audit'), { withFileTypes: true }).catch(() => []);
  const names = entries.filter((e) => e.isDirectory()).map((e) => e.name);
  return names.sort((a, b) => (/^\d+$/.test(a) && /^\d+$/.test(b) ? Number(a) - Number(b) : a.localeCompare(b)));
}

/**
 * The lines of one chain in order, across its files. With `since` (epoch ms), files that
 * end before it are skipped: a file holds records from its own day up to the next file's.
 */
export async function* auditLines(dataDir: string, shard: string, since?: number): AsyncGenerator<AuditLine> {
  const dir = join(dataDir, 'audit', shard);
  const files = await listSegments(dir);
  const sinceDay = since === undefined ? undefined : new Date(since).toISOString().slice(0, 10);
  // One line is held back so the chain's very last line can say so (the newest file may be empty).
  let pending: AuditLine | undefined;
  for (const [i, f] of files.entries()) {
    const next = files[i + 1];
    if (sinceDay && next && next.day < sinceDay) continue;
    for await (const l of readChainLines(join(dir, f.name))) {
      if (pending) yield pending;
      pending = { file: join('audit', shard, f.name), line: l.index + 1, text: l.line, complete: l.complete, last: false };
    }
  }
  if (pending) yield { ...pending, last: true };
}

export interface ShardRecord extends AuditRecord {
  shard: string;
}

/** Every readable record of every chain at or after `since`; lines verify would flag are skipped here. */
export async function* auditRecords(dataDir: string, since?: number): AsyncGenerator<ShardRecord> {
  for (const shard of await auditShards(dataDir)) {
    for await (const l of auditLines(dataDir, shard, since)) {
      if (!l.complete) continue;
      let r: AuditRecord;
      try {
        r = parseAuditRecord(l.text);
      } catch {
        continue;
      }
      if (since !== undefined && Date.parse(r.time) < since) continue;
      yield { ...r, shard };
    }
  }
}
