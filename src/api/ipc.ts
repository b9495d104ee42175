import cluster, { type Worker } from 'node:cluster';

/**
 * Request/response over the cluster IPC channel, for the admin listener in the primary to
 * reach the worker that owns a spool shard. Each request has an id and a deadline; a
 * worker that died or hangs makes the request fail, never wait forever.
 */
const REQUEST = 'postern:admin-request';
const RESPONSE = 'postern:admin-response';

interface Request {
  type: typeof REQUEST;
  id: number;
  op: string;
  args: unknown[];
}

interface Response {
  type: typeof RESPONSE;
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

/**
 * The worker's IPC channel is closed (it exited, or is exiting): it will never answer.
 * Callers take it as "no answer from that shard"; the primary starts the worker again.
 * 503 when it reaches the admin API as it is.
 */
export class WorkerGoneError extends Error {
  readonly statusCode = 503;
  constructor(worker: Worker, op: string, why?: string) {
    super(`worker ${worker.id} is gone (${why ?? 'its IPC channel is closed'}); ${op} got no answer from it`);
  }
}

/**
 * The worker's channel is open but it did not answer within the deadline: it is stopped
 * (SIGSTOP), its event loop is blocked, or it is overloaded. Unlike a worker that is gone,
 * nothing starts it again, and it may still act on the question once it runs again.
 * 503 when it reaches the admin API as it is.
 */
export class WorkerTimeoutError extends Error {
  readonly statusCode = 503;
  readonly pid: number | undefined;
  constructor(
    worker: Worker,
    readonly op: string,
    readonly timeoutMs: number,
  ) {
    super(`worker ${worker.id} did not answer ${op} within ${timeoutMs} ms`);
    this.pid = worker.process.pid;
  }
}

export type IpcHandlers = Record<string, (...args: never[]) => Promise<unknown>>;

interface Pending {
  worker: Worker;
  op: string;
  resolve: (v: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** The primary's side. */
export class IpcClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly onMessage = (_worker: Worker, msg: Response) => {
    if (msg?.type !== RESPONSE) return;
    const p = this.settle(msg.id);
    if (!p) return; // answered after its deadline
    if (msg.ok) p.resolve(msg.result);
    else p.reject(new Error(msg.error ?? 'worker error'));
  };
  /** A worker whose channel closed answers nothing it was asked: fail those now, not at their deadline. */
  private readonly onDisconnect = (worker: Worker) => {
    for (const [id, p] of this.pending) if (p.worker === worker) this.settle(id)?.reject(new WorkerGoneError(worker, p.op));
  };

  constructor(private readonly timeoutMs = 5000) {
    cluster.on('message', this.onMessage);
    cluster.on('disconnect', this.onDisconnect);
  }

  request<T>(worker: Worker, op: string, ...args: unknown[]): Promise<T> {
    // A worker listed a moment ago may have exited since: sending to it would make Node
    // emit 'error' on the worker (ERR_IPC_CHANNEL_CLOSED) instead of failing this request.
    if (!worker.isConnected()) return Promise.reject(new WorkerGoneError(worker, op));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => this.settle(id)?.reject(new WorkerTimeoutError(worker, op, this.timeoutMs)), this.timeoutMs);
      this.pending.set(id, { worker, op, resolve: resolve as (v: unknown) => void, reject, timer });
      try {
        // With a callback, a send that fails (the channel closed between the check above
        // and the write) is reported here; without one it is an 'error' event on the worker.
        worker.send({ type: REQUEST, id, op, args } satisfies Request, (err) => {
          if (err) this.settle(id)?.reject(new WorkerGoneError(worker, op, err.message));
        });
      } catch (err) {
        this.settle(id)?.reject(new Error(`cannot reach worker ${worker.id}: ${(err as Error).message}`));
      }
    });
  }

  close(): void {
    cluster.off('message', this.onMessage);
    cluster.off('disconnect', this.onDisconnect);
    for (const id of this.pending.keys()) this.settle(id)?.reject(new Error('admin listener closed'));
  }

  /** Takes request `id` off the waiting list, once: an answer, its deadline or a closed channel, whichever comes first. */
  private settle(id: number): Pending | undefined {
    const p = this.pending.get(id);
    if (!p) return undefined;
    this.pending.delete(id);
    clearTimeout(p.timer);
    return p;
  }
}

/** The worker's side: answers requests with `handlers`; returns a function that stops it. */
export function serveIpc(handlers: IpcHandlers): () => void {
  const onMessage = (msg: Request) => {
    if (msg?.type !== REQUEST) return;
    const handler = handlers[msg.op] as ((...args: unknown[]) => Promise<unknown>) | undefined;
    const answer = (r: Omit<Response, 'type' | 'id'>) => process.send?.({ type: RESPONSE, id: msg.id, ...r } satisfies Response);
    if (!handler) return void answer({ ok: false, error: `unknown operation ${msg.op}` });
    handler(...msg.args).then(
      (result) => answer({ ok: true, result }),
      (err: Error) => answer({ ok: false, error: err.message }),
    );
  };
  process.on('message', onMessage);
  return () => process.off('message', onMessage);
}
