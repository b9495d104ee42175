import type { Worker } from 'node:cluster';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { HealthReport } from '../events/health.js';
import { IpcClient } from './ipc.js';
import type { QueueChange, QueueEntry, QueueOps } from './queue-ops.js';
import type { AdminSources } from './sources.js';

export interface ClusterWorker {
  worker: Worker;
  shard: number;
}

/**
 * The admin sources of a cluster primary: every question goes to every live worker (each
 * owns one spool shard) and the answers are merged. Metrics are summed by prom-client's
 * AggregatorRegistry, each metric as it declares (counters and queue depth add up, the
 * oldest message's age is the maximum, readiness the minimum).
 */
export class ClusterSources implements AdminSources {
  readonly queue: QueueOps;
  private readonly ipc: IpcClient;

  constructor(
    private readonly workers: () => ClusterWorker[],
    timeoutMs = 5000,
  ) {
    this.ipc = new IpcClient(timeoutMs);
    const all = <T>(op: string, ...args: unknown[]) => this.ask<T>(op, ...args);
    this.queue = {
      list: async () => (await all<QueueEntry[]>('queue.list')).flat().sort((a, b) => a.receivedAt.localeCompare(b.receivedAt)),
      show: async (id) => (await all<QueueEntry | undefined>('queue.show', id)).find((e) => e !== undefined && e !== null),
      retryNow: async (id, actor) => pick(id, await all<QueueChange>('queue.retry', id, actor)),
      remove: async (id, reason, actor) => pick(id, await all<QueueChange>('queue.remove', id, reason, actor)),
    };
  }

  async metrics(): Promise<string> {
    const perWorker = await this.ask<MetricObjectWithValues<MetricValue<string>>[]>('metrics');
    return AggregatorRegistry.aggregate(perWorker).metrics();
  }

  async readiness(): Promise<HealthReport> {
    const live = this.workers();
    if (!live.length) return { ready: false, problems: [{ check: 'spool', code: 451, reason: 'no worker process is running' }], checkedAt: new Date().toISOString() };
    const reports = await Promise.all(
      live.map(({ worker, shard }) =>
        this.ipc.request<HealthReport>(worker, 'health').then(
          (r) => ({ ...r, problems: r.problems.map((p) => ({ ...p, shard })) }),
          (err: Error): HealthReport => ({ ready: false, problems: [{ check: 'spool', code: 451, reason: `shard ${shard}: ${err.message}`, shard }], checkedAt: new Date().toISOString() }),
        ),
      ),
    );
    return { ready: reports.every((r) => r.ready), problems: reports.flatMap((r) => r.problems), checkedAt: new Date().toISOString() };
  }

  close(): void {
    this.ipc.close();
  }

  /** Every live worker's answer; one that does not answer fails the whole question (no partial lists). */
  private ask<T>(op: string, ...args: unknown[]): Promise<T[]> {
    return Promise.all(this.workers().map(({ worker }) => this.ipc.request<T>(worker, op, ...args)));
  }
}

/** The shard that had the message answers done or busy; the others, not-found. */
function pick(id: string, answers: QueueChange[]): QueueChange {
  return answers.find((a) => a.result === 'done') ?? answers.find((a) => a.result === 'busy') ?? answers.find((a) => a.result === 'unsupported') ?? { result: 'not-found', id };
}
