import type { Worker } from 'node:cluster';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';
import type { HealthReport } from '../events/health.js';
import { IpcClient } from './ipc.js';
import type { QueueChange, QueueEntry, QueueOps } from './queue-ops.js';
import type { AdminSources, AuditGate } from './sources.js';

export interface ClusterWorker {
  worker: Worker;
  shard: number;
}

/**
 * The admin sources of a cluster primary: every question goes to every live worker (each
 * owns one spool shard) and the answers are merged. Metrics are summed by prom-client's
 * AggregatorRegistry, each metric as it declares (counters add up; the queue depth too,
 * unless the queue is shared (Redis), where every worker sees all of it and the largest
 * reading counts; the oldest message's age is the maximum, readiness the minimum).
 *
 * With a shared queue every worker lists every message, so lists are merged by id; and a
 * change (retry, delete) is asked of one worker at a time until one has the message, so
 * that it is made once, not once per worker. For sharded spools that is the same answer:
 * only the owning shard has it.
 */
export class ClusterSources implements AdminSources {
  readonly queue: QueueOps;
  readonly audit: AuditGate | undefined;
  readonly policy: AdminSources['policy'];
  private readonly ipc: IpcClient;
  private readonly own: Registry | undefined;

  constructor(
    private readonly workers: () => ClusterWorker[],
    opts: {
      /** The policy as the workers hold it: the primary loads and watches the same file. */
      policy: AdminSources['policy'];
      timeoutMs?: number;
      /** The primary's own metrics (its audit chain, admin authentication), added to the workers'. */
      own?: Registry | undefined;
      /** The primary's audit chain, where the admin listener's events go. */
      audit?: AuditGate | undefined;
    },
  ) {
    const timeoutMs = opts.timeoutMs ?? 5000;
    this.policy = opts.policy;
    this.own = opts.own;
    this.audit = opts.audit;
    this.ipc = new IpcClient(timeoutMs);
    const all = <T>(op: string, ...args: unknown[]) => this.ask<T>(op, ...args);
    this.queue = {
      list: async () => uniqueById((await all<QueueEntry[]>('queue.list')).flat()).sort((a, b) => a.receivedAt.localeCompare(b.receivedAt)),
      show: async (id) => (await all<QueueEntry | undefined>('queue.show', id)).find((e) => e !== undefined && e !== null),
      retryNow: (id, actor) => this.firstThatHasIt(id, 'queue.retry', id, actor),
      remove: (id, reason, actor) => this.firstThatHasIt(id, 'queue.remove', id, reason, actor),
    };
  }

  async metrics(): Promise<string> {
    const perWorker = await this.ask<MetricObjectWithValues<MetricValue<string>>[]>('metrics');
    if (this.own) perWorker.push(await this.own.getMetricsAsJSON());
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

  /** Asks the workers in turn; the first answer other than not-found is the answer. */
  private async firstThatHasIt(id: string, op: string, ...args: unknown[]): Promise<QueueChange> {
    for (const { worker } of this.workers()) {
      const answer = await this.ipc.request<QueueChange>(worker, op, ...args);
      if (answer.result !== 'not-found') return answer;
    }
    return { result: 'not-found', id };
  }

  /** Every live worker's answer; one that does not answer fails the whole question (no partial lists). */
  private ask<T>(op: string, ...args: unknown[]): Promise<T[]> {
    return Promise.all(this.workers().map(({ worker }) => this.ipc.request<T>(worker, op, ...args)));
  }
}

/** One entry per message: with a shared queue every worker lists all of them. */
function uniqueById(entries: QueueEntry[]): QueueEntry[] {
  return [...new Map(entries.map((e) => [e.id, e] as const)).values()];
}
