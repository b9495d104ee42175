import { join } from 'node:path';
import { GroupCommit } from './audit-batch.js';
import type { AuditEntry } from './audit-chain.js';
import { isAudited } from './audit-events.js';
import { sanitizeFields } from './audit-sanitize.js';
import { AuditWriter } from './audit-writer.js';
import type { EventBus } from './bus.js';
import { EVENTS, type Logger } from './logger.js';

/** How the trail's writing goes: for readiness (audit.failClosed), metrics and the admin API. */
export interface AuditStatus {
  /** false from a failed write until a write succeeds again. */
  writable: boolean;
  /** Failed writes since start (each is retried). */
  failures: number;
  /** Records held in memory, not yet on disk. */
  pending: number;
}

export interface AuditTrail {
  /** Resolves once every event published before the call is on disk; rejects when a write of some of them fails (the records stay queued). */
  flush(): Promise<void>;
  status(): AuditStatus;
  /** Stops listening, writes what is left. */
  close(): Promise<void>;
}

export interface AuditTrailOptions {
  dataDir: string;
  /** The worker process's spool shard (each writes its own chain), or a name such as "cli". */
  shard: number | string;
  bus: EventBus;
  logger: Logger;
  /** Group commit window (config audit.flushInterval). */
  flushInterval?: number;
  /** Files are started anew at this size (and each UTC day); default 64 MB. */
  maxFileBytes?: number;
}

/** Records held in memory while the disk refuses writes; beyond this they are counted, then noted as a gap. */
const MAX_PENDING = 100_000;

export const auditShardDir = (dataDir: string, shard: number | string) => join(dataDir, 'audit', String(shard));

/**
 * The audit trail: every audited event on the bus becomes a hash-chained record under
 * <dataDir>/audit/<shard>/, written in batches with one fdatasync each. The bus listener
 * only copies the (sanitised) fields into memory, so mail never waits for the disk.
 */
export async function startAuditTrail(o: AuditTrailOptions): Promise<AuditTrail> {
  const log = o.logger.child({ component: 'audit' });
  const writer = await AuditWriter.open(auditShardDir(o.dataDir, o.shard), { maxFileBytes: o.maxFileBytes });
  let failures = 0;
  const write = async (batch: AuditEntry[]) => {
    const failing = batches.failing;
    await writer.append(batch);
    if (failing) log.info({ event: EVENTS.auditRecovered, failures }, 'audit trail written again; the records held in memory are on disk');
  };
  const batches = new GroupCommit<AuditEntry>(write, {
    intervalMs: o.flushInterval ?? 50,
    maxBatch: 2000,
    maxPending: MAX_PENDING,
    onError(err, inARow) {
      failures++;
      // Once, then now and then: a failing disk must not flood the log.
      if (inARow === 1 || inARow % 50 === 0) log.error({ event: EVENTS.auditFailed, err: err.message, failures: inARow, pending: batches.pending }, 'audit trail write failed; records are kept in memory and retried');
    },
  });
  let dropped = 0;
  const unsubscribe = o.bus.subscribe((e) => {
    if (!isAudited(e.event)) return;
    if (dropped && batches.push({ time: e.time, event: EVENTS.auditGap, fields: { dropped } })) dropped = 0;
    if (!batches.push({ time: e.time, event: e.event, fields: sanitizeFields(e.fields) })) dropped++;
  });
  return {
    flush: () => batches.flush(),
    status: () => ({ writable: !batches.failing, failures, pending: batches.pending }),
    async close() {
      unsubscribe();
      try {
        await batches.close();
      } finally {
        await writer.close();
      }
    },
  };
}

/**
 * For command-line tools that change things outside a running gateway (e.g. `postern
 * portal revoke`, see audit-cli.ts): appends events to the "cli" chain and returns once
 * they are durable (`time`: when it happened, default now).
 * Concurrent commands wait for each other on the chain's lock.
 */
export async function recordAuditEvents(dataDir: string, events: { event: string; fields: Record<string, unknown>; time?: number | undefined }[]): Promise<void> {
  const writer = await AuditWriter.open(auditShardDir(dataDir, 'cli'), { lockWaitMs: 30_000 });
  try {
    await writer.append(events.map((e) => ({ time: e.time ?? Date.now(), event: e.event, fields: sanitizeFields(e.fields) })));
  } finally {
    await writer.close();
  }
}
