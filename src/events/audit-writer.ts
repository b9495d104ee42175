import { open, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { chainEntries, EMPTY_CHAIN, hashLine, parseAuditRecord, type AuditEntry, type ChainHead } from './audit-chain.js';
import { SegmentFiles } from './audit-files.js';

/** Audit files are started anew at this size, and each UTC day. */
export const AUDIT_FILE_BYTES = 64 * 1024 * 1024;

/** The head file: the last written record (seq and hash), fixed size, rewritten in place. */
const HEAD_FILE = 'head.json';
const HEAD_BYTES = 160;

export interface AuditHead extends ChainHead {
  file: string;
}

export async function readAuditHead(shardDir: string): Promise<AuditHead | undefined> {
  try {
    const h = JSON.parse((await readFile(join(shardDir, HEAD_FILE), 'utf8')).trim()) as AuditHead;
    return Number.isInteger(h.seq) && typeof h.hash === 'string' ? h : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The one appender of a chain (audit/<shard>/). It resumes after restarts from the last
 * line on disk. The head file lets verify notice an edited or removed last line, which
 * no later link would show; it is written after each batch without a flush of its own,
 * so after a power loss it may lag behind the chain, never run ahead of it. A head ahead
 * of the chain at start-up means lines were removed: that is written into the trail.
 */
export class AuditWriter {
  private constructor(
    private readonly files: SegmentFiles,
    private readonly headFh: FileHandle,
    private head: ChainHead,
  ) {}

  static async open(shardDir: string, opts: { lockWaitMs?: number; maxFileBytes?: number } = {}): Promise<AuditWriter> {
    const files = await SegmentFiles.open(shardDir, { maxBytes: opts.maxFileBytes ?? AUDIT_FILE_BYTES, daily: true, lockWaitMs: opts.lockWaitMs });
    try {
      const onDisk = await readAuditHead(shardDir);
      const last = files.lastLine;
      let seq = -1;
      try {
        if (last !== undefined) seq = parseAuditRecord(last).seq;
      } catch {
        seq = onDisk?.seq ?? -1; // an unreadable last line: verify reports it; the chain still links to its bytes
      }
      const head = last === undefined ? EMPTY_CHAIN : { seq, hash: hashLine(last) };
      const headPath = join(shardDir, HEAD_FILE);
      const headFh = await open(headPath, 'r+').catch(() => open(headPath, 'w+', 0o600));
      const writer = new AuditWriter(files, headFh, head);
      if (onDisk && onDisk.seq > head.seq) {
        await writer.append([{ time: Date.now(), event: 'audit.truncated', fields: { headSeq: onDisk.seq, headFile: onDisk.file, lastSeq: head.seq, lastFile: files.currentName } }]);
      }
      return writer;
    } catch (err) {
      await files.close();
      throw err;
    }
  }

  get lastSeq(): number {
    return this.head.seq;
  }

  /** Chains and writes a batch; resolves once it is durable. */
  async append(entries: AuditEntry[]): Promise<void> {
    if (!entries.length) return;
    const { lines, head } = chainEntries(this.head, entries);
    await this.files.write(lines);
    this.head = head;
    const text = JSON.stringify({ ...head, file: this.files.currentName });
    // A head that cannot be written only weakens verify's view of the last line; the records are safe.
    await this.headFh.write(text.padEnd(HEAD_BYTES - 1, ' ') + '\n', 0).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.headFh.close().catch(() => undefined);
    await this.files.close();
  }
}
