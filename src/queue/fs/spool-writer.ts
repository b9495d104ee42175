import { rm } from 'node:fs/promises';
import type { Envelope } from '../../types.js';
import type { IncomingEnvelope, SpoolWriter } from '../backend.js';
import { BodyBits } from '../body-bits.js';
import { encodeMessage } from './log-record.js';
import { MessageFileWriter } from './message-file.js';

/** What the writer needs of the spool. */
export interface SpoolSink {
  /** Bodies up to this size go into the segment log; larger ones get their own file. */
  readonly logRecordMax: number;
  tmpPath(id: string): string;
  msgPath(id: string): string;
  appendToLog(encoded: ReturnType<typeof encodeMessage>): Promise<{ segment: number; bodyOffset: number }>;
  syncMessageDir(): Promise<void>;
  committedToLog(envelope: Envelope, segment: number, bodyOffset: number, body: Buffer[]): void;
  committedToFile(envelope: Envelope, headerLength: number): void;
}

/**
 * Receives one body. A small message is held in memory and committed as one record of
 * the group-committed segment log; once a body outgrows `logRecordMax` it continues into
 * a file of its own (temp name, fdatasync, rename, directory fsync). Either way commit()
 * resolves only when the message is durable.
 */
export class FsSpoolWriter implements SpoolWriter {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private readonly bits = new BodyBits();
  private file: MessageFileWriter | undefined;
  private headerLength = 0;
  /** Where the file's envelope line holds bodyBits's value, written as '7bit' (see moveToFile). */
  private sevenBitMark: number | undefined;
  private stage: 'open' | 'renamed' | 'committed' | 'aborted' = 'open';

  constructor(
    private readonly sink: SpoolSink,
    private readonly envelope: IncomingEnvelope & { id: string },
  ) {}

  get id(): string {
    return this.envelope.id;
  }

  async write(chunk: Buffer): Promise<void> {
    this.bytes += chunk.length;
    this.bits.push(chunk);
    if (this.file) return this.file.write(chunk);
    this.chunks.push(chunk);
    if (this.bytes > this.sink.logRecordMax) await this.moveToFile();
  }

  async commit(): Promise<Envelope> {
    if (this.stage !== 'open') throw new Error(`queue: commit after ${this.stage}`);
    const envelope: Envelope = { ...this.envelope, size: this.bytes, bodyBits: this.bits.value };
    if (!this.file) {
      const encoded = encodeMessage(Buffer.from(JSON.stringify(envelope)), this.chunks, this.bytes);
      const { segment, bodyOffset } = await this.sink.appendToLog(encoded);
      this.stage = 'committed';
      this.sink.committedToLog(envelope, segment, bodyOffset, this.chunks);
      return envelope;
    }
    if (this.sevenBitMark !== undefined && envelope.bodyBits === '8bit') await this.file.overwrite(this.sevenBitMark, Buffer.from('8bit'));
    await this.file.finish(this.sink.msgPath(this.id));
    this.stage = 'renamed';
    await this.sink.syncMessageDir();
    this.stage = 'committed';
    this.sink.committedToFile(envelope, this.headerLength);
    return envelope;
  }

  async abort(): Promise<void> {
    const stage = this.stage;
    if (stage === 'committed' || stage === 'aborted') return;
    this.stage = 'aborted';
    this.chunks = [];
    if (!this.file) return;
    await this.file.discard();
    await rm(this.sink.tmpPath(this.id), { force: true });
    // Renamed but not known durable: the client will be told 4xx and retry, so the copy
    // must go or it would be delivered twice.
    if (stage === 'renamed') await rm(this.sink.msgPath(this.id), { force: true });
  }

  /**
   * The envelope line goes first in the file, before the rest of the body has arrived, so
   * bodyBits is written as far as it is known: '8bit' is final, '7bit' may still turn to
   * '8bit', which is as long, and is then overwritten in place before the file is flushed
   * (commit). A crash in between leaves only a temp file, removed at start-up.
   */
  private async moveToFile(): Promise<void> {
    const bodyBits = this.bits.value;
    const header = Buffer.from(`${JSON.stringify({ ...this.envelope, bodyBits })}\n`);
    // A JSON string value writes '"' as '\"': this text can only be the field itself.
    if (bodyBits === '7bit') this.sevenBitMark = header.indexOf('"bodyBits":"7bit"') + '"bodyBits":"'.length;
    this.headerLength = header.length;
    this.file = await MessageFileWriter.create(this.sink.tmpPath(this.id), header);
    for (const c of this.chunks) await this.file.write(c);
    this.chunks = [];
  }
}
