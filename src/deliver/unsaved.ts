import type { PosternConfig } from '../config/schema.js';
import { EVENTS, type Logger } from '../events/logger.js';
import { LeaseLostError, NoMessageError } from '../queue/redis/lua.js';
import type { QueuedMessage } from '../types.js';

interface Held {
  message: QueuedMessage;
  tries: number;
  timer: NodeJS.Timeout;
}

/**
 * Messages whose settled state could not be written (a full or failing disk, Redis gone).
 * Released, such a message would be handed out again at once with the state it had
 * before the attempt: a loop without pause that sends again to every recipient this
 * attempt delivered. So its settled state stays here in memory, and the write is tried
 * again after delivery.retry.initialDelay, doubling up to maxDelay, until it works. On
 * stop, one last write; if that fails too it is released, and after the restart its last
 * written state applies.
 *
 * The file spool keeps the message leased meanwhile. Redis does not renew the lease of
 * a write that got no answer (src/queue/redis/leases.ts), so after leaseTime any instance
 * may take the message again from its last written state; the write made again here
 * presents the attempt's own lease (QueuedMessage.lease, held with its state), and Redis
 * refuses it once that lease is gone (the message was taken again — by another instance
 * or by this one — or the first write went through after all) or the message is gone
 * (finished since, or deleted). Such a refusal is final: writing later would replace newer
 * progress or fail for ever, so the state is dropped and the state Redis holds applies.
 * One state per message id: a later attempt's state replaces an earlier one's (the worker
 * never runs two attempts of a message at once, so the later is the newer lease).
 */
export class UnsavedStates {
  private readonly held = new Map<string, Held>();

  constructor(
    private readonly retry: PosternConfig['delivery']['retry'],
    private readonly write: (m: QueuedMessage) => Promise<void>,
    /** Gives back the lease the message was held under. */
    private readonly release: (m: QueuedMessage) => Promise<void>,
    private readonly log: Logger,
  ) {}

  get size(): number {
    return this.held.size;
  }

  hold(message: QueuedMessage, err: Error, tries = 1): void {
    const id = message.envelope.id;
    clearTimeout(this.held.get(id)?.timer);
    this.held.delete(id);
    if (refusedForGood(err)) return this.drop(id, err, tries);
    const delay = Math.min(this.retry.initialDelay * 2 ** (tries - 1), this.retry.maxDelay);
    const pending = message.state.recipients.filter((r) => r.status === 'pending').length;
    this.log.error({ event: EVENTS.deliveryError, queueId: id, err: err.message, tries, retryInMs: delay, pending }, 'could not record the attempt; its state is kept and the write is tried again later');
    const timer = setTimeout(() => void this.again(id), delay);
    timer.unref();
    this.held.set(id, { message, tries, timer });
  }

  /** Writes every held state once more; those that still fail are released. */
  async stop(): Promise<void> {
    const all = [...this.held.values()];
    this.held.clear();
    for (const h of all) {
      clearTimeout(h.timer);
      await this.write(h.message).catch(async (err: Error) => {
        if (refusedForGood(err)) return this.drop(h.message.envelope.id, err, h.tries + 1);
        this.log.error({ event: EVENTS.deliveryError, queueId: h.message.envelope.id, err: err.message }, 'could not record the attempt before stopping; released (its last written state applies)');
        await this.release(h.message).catch(() => undefined);
      });
    }
  }

  private async again(id: string): Promise<void> {
    const h = this.held.get(id);
    if (!h) return;
    try {
      await this.write(h.message);
      this.held.delete(id);
      this.log.info({ event: EVENTS.deliveryRecovered, queueId: id, tries: h.tries + 1 }, 'attempt recorded after all');
    } catch (err) {
      // stop() may have taken it meanwhile.
      if (this.held.get(id) === h) this.hold(h.message, err as Error, h.tries + 1);
    }
  }

  private drop(id: string, err: Error, tries: number): void {
    const reason =
      err instanceof NoMessageError
        ? 'the message is no longer in the queue (another attempt finished it, or it was deleted)'
        : "the attempt's lease is gone (another attempt now owns the message, or the first write went through after all)";
    this.log.warn({ event: EVENTS.leaseLost, queueId: id, queueIds: [id], err: err.message, tries, reason }, `the attempt's state is not written again: ${reason}; the state in the queue applies`);
  }
}

/**
 * When a held state is written again. On the file spool the message stays leased as long
 * as it is held, so delivery.retry's pace is fine. On Redis the lease runs out after
 * redis.leaseTime (unrenewed, see above), and a write made after that is refused once
 * another instance took the message, whose attempt then repeats this one: so the first
 * tries come within the lease (every third of it, doubling), never later than
 * delivery.retry would have made them.
 */
export function unsavedRetry(config: Pick<PosternConfig, 'delivery' | 'queue' | 'redis'>): PosternConfig['delivery']['retry'] {
  const retry = config.delivery.retry;
  if (config.queue.backend !== 'redis') return retry;
  return { ...retry, initialDelay: Math.min(retry.initialDelay, Math.max(1000, Math.floor(config.redis.leaseTime / 3))) };
}

/** The queue refused the write because the attempt's lease or the message is gone: writing again cannot work. */
function refusedForGood(err: Error): boolean {
  return err instanceof LeaseLostError || err instanceof NoMessageError;
}
