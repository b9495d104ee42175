import type { Worker } from 'node:cluster';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';
import type { HealthReport } from '../events/health.js';
import { EVENTS, type Logger } from '../events/logger.js';
import { apiError } from './context.js';
import { IpcClient, WorkerGoneError, WorkerTimeoutError } from './ipc.js';
import { mergeQueuePages } from './queue-merge.js';
import type { QueueChange, QueueEntry, QueueListPage, QueueOps } from './queue-ops.js';
import type { AdminSources, AuditGate } from './sources.js';

export interface ClusterWorker {
  worker: Worker;
  shard: number;
}

/**
 * What a 503 for a shard that gave no answer tells the client to wait (Retry-After). A
 * worker that died is started again after 1 s at the least (longer while it keeps
 * failing) and then takes a moment to be ready; one that stalled either runs again within
 * seconds or needs an operator. Asking sooner would mostly meet the same silence.
 */
const RETRY_AFTER_SECONDS = 5;

/** The shards that gave no answer to one question, by why. */
interface Silent {
  /** No live worker when the question came in: it died and is being started again (or is still starting). */
  restarting: number[];
  /** Its worker was live when the question came in and exited before it answered. */
  exited: number[];
  /** Its worker is running but did not answer within the IPC deadline (stopped, hung, overloaded). */
  hung: number[];
}

/** One worker's reply: its answer, or why there is none. */
type Reply<T> = { answer: T } | { silent: 'exited' | 'hung' };

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
 * A shard with no live worker (it died and is being started again) and one whose worker
 * exits while a question is asked (it was live when the list was taken) are no answer
 * from that shard: the others still answer, and lists and metrics leave that shard out
 * for the second or so it takes to come back (the exit is logged as gateway.worker-exit).
 * Only where its silence would make the answer wrong (a message not found, which it may
 * hold) is the question answered 503, with Retry-After, to be asked again once it is back.
 *
 * A worker that is running but does not answer within the deadline (stopped, its event
 * loop blocked) is another matter: nothing starts it again, so it may stay silent for
 * good, and a list or a sum without its shard would be wrong for as long, with nothing
 * to tell it from a true answer (a list missing its messages; counters that seem to fall,
 * which Prometheus reads as resets). Lists and metrics are then answered 503 naming the
 * shard, never partial, and every such timeout is logged (admin.worker-timeout). A
 * question about one message is still answered when a shard that did answer has it.
 */
export class ClusterSources implements AdminSources {
  readonly queue: QueueOps;
  readonly audit: AuditGate | undefined;
  readonly policy: AdminSources['policy'];
  private readonly ipc: IpcClient;
  private readonly own: Registry | undefined;
  private readonly shards: number;
  private readonly log: Logger;
  private readonly timeoutMs: number;

  constructor(
    /** The workers that are ready now, each with its shard. */
    private readonly workers: () => ClusterWorker[],
    opts: {
      /** How many shards there are (0 to shards - 1, one per configured worker), live or not. */
      shards: number;
      /** Where a worker that does not answer in time is logged. */
      log: Logger;
      /** The policy as the workers hold it: the primary loads and watches the same file. */
      policy: AdminSources['policy'];
      timeoutMs?: number;
      /** The primary's own metrics (its audit chain, admin authentication), added to the workers'. */
      own?: Registry | undefined;
      /** The primary's audit chain, where the admin listener's events go. */
      audit?: AuditGate | undefined;
    },
  ) {
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.shards = opts.shards;
    this.log = opts.log;
    this.policy = opts.policy;
    this.own = opts.own;
    this.audit = opts.audit;
    this.ipc = new IpcClient(this.timeoutMs);
    this.queue = {
      // Each shard answers one page, not its whole spool (queue-merge.ts makes the gateway's page of them).
      list: async (query) => mergeQueuePages(await this.askEveryShard<QueueListPage>('queue.list', query), query.limit),
      show: async (id) => {
        const { answers, silent } = await this.ask<QueueEntry | undefined>('queue.show', id);
        const found = answers.find((e) => e !== undefined && e !== null);
        if (!found && anySilent(silent)) throw this.notFoundWhileSilent(id, silent);
        return found;
      },
      retryNow: (id, actor) => this.firstThatHasIt(id, 'queue.retry', id, actor),
      remove: (id, reason, actor) => this.firstThatHasIt(id, 'queue.remove', id, reason, actor),
    };
  }

  async metrics(): Promise<string> {
    const perWorker = await this.askEveryShard<MetricObjectWithValues<MetricValue<string>>[]>('metrics');
    if (this.own) perWorker.push(await this.own.getMetricsAsJSON());
    return AggregatorRegistry.aggregate(perWorker).metrics();
  }

  async readiness(): Promise<HealthReport> {
    const noWorker: HealthReport = { ready: false, problems: [{ check: 'spool', code: 451, reason: 'no worker process is running' }], checkedAt: new Date().toISOString() };
    const live = this.workers();
    if (!live.length) return noWorker;
    const answers = await Promise.all(
      live.map((w) =>
        this.request<HealthReport>(w, 'health').then(
          (r) => ({ ...r, problems: r.problems.map((p) => ({ ...p, shard: w.shard })) }),
          (err: Error): HealthReport | undefined =>
            // Gone since the list was taken: not running, as a shard being started again (not listed) is.
            err instanceof WorkerGoneError ? undefined : { ready: false, problems: [{ check: 'spool', code: 451, reason: `shard ${w.shard}: ${err.message}`, shard: w.shard }], checkedAt: new Date().toISOString() },
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

  /**
   * Asks the workers in turn; the first answer other than not-found is the answer. One
   * that does not answer in time is passed over (with a sharded spool only the owning
   * shard can have the message, so another's answer is right all the same); it counts
   * only if no other shard has the message.
   */
  private async firstThatHasIt(id: string, op: string, ...args: unknown[]): Promise<QueueChange> {
    const asked = this.workers();
    const silent: Silent = { restarting: this.shardsWithout(asked), exited: [], hung: [] };
    for (const w of asked) {
      const reply = await this.askOne<QueueChange>(w, op, ...args);
      if (!('answer' in reply)) silent[reply.silent].push(w.shard);
      else if (reply.answer.result !== 'not-found') return reply.answer;
    }
    if (anySilent(silent)) throw this.notFoundWhileSilent(id, silent);
    return { result: 'not-found', id };
  }

  /**
   * For an answer about the whole gateway (the queue list, the metrics): the live
   * workers' answers. Shards being started again, or whose worker exited meanwhile, are
   * left out; a shard whose worker is running but did not answer in time fails the
   * question with 503 (see the class comment).
   */
  private async askEveryShard<T>(op: string, ...args: unknown[]): Promise<T[]> {
    const { answers, silent } = await this.ask<T>(op, ...args);
    if (silent.hung.length) throw this.notAnsweredInTime(silent.hung);
    return answers;
  }

  /** Every live worker's answer, and the shards that gave none. Any other failure (a worker's error) fails the question. */
  private async ask<T>(op: string, ...args: unknown[]): Promise<{ answers: T[]; silent: Silent }> {
    const asked = this.workers();
    const silent: Silent = { restarting: this.shardsWithout(asked), exited: [], hung: [] };
    const replies = await Promise.all(asked.map(async (w) => ({ shard: w.shard, reply: await this.askOne<T>(w, op, ...args) })));
    const answers: T[] = [];
    for (const { shard, reply } of replies) {
      if ('answer' in reply) answers.push(reply.answer);
      else silent[reply.silent].push(shard);
    }
    return { answers, silent };
  }

  /** One worker's answer, or why it gave none (it exited, or did not answer in time). */
  private askOne<T>(w: ClusterWorker, op: string, ...args: unknown[]): Promise<Reply<T>> {
    return this.request<T>(w, op, ...args).then(
      (answer): Reply<T> => ({ answer }),
      (err: unknown): Reply<T> => {
        if (err instanceof WorkerGoneError) return { silent: 'exited' };
        if (err instanceof WorkerTimeoutError) return { silent: 'hung' };
        throw err;
      },
    );
  }

  /** A question to one worker; one it did not answer in time is logged here, whoever asked it. */
  private request<T>({ worker, shard }: ClusterWorker, op: string, ...args: unknown[]): Promise<T> {
    return this.ipc.request<T>(worker, op, ...args).catch((err: unknown) => {
      if (err instanceof WorkerTimeoutError) {
        this.log.error(
          { event: EVENTS.adminWorkerTimeout, shard, pid: err.pid, op: err.op, timeoutMs: err.timeoutMs },
          `the worker of shard ${shard} did not answer an admin question in time: it is running but not answering (stopped, hung or overloaded)`,
        );
      }
      throw err;
    });
  }

  /** The shards no worker in `live` owns: their worker died and is being started again, or is still starting. */
  private shardsWithout(live: ClusterWorker[]): number[] {
    const owned = new Set(live.map((w) => w.shard));
    return Array.from({ length: this.shards }, (_, shard) => shard).filter((shard) => !owned.has(shard));
  }

  /** Not on the shards that answered, and one that gave no answer may hold it. */
  private notFoundWhileSilent(id: string, silent: Silent): Error {
    const why = [
      silent.exited.length ? `the worker of ${shardNames(silent.exited)} exited during the call (it is started again)` : '',
      silent.restarting.length ? `the worker of ${shardNames(silent.restarting)} is being started again` : '',
      // Its question waits in its channel: a change may still be made once it runs again.
      silent.hung.length ? `${shardNames(silent.hung)} did not answer within ${this.timeoutMs} ms (its worker is running but not answering, and may still act on the call when it does)` : '',
    ].filter(Boolean);
    return unavailable(`message ${id} is not on the shards that answered, and ${why.join(', and ')}: try again in a moment`);
  }

  /** A whole-gateway question a running worker did not answer: no partial answer is given. */
  private notAnsweredInTime(hung: number[]): Error {
    return unavailable(`${shardNames(hung)} did not answer within ${this.timeoutMs} ms (its worker is running but not answering: stopped, hung or overloaded), and an answer without it would be incomplete: try again in a moment`);
  }
}

const anySilent = (s: Silent) => s.restarting.length + s.exited.length + s.hung.length > 0;

const shardNames = (shards: number[]) => (shards.length === 1 ? `shard ${shards[0]}` : `shards ${shards.join(', ')}`);

/** 503 with Retry-After: the answer depends on a shard that could not give one now. */
const unavailable = (message: string) => apiError(503, message, { 'retry-after': String(RETRY_AFTER_SECONDS) });
