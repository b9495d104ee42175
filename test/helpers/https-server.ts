import { createServer, type Server } from 'node:https';

export interface Route {
  status?: number;
  contentType?: string;
  body?: string | Buffer;
  location?: string;
  delayMs?: number;
  /** Send the body one byte per this many ms (a trickling server). */
  trickleMs?: number;
}

/** An HTTPS server on 127.0.0.1 whose answer per path a test sets (MTA-STS, WKD, ...). */
export class TestHttps {
  routes = new Map<string, Route>();
  requests: string[] = [];
  port = 0;
  private server: Server | undefined;

  constructor(private readonly tls: { cert: string; key: string }) {}

  async start(): Promise<this> {
    this.server = createServer({ cert: this.tls.cert, key: this.tls.key }, (req, res) => {
      this.requests.push(`${req.headers.host ?? ''}${req.url ?? ''}`);
      const r = this.routes.get(req.url ?? '') ?? { status: 404, body: 'not found' };
      const answer = () => {
        res.statusCode = r.status ?? 200;
        if (r.location) res.setHeader('location', r.location);
        res.setHeader('content-type', r.contentType ?? 'text/plain');
        if (!r.trickleMs) return res.end(r.body ?? '');
        const body = Buffer.from(r.body ?? '');
        let sent = 0;
        const drip = setInterval(() => {
          if (res.destroyed || sent >= body.length) {
            clearInterval(drip);
            if (!res.destroyed) res.end();
            return;
          }
          res.write(body.subarray(sent, ++sent));
        }, r.trickleMs);
        res.on('close', () => clearInterval(drip));
      };
      if (r.delayMs) setTimeout(answer, r.delayMs);
      else answer();
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', () => resolve()));
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
