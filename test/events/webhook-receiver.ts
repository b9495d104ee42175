import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  json: { id: string; event: string; code: string; time: string; data: Record<string, unknown> };
}

/** A webhook receiver on 127.0.0.1; `status` decides each answer (default 200). */
export class WebhookReceiver {
  received: Received[] = [];
  requests = 0;
  status: (r: Received) => number = () => 200;
  /** Takes each request (counted) and never answers it: the sender's attempt lasts its whole timeout. */
  hang = false;
  private server: Server | undefined;

  constructor(public port = 0) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks/postern?token=in-the-url`;
  }

  async start(): Promise<this> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.requests++;
        if (this.hang) return; // held open until stop()
        const body = Buffer.concat(chunks).toString('utf8');
        const r: Received = { headers: req.headers, body, json: JSON.parse(body) as Received['json'] };
        const status = this.status(r);
        if (status >= 200 && status < 300) this.received.push(r);
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  /** Deliveries accepted, by Postern-Delivery id. */
  ids(): string[] {
    return this.received.map((r) => String(r.headers['postern-delivery']));
  }
}

/** A loopback port with nothing listening on it (taken from the system, then released). */
export async function freePort(): Promise<number> {
  const r = await new WebhookReceiver().start();
  const port = r.port;
  await r.stop();
  return port;
}
