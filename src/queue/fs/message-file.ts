import { open, rename, rm, type FileHandle } from 'node:fs/promises';

/** Chunks are gathered up to this size before a write() system call. */
export const WRITE_BATCH = 64 * 1024;
const MAX_HEADER_LINE = 16 * 1024 * 1024;

/**
 * One message in its own file: a JSON envelope line, then the body. Written to a temp
 * name, flushed (fdatasync), renamed into place; the caller fsyncs the directory.
 */
export class MessageFileWriter {
  private buffers: Buffer[] = [];
  private buffered = 0;
  private written = 0;

  private constructor(
    private readonly fh: FileHandle,
    private readonly tmpPath: string,
  ) {}

  static async create(tmpPath: string, headerLine: Buffer): Promise<MessageFileWriter> {
    const w = new MessageFileWriter(await open(tmpPath, 'wx', 0o600), tmpPath);
    try {
      // A header line of WRITE_BATCH or more (a thousand long recipients) is written now.
      await w.write(headerLine);
    } catch (err) {
      // The caller never gets the writer, so its abort() cannot know about the file:
      // close it and remove it here, or the fd and tmp/<id> stay until GC / restart.
      await w.discard();
      await rm(tmpPath, { force: true }).catch(() => undefined);
      throw err;
    }
    return w;
  }

  get bytesWritten(): number {
    return this.written + this.buffered;
  }

  async write(chunk: Buffer): Promise<void> {
    this.buffers.push(chunk);
    this.buffered += chunk.length;
    if (this.buffered >= WRITE_BATCH) await this.flush();
  }

  /** Replaces bytes already written (same length, nothing appended), before finish(). */
  async overwrite(position: number, bytes: Buffer): Promise<void> {
    await this.flush();
    if (position + bytes.length > this.written) throw new Error('queue: overwrite past what was written');
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await this.fh.write(bytes, done, bytes.length - done, position + done);
      done += bytesWritten;
    }
  }

  /** Flushes to disk and renames into place. */
  async finish(finalPath: string): Promise<void> {
    await this.flush();
    await this.fh.datasync();
    await this.fh.close();
    await rename(this.tmpPath, finalPath);
  }

  async discard(): Promise<void> {
    await this.fh.close().catch(() => undefined);
  }

  private async flush(): Promise<void> {
    if (!this.buffered) return;
    let pending = this.buffers;
    let left = this.buffered;
    this.buffers = [];
    this.buffered = 0;
    while (left > 0) {
      // writev may write less than asked; continue from where it stopped.
      const { bytesWritten } = await this.fh.writev(pending, this.written);
      this.written += bytesWritten;
      left -= bytesWritten;
      pending = skipBytes(pending, bytesWritten);
    }
  }
}

export function skipBytes(buffers: Buffer[], bytes: number): Buffer[] {
  const out: Buffer[] = [];
  let remaining = bytes;
  for (const b of buffers) {
    if (remaining >= b.length) {
      remaining -= b.length;
      continue;
    }
    out.push(remaining ? b.subarray(remaining) : b);
    remaining = 0;
  }
  return out;
}

export async function readHeaderLine(path: string): Promise<{ header: string; headerLength: number }> {
  const fh = await open(path, 'r');
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(64 * 1024);
      const { bytesRead } = await fh.read(buf, 0, buf.length, total);
      if (bytesRead === 0) throw new Error('no envelope line (file truncated)');
      const part = buf.subarray(0, bytesRead);
      const nl = part.indexOf(0x0a);
      if (nl >= 0) {
        chunks.push(part.subarray(0, nl));
        return { header: Buffer.concat(chunks).toString('utf8'), headerLength: total + nl + 1 };
      }
      chunks.push(part);
      total += bytesRead;
      if (total > MAX_HEADER_LINE) throw new Error('envelope line too long');
    }
  } finally {
    await fh.close();
  }
}
