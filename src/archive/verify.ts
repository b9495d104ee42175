import { readdir, stat } from 'node:fs/promises';
import { relative } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { adminAnchorProblem } from './admin-anchor.js';
import { listedChainProblems } from './chain-listing.js';
import type { ItemRecord } from './chain-record.js';
import type { ChainHead } from './chain-writer.js';
import { walkChain, type VerifyProblem } from './chain-walk.js';
import { applyAdminRecord, emptyAdminState } from './holds.js';
import { HEADER_BYTES, itemDataKey, openItemContent, readItemHeader, REWRAP_SUFFIX } from './item-file.js';
import { ADMIN_CHAIN, filesUnder } from './layout.js';
import { openMeta } from './meta-crypto.js';
import type { ArchiveReader } from './reader.js';

export type { VerifyProblem } from './chain-walk.js';

export interface VerifyReport {
  chains: { name: string; records: number; head?: ChainHead | undefined }[];
  /** false when the admin chain lists no journal chain, no chain has an item record and there is no item file: no gateway ever journaled here. */
  found: boolean;
  items: number;
  destroyed: number;
  problems: VerifyProblem[];
}

async function checkItem(reader: ArchiveReader, r: ItemRecord, content: boolean): Promise<string | undefined> {
  const path = reader.layout.resolve(r.file);
  const st = await stat(path).catch(() => undefined);
  if (!st) return `item file missing (${r.file})`;
  let header;
  try {
    header = await readItemHeader(path, r.offset);
  } catch {
    return `item file altered: the entry's header is unreadable (${r.file} at ${r.offset})`;
  }
  if (header.id !== r.id || header.iv !== r.iv || header.tag !== r.tag || header.size !== r.size) return `item file altered: it does not hold the entry this record was written for (${r.file} at ${r.offset})`;
  const end = r.offset + HEADER_BYTES + r.size;
  if (st.size < end || (r.file.endsWith('.item') && st.size !== end)) return `item file altered: its size does not match the record (${r.file})`;
  let key;
  try {
    key = itemDataKey(header, reader.keys);
  } catch (err) {
    return `cannot check the item: ${(err as Error).message}`;
  }
  try {
    let meta;
    try {
      meta = openMeta(r.meta, key, r.id);
    } catch {
      return 'index metadata fails authentication';
    }
    // The record's own receivedAt is in clear (retention reads it): it must be the one sealed with the item.
    if (meta.receivedAt !== r.receivedAt) return `the record's receivedAt (${new Date(r.receivedAt).toISOString()}) is not the item's (${new Date(meta.receivedAt).toISOString()}): the index was edited`;
    if (!content) return undefined;
    try {
      await pipeline(openItemContent(path, header, key, r.offset), new Writable({ write: (_c, _e, cb) => cb() }));
    } catch {
      return `item file altered: its content fails authentication (${r.file})`;
    }
  } finally {
    key.fill(0);
  }
  return undefined;
}

/** An archive entry file (an item of its own, or a segment of several), not a link or anything else. */
const holdsEntries = (f: { path: string; regular: boolean }) => f.regular && (f.path.endsWith('.item') || f.path.endsWith('.seg'));

/**
 * What a file under items/ that holds no entries is. Postern writes nothing else there:
 * a copy a rotation left would keep the wrapped keys of items purged since, anything
 * else is not archive data and may be a copy of it.
 */
function strayFileProblem(relativePath: string): string {
  if (relativePath.endsWith(REWRAP_SUFFIX)) return `${relativePath} is a copy left by an interrupted postern archive rotate-key (it holds item keys a purge does not destroy): run postern archive rotate-key again, which removes it`;
  return `${relativePath} is not an archive file (postern writes only .item and .seg files under items/): find out what put it there, and remove it`;
}

/**
 * `postern archive verify`: the chains first (the first break of each), then every item
 * record against its entry (file present, the same entry, the same size, content that
 * authenticates under its data key unless `content: false`), then files that no record
 * names. Destroyed items must have no key left.
 */
export async function verifyArchive(reader: ArchiveReader, opts: { content?: boolean } = {}): Promise<VerifyReport> {
  const report: VerifyReport = { chains: [], found: false, items: 0, destroyed: 0, problems: [] };
  const admin = emptyAdminState();
  const items: { chain: string; r: ItemRecord }[] = [];
  let broken = false;
  // A chain whose log is gone but whose head is left is walked too (and reported).
  const heads = (await readdir(reader.layout.chainsDir).catch(() => [] as string[])).filter((n) => n.endsWith('.head')).map((n) => n.slice(0, -'.head'.length));
  const logs = await reader.chainNames();
  const names = [...new Set([...logs, ...heads])].sort();
  // The admin chain first: it says which items were destroyed.
  for (const name of [...names.filter((n) => n === ADMIN_CHAIN), ...names.filter((n) => n !== ADMIN_CHAIN)]) {
    const found: ItemRecord[] = [];
    const w = await walkChain(reader, name, (r) => {
      if (r.type === 'item') found.push(r);
      if (name === ADMIN_CHAIN) applyAdminRecord(admin, r);
    });
    report.chains.push({ name, records: w.records, head: w.head });
    if (w.problem) {
      report.problems.push(w.problem);
      broken = true;
    }
    items.push(...found.map((r) => ({ chain: name, r })));
  }
  // Before the items: a missing or replaced admin chain says which were destroyed no more.
  const anchor = await adminAnchorProblem(reader.layout);
  if (anchor) {
    report.problems.unshift(anchor);
    broken = true;
  }
  // A journal chain deleted whole (its items too) leaves no break in any other chain.
  const listed = await listedChainProblems(reader.layout, admin, logs.filter((n) => n !== ADMIN_CHAIN));
  if (listed.length) {
    report.problems.push(...listed);
    broken = true;
  }
  report.found = items.length > 0 || admin.chains.size > 0;
  const known = new Set<string>();
  for (const { chain, r } of items) {
    known.add(reader.layout.resolve(r.file));
    const destroyed = admin.destroyed.get(r.id);
    if (destroyed) {
      report.destroyed++;
      if (await readItemHeader(reader.layout.resolve(r.file), r.offset).then(() => true, () => false)) report.problems.push({ chain, record: r.seq, id: r.id, problem: `record ${r.seq} (item ${r.id}): destroyed at ${destroyed.at} but its key is still there (run postern archive purge to finish)` });
      continue;
    }
    report.items++;
    const problem = await checkItem(reader, r, opts.content !== false);
    if (problem) report.problems.push({ chain, record: r.seq, id: r.id, problem: `record ${r.seq} (item ${r.id}): ${problem}` });
  }
  for await (const f of filesUnder(reader.layout.itemsDir)) {
    const name = relative(reader.layout.root, f.path);
    if (!holdsEntries(f)) {
      report.problems.push({ chain: '-', problem: strayFileProblem(name) });
      continue;
    }
    report.found = true;
    // Entry files without a record are only meaningful when every chain could be read to its end.
    if (!broken && !known.has(f.path)) report.problems.push({ chain: '-', problem: `item file ${name} has no index record (its records were deleted, or a crash cut its first write short)` });
  }
  return report;
}
