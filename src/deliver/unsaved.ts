import type { PosternConfig } from '../config/schema.js';
import { EVENTS, type Logger } from '../events/logger.js';
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
 * attempt delivered. So it stays leased here with its settled state in memory, and the
 * write is tried again after delivery.retry.initialDelay, doubling up to maxDelay, until
 * it works. On stop, one last write; if that fails too it is released, and after the
 * restart its last written state applies.
 */
export class UnsavedStates {
  private readonly held = new Map<string, Held>();

  constructor(
    private readonly retry: PosternConfig['delivery']['retry'],
    private readonly write: (m: QueuedMessage) => Promise<void>,
    private readonly release: (id: string) => Promise<void>,
    private readonly log: Logger,
  ) {}

  get size(): number {
    return this.held.size;
  }

  hold(message: QueuedMessage, err: Error, tries = 1): void {
    const id = message.envelope.id;
    const delay = Math.min(this.retry.initialDelay * 2 ** (tries - 1), this.retry.maxDelay);
    const pending = message.state.recipients.filter((r) => r.status === 'pending').length;
    this.log.error({ event: EVENTS.deliveryError, queueId: id, err: err.message, tries, retryInMs: delay, pending }, 'could not record the attempt; the message stays leased and the write is tried again later');
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
        this.log.error({ event: EVENTS.deliveryError, queueId: h.message.envelope.id, err: err.message }, 'could not record the attempt before stopping; released (its last written state applies)');
        await this.release(h.message.envelope.id).catch(() => undefined);
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
}
