import { resolve } from 'node:path';
import type { PosternConfig } from '../config/schema.js';
import type { ArchiveAdmin } from '../archive/admin.js';
import { logExported, logSearched } from '../archive/access-log.js';
import { refuseExisting } from '../archive/export-file.js';
import { exportMbox, mboxManifestPath } from '../archive/export-mbox.js';
import { exportZip } from '../archive/export-zip.js';
import { incompleteReasons, searchArchive, type SearchQuery, type SearchResult } from '../archive/search.js';
import { cliActor, withCliAudit } from '../events/audit-cli.js';
import { guarded, NOT_COMPLETE_EXIT, open, out, parseRange, type ConfigOption } from './archive-common.js';

/** postern archive search and export: a search under audit, its result checked for completeness. */

export interface FilterOptions extends ConfigOption {
  since?: string;
  until?: string;
  participant?: string;
  sender?: string;
  recipient?: string;
  subject?: string;
  messageId?: string;
  keyword?: string;
}

/** The text filters, as the options that give them. */
const TEXT_FILTERS = { participant: '--participant', sender: '--sender', recipient: '--recipient', subject: '--subject', messageId: '--message-id', keyword: '--keyword' } as const;

function queryOf(o: FilterOptions): SearchQuery {
  // An empty value (--participant "$UNSET") would drop the filter: the export would hand out everything.
  for (const [key, option] of Object.entries(TEXT_FILTERS)) {
    if (o[key as keyof typeof TEXT_FILTERS] === '') throw new Error(`${option} is empty: give a value, or leave the option out`);
  }
  return {
    ...parseRange(o.since, o.until, { since: '--since', until: '--until' }),
    participant: o.participant,
    sender: o.sender,
    recipient: o.recipient,
    subject: o.subject,
    messageId: o.messageId,
    keyword: o.keyword,
  };
}

function searchNotes(r: SearchResult): string[] {
  const notes = [`${r.hits.length} item(s) found; ${r.examined} examined`];
  if (r.keyword) {
    notes.push(`keyword search: ${r.keyword.scannedItems} item(s), ${r.keyword.scannedBytes} bytes decrypted and scanned`);
    if (r.keyword.stoppedBecause) notes.push(`keyword search stopped at ${r.keyword.stoppedBecause}: ${r.keyword.notScanned} candidate(s) not scanned, results may be incomplete (narrow the search, e.g. with --since/--until)`);
  }
  if (r.unreadable.length) notes.push(`${r.unreadable.length} item(s) could not be read (run postern archive verify): ${r.unreadable.slice(0, 5).map((u) => u.id).join(', ')}`);
  for (const b of r.brokenChains) notes.push(`chain ${b.chain} does not verify, results may be incomplete (run postern archive verify): ${b.problem}`);
  return notes;
}

export interface AccessOptions extends FilterOptions {
  /** Accept an incomplete result (a keyword limit reached, unreadable items) with exit 0. */
  allowPartial?: boolean;
}

/** Searches under audit: archive.searched goes to the audit trail's "cli" chain, with who and what. */
async function auditedSearch(opened: { config: PosternConfig; archive: ArchiveAdmin }, query: SearchQuery): Promise<SearchResult> {
  return withCliAudit(opened.config, async (log) => {
    const r = await searchArchive(opened.archive.reader, query, opened.config.archive.searchLimits);
    logSearched(log, { actor: cliActor(), via: 'cli', query, result: r });
    return r;
  });
}

/** postern archive search: one line per item (no content beyond the subject); exit 4 when the result may be incomplete. */
export function archiveSearchCommand(opts: AccessOptions & { json?: boolean }): Promise<void> {
  return guarded(async () => {
    const query = queryOf(opts);
    const opened = await open(opts);
    if (!opened) return;
    const r = await auditedSearch(opened, query);
    const incomplete = incompleteReasons(r);
    if (opts.json) {
      out(JSON.stringify({ hits: r.hits.map((h) => h.meta), examined: r.examined, complete: !incomplete.length, incomplete, keyword: r.keyword, unreadable: r.unreadable }, null, 2));
    } else {
      for (const { meta: m } of r.hits) {
        out(`${m.id}  ${new Date(m.receivedAt).toISOString()}  ${m.mailFrom || '<>'} -> ${m.rcptTo.join(', ')}  ${JSON.stringify(m.subject)}${m.messageId ? `  ${m.messageId}` : ''}  ${m.size} bytes  ${m.recipients.map((r) => `${r.rcpt}:${r.method}`).join(' ')}${m.categories.length ? `  [${m.categories.join(',')}]` : ''}`);
      }
      for (const n of searchNotes(r)) process.stderr.write(`${n}\n`);
    }
    if (incomplete.length && !opts.allowPartial) {
      process.stderr.write(`INCOMPLETE: this result may miss messages (exit ${NOT_COMPLETE_EXIT}); narrow the search, or pass --allow-partial to accept it\n`);
      process.exitCode = NOT_COMPLETE_EXIT;
    }
  });
}

/**
 * postern archive export --format mbox|zip --out FILE [filters]. An incomplete search is
 * refused (nothing written, exit 4) unless --allow-partial, which marks the export
 * INCOMPLETE. archive.exported (who, filters, ids, outcome) goes to the audit trail.
 */
export function archiveExportCommand(opts: AccessOptions & { format: string; out: string; force?: boolean }): Promise<void> {
  return guarded(async () => {
    const format = opts.format;
    if (format !== 'mbox' && format !== 'zip') throw new Error(`--format must be mbox or zip, not "${format}"`);
    const query = queryOf(opts);
    const opened = await open(opts);
    if (!opened) return;
    const file = resolve(opts.out);
    const force = opts.force === true;
    // Before the search: a long keyword search would be wasted on a target that is refused.
    await refuseExisting(format === 'mbox' ? [file, mboxManifestPath(file)] : [file], force);
    await withCliAudit(opened.config, async (log) => {
      const r = await searchArchive(opened.archive.reader, query, opened.config.archive.searchLimits);
      const access = { actor: cliActor(), via: 'cli', query, result: r, format };
      const incomplete = incompleteReasons(r);
      for (const n of searchNotes(r)) process.stderr.write(`${n}\n`);
      if (incomplete.length && !opts.allowPartial) {
        logExported(log, { ...access, outcome: 'refused' });
        process.stderr.write(`REFUSED: the search may miss messages, nothing was written (exit ${NOT_COMPLETE_EXIT}); narrow the search, or pass --allow-partial to export what was found, marked INCOMPLETE\n`);
        process.exitCode = NOT_COMPLETE_EXIT;
        return;
      }
      let where: string;
      try {
        if (format === 'mbox') where = `mboxrd, hashes in ${(await exportMbox(opened.archive.reader, r.hits, file, incomplete, force)).manifest}`;
        else {
          await exportZip(opened.archive.reader, r.hits, file, incomplete, force);
          where = 'zip, hashes in MANIFEST.sha256';
        }
      } catch (err) {
        logExported(log, { ...access, outcome: 'aborted', err: (err as Error).message });
        throw err;
      }
      logExported(log, { ...access, outcome: 'completed' });
      out(`exported ${r.hits.length} message(s) to ${file} (${where})${incomplete.length ? ': INCOMPLETE, see the notes above' : ''}`);
    });
  });
}
