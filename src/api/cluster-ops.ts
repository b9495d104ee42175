import type { Worker } from 'node:cluster';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';
import type { HealthReport } from '../events/health.js';
import { apiError } from './context.js';
import { IpcClient, WorkerGoneError } from './ipc.js';
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
 *
 * A worker that exits while a question is asked (it was live when the list was taken) is
 * no answer from its shard, as a worker being started again is: the others still answer.
 * Only where its silence would make the answer wrong (a message not found, which it may
 * hold) is the question answered 503, to be asked again once it is back.
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
    this.queue = {
      list: async () => uniqueById((await this.ask<QueueEntry[]>('queue.list')).answers.flat()).sort((a, b) => a.receivedAt.localeCompare(b.receivedAt)),
      show: async (id) => {
        const { answers, gone } = await this.ask<QueueEntry | undefined>('queue.show', id);
        const found = answers.find((e) => e !== undefined && e !== null);
        if (!found && gone.length) throw notFoundWhileGone(id, gone);
        return found;
      },
      retryNow: (id, actor) => this.firstThatHasIt(id, 'queue.retry', id, actor),
      remove: (id, reason, actor) => this.firstThatHasIt(id, 'queue.remove', id, reason, actor),
    };
  }

  async metrics(): Promise<string> {
    const perWorker = (await this.ask<MetricObjectWithValues<MetricValue<string>>[]>('metrics')).answers;
    if (this.own) perWorker.push(await this.own.getMetricsAsJSON());
    return AggregatorRegistry.aggregate(perWorker).metrics();
  }

  async readiness(): Promise<HealthReport> {
    const noWorker: HealthReport = { ready: false, problems: [{ check: 'spool', code: 451, reason: 'no worker process is running' }], checkedAt: new Date().toISOString() };
    const live = this.workers();
    if (!live.length) return noWorker;
    const answers = await Promise.all(
      live.map(({ worker, shard }) =>
        this.ipc.request<HealthReport>(worker, 'health').then(
          (r) => ({ ...r, problems: r.problems.map((p) => ({ ...p, shard })) }),
          (err: Error): HealthReport | undefined =>
            // Gone since the list was taken: not running, as a shard being started again (not listed) is.
            err instanceof WorkerGoneError ? undefined : { ready: false, problems: [{ check: 'spool', code: 451, reason: `shard ${shard}: ${err.message}`, shard }], checkedAt: new Date().toISOString() },
        ),
      ),
    );
    const reports = answers.filter((r) => r !== undefined);
    if (!reports.length) return noWorker;
    return { ready: reports.every((r) => r.ready), problems: reports.flatMap((r) => r.problems), checkedAt: new Date().toISOString() };
  }

  close(): void {
    this.ipc.close();
  }

  /** Asks the workers in turn; the first answer other than not-found is the answer. */
  private async firstThatHasIt(id: string, op: string, ...args: unknown[]): Promise<QueueChange> {
    const gone: number[] = [];
    for (const { worker, shard } of this.workers()) {
      const answer = await this.ipc.request<QueueChange>(worker, op, ...args).catch((err: unknown) => {
        if (err instanceof WorkerGoneError) return undefined;
        throw err;
      });
      if (!answer) gone.push(shard);
      else if (answer.result !== 'not-found') return answer;
    }
    if (gone.length) throw notFoundWhileGone(id, gone);
    return { result: 'not-found', id };
  }

  /**
   * Every live worker's answer, and the shards whose worker was gone by the time it was
   * asked. One that does not answer otherwise (it hangs, it fails) fails the whole
   * question: no partial lists.
   */
  private async ask<T>(op: string, ...args: unknown[]): Promise<{ answers: T[]; gone: number[] }> {
    const gone: number[] = [];
    const replies = await Promise.all(
      this.workers().map(({ worker, shard }) =>
        this.ipc.request<T>(worker, op, ...args).then(
          (answer) => ({ answer }),
          (err: unknown) => {
            if (!(err instanceof WorkerGoneError)) throw err;
            gone.push(shard);
            return undefined;
          },
        ),
      ),
    );
    return { answers: replies.flatMap((r) => (r ? [r.answer] : [])), gone };
  }
}

/** Not on the shards that answered, and a shard whose worker went away meanwhile may hold it. */
function notFoundWhileGone(id: string, gone: number[]): Error {
  const shards = gone.length === 1 ? `shard ${gone[0]}` : `shards ${gone.join(', ')}`;
  return apiError(503, `message ${id} is not on the shards that answered, and the worker of ${shards} exited during the call (it is started again): try again in a moment`);
}

/** One entry per message: with a shared queue every worker lists all of them. */
function uniqueById(entries: QueueEntry[]): QueueEntry[] {
  return [...new Map(entries.map((e) => [e.id, e] as const)).values()];
}
