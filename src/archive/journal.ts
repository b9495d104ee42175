import type { PosternConfig } from '../config/schema.js';
import type { Logger } from '../events/logger.js';
import { ARCHIVE_EVENTS } from './events.js';
import { ArchiveLayout } from './layout.js';
import { openFsSink } from './open-fs-sink.js';
import { prepareItem } from './prepare.js';
import { SmtpSink } from './smtp-sink.js';
import type { JournalItem, JournalSink } from './types.js';

/** record() failed: the message must not be delivered (unless archive.failOpen). */
export class JournalError extends Error {
  constructor(
    message: string,
    readonly queueId: string,
    /** The sinks that hold the message all the same (to be skipped next time: JournalItem.storedIn). */
    readonly storedIn: string[] = [],
  ) {
    super(message);
    this.name = 'JournalError';
  }
}

/**
 * The journal step: one copy of each message, with its envelope and decisions, into
 * every configured sink before any delivery. record() resolves only when every sink
 * has it durably; a queue id recorded before is not stored again (each sink checks).
 */
/** A journal failure keeps the gateway "not ready" this long (then a new attempt tells). */
const UNREADY_AFTER_FAILURE_MS = 30_000;

export class Journal {
  private lastFailureAt = 0;

  constructor(
    private readonly sinks: JournalSink[],
    /** archive.failOpen: the worker delivers anyway, with a loud log, when record() fails. */
    readonly failOpen: boolean,
    private readonly log: Logger,
  ) {}

  /**
   * Stores the item in every sink that does not hold it yet (`item.storedIn`); resolves
   * with the names of all sinks that hold it. On failure the JournalError says which
   * do all the same (`storedIn`), for the caller to keep with the message.
   */
  async record(item: JournalItem): Promise<string[]> {
    const id = item.envelope.id;
    const before = new Set(item.storedIn ?? []);
    const todo = this.sinks.filter((s) => !before.has(s.name));
    const held = this.sinks.filter((s) => before.has(s.name)).map((s) => s.name);
    let prepared;
    try {
      prepared = todo.length ? await prepareItem(item) : undefined;
    } catch (err) {
      throw new JournalError(`journal ${id}: cannot read the message: ${(err as Error).message}`, id, held);
    }
    const results = prepared ? await Promise.allSettled(todo.map((s) => s.store(prepared))) : [];
    const failed: { sink: string; err: string; itemOnly: boolean }[] = [];
    results.forEach((r, i) => {
      const sink = todo[i] as JournalSink;
      if (r.status === 'fulfilled') held.push(sink.name);
      else failed.push({ sink: sink.name, err: (r.reason as Error).message, itemOnly: sink.refusedItemOnly?.(r.reason) ?? false });
    });
    if (failed.length) {
      // One message the archive refuses (too large...) says nothing about the next one.
      if (failed.some((f) => !f.itemOnly)) this.lastFailureAt = Date.now();
      for (const f of failed) this.log.error({ event: ARCHIVE_EVENTS.journalFailed, queueId: id, sink: f.sink, err: f.err, refused: f.itemOnly ? 'item' : 'sink-unavailable', storedIn: held }, 'journal sink failed');
      throw new JournalError(`journal ${id}: ${failed.map((f) => `${f.sink} sink: ${f.err}`).join('; ')}`, id, held);
    }
    this.lastFailureAt = 0;
    this.log.info({ event: ARCHIVE_EVENTS.journaled, queueId: id, sinks: held, ...(before.size ? { earlier: [...before] } : {}) }, 'journaled');
    return held;
  }

  /**
   * For readiness: false while a sink was recently unavailable (no connection, timeout,
   * TLS, I/O error), so SMTP answers 451 instead of taking mail the archive cannot hold;
   * the next successful record clears it. A sink refusing one item does not count. With
   * archive.failOpen mail is delivered without the archive anyway, so the journal never
   * holds up accepting it.
   */
  ready(now = Date.now()): boolean {
    return this.failOpen || now - this.lastFailureAt > UNREADY_AFTER_FAILURE_MS;
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.sinks.map((s) => s.close()));
  }
}

export interface JournalOptions {
  /** Spool shard of this process: each shard appends to its own index chain. */
  shard?: number | undefined;
}

/**
 * Opens the configured sinks (undefined when archive.enabled is false). Finishes what a
 * crash interrupted in the fs sink before the first record().
 */
export async function openJournal(config: PosternConfig, dataDir: string, logger: Logger, opts: JournalOptions = {}): Promise<Journal | undefined> {
  if (!config.archive.enabled) return undefined;
  const log = logger.child({ component: 'archive' });
  const layout = ArchiveLayout.forDataDir(dataDir);
  const sinks: JournalSink[] = [];
  try {
    for (const s of config.archive.sinks) {
      if (s.type === 'fs') sinks.push(await openFsSink(config, layout, log, opts.shard ?? 0));
      else {
        const smtp = new SmtpSink(s, layout, config.hostname, config.delivery.retry.lifetime);
        sinks.push(smtp);
        void smtp.pruneMarkers().catch(() => undefined);
      }
    }
  } catch (err) {
    await Promise.allSettled(sinks.map((s) => s.close()));
    throw err;
  }
  return new Journal(sinks, config.archive.failOpen, log);
}
