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

export type IpcHandlers = Record<string, (...args: never[]) => Promise<unknown>>;

interface Pending {
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
    const p = this.pending.get(msg.id);
    if (!p) return; // answered after its deadline
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.ok) p.resolve(msg.result);
    else p.reject(new Error(msg.error ?? 'worker error'));
  };

  constructor(private readonly timeoutMs = 5000) {
    cluster.on('message', this.onMessage);
  }

  request<T>(worker: Worker, op: string, ...args: unknown[]): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`worker ${worker.id} did not answer ${op} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      try {
        worker.send({ type: REQUEST, id, op, args } satisfies Request);
      } catch (err) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new Error(`cannot reach worker ${worker.id}: ${(err as Error).message}`));
      }
    });
  }

  close(): void {
    cluster.off('message', this.onMessage);
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new Error('admin listener closed'));
      this.pending.delete(id);
    }
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
