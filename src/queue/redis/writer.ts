import type { Redis } from 'ioredis';
import type { Envelope } from '../../types.js';
import type { IncomingEnvelope, SpoolWriter } from '../backend.js';
import { BodyBits } from '../body-bits.js';
import type { RedisKeys } from './keys.js';
import { execTransaction, ScriptRefusal } from './lua.js';

/** Chunks are gathered up to this size before one APPEND (fewer round trips, bounded memory). */
export const APPEND_BATCH = 256 * 1024;
/**
 * Backstop expiry of a temp body, renewed by every APPEND: should no instance ever run
 * again, a half-received body still goes away. Normal cleanup is by reference (every
 * heartbeat, see CLEAN_TMPS in scripts.ts); this only has to outlast the longest DATA phase.
 */
export const TMP_TTL_MS = 6 * 3_600_000;

/** What the writer needs of the queue. */
export interface RedisSink {
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly instanceId: string;
  /** Makes the message visible (one script) and, when configured, waits for replicas. */
  commitMessage(envelope: Envelope, tmpMember: string): Promise<void>;
  /** Undoes a commit whose durability could not be confirmed. */
  uncommit(id: string): Promise<void>;
}

/**
 * Receives one body into a temp key by APPEND, never holding more than one batch in
 * memory: a 25 MB message costs this process about APPEND_BATCH. The first APPEND goes
 * in one MULTI with the intent record (the SET of temp bodies), so a temp key never
 * exists without the record that lets the heartbeats clean it up after a crash.
 */
export class RedisSpoolWriter implements SpoolWriter {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private bytes = 0;
  private readonly bits = new BodyBits();
  private registered = false;
  private flushing: Promise<void> = Promise.resolve();
  private failure: unknown;
  private stage: 'open' | 'unconfirmed' | 'refused' | 'committed' | 'aborted' = 'open';
  private readonly tmpMember: string;
  private readonly tmpKey: string;

  constructor(
    private readonly sink: RedisSink,
    private readonly envelope: IncomingEnvelope & { id: string },
  ) {
    this.tmpMember = sink.keys.tmpMember(sink.instanceId, envelope.id);
    this.tmpKey = sink.keys.tmp(sink.instanceId, envelope.id);
  }

  get id(): string {
    return this.envelope.id;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.stage !== 'open') throw new Error(`queue: write after ${this.stage}`);
    if (this.failure) throw this.failure;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    this.bytes += chunk.length;
    this.bits.push(chunk);
    if (this.buffered >= APPEND_BATCH) await this.flush();
  }

  async commit(): Promise<Envelope> {
    if (this.stage !== 'open') throw new Error(`queue: commit after ${this.stage}`);
    await this.flush();
    if (this.failure) throw this.failure;
    const envelope: Envelope = { ...this.envelope, size: this.bytes, bodyBits: this.bits.value };
    // From here on the message may exist in Redis even if the call fails (the reply was
    // lost): abort() must then remove it, because the client is told 4xx and will retry.
    this.stage = 'unconfirmed';
    try {
      await this.sink.commitMessage(envelope, this.tmpMember);
    } catch (err) {
      // Refused by the script: nothing was made visible, and nothing may be removed (the
      // refusal may be about an id that is someone else's message).
      if (err instanceof ScriptRefusal) this.stage = 'refused';
      throw err;
    }
    this.stage = 'committed';
    return envelope;
  }

  async abort(): Promise<void> {
    if (this.stage === 'committed' || this.stage === 'aborted') return;
    const unconfirmed = this.stage === 'unconfirmed';
    this.stage = 'aborted';
    this.chunks = [];
    await this.flushing.catch(() => undefined);
    // Both undos go out at once on the one connection: Redis runs them after whatever this
    // writer sent before (an APPEND or commit that timed out but still sits in Redis's
    // input buffer is run first, then undone), and a Redis that hangs costs the SMTP
    // client one commandTimeout here, not two. The temp key (if the commit never renamed
    // it) and its intent record go together.
    const undos = await Promise.allSettled([
      unconfirmed ? this.sink.uncommit(this.id) : undefined,
      this.registered ? execTransaction(this.sink.redis.multi().del(this.tmpKey).srem(this.sink.keys.tmps, this.tmpMember)) : undefined,
    ]);
    const failed = undos.find((u): u is PromiseRejectedResult => u.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** Sends what is buffered; one APPEND in flight at a time keeps the bytes in order. */
  private flush(): Promise<void> {
    if (!this.buffered) return this.flushing;
    const data = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks, this.buffered);
    this.chunks = [];
    this.buffered = 0;
    const first = !this.registered;
    this.registered = true;
    this.flushing = this.flushing.then(async () => {
      if (this.failure) return;
      const tx = this.sink.redis.multi();
      if (first) tx.sadd(this.sink.keys.tmps, this.tmpMember);
      tx.append(this.tmpKey, data).pexpire(this.tmpKey, TMP_TTL_MS);
      try {
        await execTransaction(tx);
      } catch (err) {
        this.failure = err;
        throw err;
      }
    });
    return this.flushing;
  }
}
