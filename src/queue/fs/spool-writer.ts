import { rm } from 'node:fs/promises';
import type { Envelope } from '../../types.js';
import type { IncomingEnvelope, SpoolWriter } from '../backend.js';
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
  private file: MessageFileWriter | undefined;
  private headerLength = 0;
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
    if (this.file) return this.file.write(chunk);
    this.chunks.push(chunk);
    if (this.bytes > this.sink.logRecordMax) await this.moveToFile();
  }

  async commit(): Promise<Envelope> {
    if (this.stage !== 'open') throw new Error(`queue: commit after ${this.stage}`);
    const envelope: Envelope = { ...this.envelope, size: this.bytes };
    if (!this.file) {
      const encoded = encodeMessage(Buffer.from(JSON.stringify(envelope)), this.chunks, this.bytes);
      const { segment, bodyOffset } = await this.sink.appendToLog(encoded);
      this.stage = 'committed';
      this.sink.committedToLog(envelope, segment, bodyOffset, this.chunks);
      return envelope;
    }
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

  private async moveToFile(): Promise<void> {
    const header = Buffer.from(`${JSON.stringify(this.envelope)}\n`);
    this.headerLength = header.length;
    this.file = await MessageFileWriter.create(this.sink.tmpPath(this.id), header);
    for (const c of this.chunks) await this.file.write(c);
    this.chunks = [];
  }
}
