import cluster from 'node:cluster';
import { join } from 'node:path';
import type { PosternConfig } from '../config/schema.js';
import { HealthMonitor } from '../events/health.js';
import { eventBusOf, type Logger } from '../events/logger.js';
import { GatewayMetrics } from '../events/metrics.js';
import type { QueueBackend } from '../queue/backend.js';
import { spoolShardDir } from '../queue/fs/shards.js';
import type { AuditTrail } from '../events/audit.js';
import { serveIpc } from './ipc.js';
import { LocalQueueOps, type QueueListQuery } from './queue-ops.js';
import { auditGate, type AdminSources } from './sources.js';

export interface OperationsOptions {
  config: PosternConfig;
  dataDir: string;
  shard: number;
  queue: QueueBackend;
  logger: Logger;
  /** Ingress's connection counts (read at scrape time, so ingress may be made after this). */
  connections?: (() => { accepted: number; rejected: number }) | undefined;
  journalReady?: (() => boolean) | undefined;
  redisReady?: (() => boolean) | undefined;
  /** This process's audit trail: readiness with audit.failClosed, metrics, and the admin API's changes. */
  audit?: AuditTrail | undefined;
  tlsForecast?: AdminSources['tlsForecast'];
  policy: AdminSources['policy'];
}

/** Readiness, metrics and the admin side of the queue of one gateway process. */
export interface Operations {
  health: HealthMonitor;
  metrics: GatewayMetrics;
  queue: LocalQueueOps;
  /** For an admin listener in this process (workers: 1). */
  sources: AdminSources;
  close(): void;
}

/**
 * Wiring for src/main.ts: starts the health probes (awaited, so the first SMTP session
 * already knows), subscribes the metrics to the event bus and, in a cluster worker,
 * answers the primary's admin requests for this shard.
 */
export async function startOperations(o: OperationsOptions): Promise<Operations> {
  const log = o.logger.child({ component: 'health' });
  const health = new HealthMonitor({
    // Where the fs spool creates a large message's file: what a failing disk breaks first.
    spoolDir: o.config.queue.backend === 'fs' ? join(spoolShardDir(o.dataDir, o.shard), 'tmp') : undefined,
    dataDir: o.dataDir,
    limits: o.config.health,
    logger: log,
    journalReady: o.journalReady,
    redisReady: o.redisReady,
    auditReady: o.audit && o.config.audit.failClosed ? () => o.audit!.status().writable : undefined,
  });
  await health.start();
  const metrics = new GatewayMetrics(eventBusOf(o.logger), {
    queue: () => o.queue.readStats?.() ?? o.queue.stats(),
    sharedQueue: o.config.queue.backend === 'redis',
    connections: o.connections,
    ready: () => health.report().ready,
    audit: o.audit && (() => o.audit!.status()),
  });
  const queue = new LocalQueueOps(o.queue, o.logger.child({ component: 'admin' }), o.shard, { sharedQueue: o.config.queue.backend === 'redis' });
  const sources: AdminSources = {
    queue,
    metrics: () => metrics.registry.metrics(),
    readiness: async () => health.report(),
    audit: o.audit && auditGate(o.audit),
    tlsForecast: o.tlsForecast,
    policy: o.policy,
  };
  const stopServing = cluster.isWorker
    ? serveIpc({
        'queue.list': (query: QueueListQuery) => queue.list(query),
        'queue.show': (id: string) => queue.show(id),
        'queue.retry': (id: string, actor: string) => queue.retryNow(id, actor),
        'queue.remove': (id: string, reason: string, actor: string) => queue.remove(id, reason, actor),
        metrics: () => metrics.registry.getMetricsAsJSON(),
        health: async () => health.report(),
      })
    : undefined;
  return {
    health,
    metrics,
    queue,
    sources,
    close() {
      stopServing?.();
      health.stop();
      metrics.close();
    },
  };
}
