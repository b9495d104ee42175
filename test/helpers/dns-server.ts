import { createSocket, type Socket } from 'node:dgram';
import dnsPacket from 'dns-packet';

export type Zone = Record<string, { MX?: { exchange: string; priority: number }[]; A?: string[]; AAAA?: string[]; TXT?: string[]; /** Answer SERVFAIL (a broken zone) for every type. */ SERVFAIL?: boolean }>;

/**
 * A tiny authoritative DNS server on 127.0.0.1 for tests: answers from a mutable zone,
 * NXDOMAIN for unknown names, empty answers (NODATA) for a known name without the type.
 */
export class TestDns {
  zone: Zone;
  queries: { name: string; type: string }[] = [];
  private socket: Socket | undefined;
  port = 0;

  constructor(zone: Zone = {}) {
    this.zone = zone;
  }

  get server(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    const socket = createSocket('udp4');
    this.socket = socket;
    socket.on('message', (msg, rinfo) => {
      let query;
      try {
        query = dnsPacket.decode(msg);
      } catch {
        return;
      }
      const q = query.questions?.[0];
      if (!q) return;
      this.queries.push({ name: q.name, type: q.type });
      const entry = this.zone[q.name.toLowerCase()];
      const answers: dnsPacket.Answer[] = [];
      if (entry) {
        if (q.type === 'MX') for (const mx of entry.MX ?? []) answers.push({ type: 'MX', name: q.name, ttl: 60, data: { exchange: mx.exchange, preference: mx.priority } });
        if (q.type === 'A') for (const a of entry.A ?? []) answers.push({ type: 'A', name: q.name, ttl: 60, data: a });
        if (q.type === 'AAAA') for (const a of entry.AAAA ?? []) answers.push({ type: 'AAAA', name: q.name, ttl: 60, data: a });
        if (q.type === 'TXT') for (const t of entry.TXT ?? []) answers.push({ type: 'TXT', name: q.name, ttl: 60, data: [t] });
      }
      const response = dnsPacket.encode({
        type: 'response',
        id: query.id,
        flags: dnsPacket.AUTHORITATIVE_ANSWER | (entry ? (entry.SERVFAIL ? 2 : 0) : 3), // rcode 2 = SERVFAIL, 3 = NXDOMAIN
        questions: query.questions,
        answers,
      });
      socket.send(response, rinfo.port, rinfo.address);
    });
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
    this.port = socket.address().port;
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.socket ? this.socket.close(() => resolve()) : resolve()));
  }
}
