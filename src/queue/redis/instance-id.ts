import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/** Names one process in what it holds on the shared Redis (leases, temp keys): host, pid and a random part, unique per start. */
export function newInstanceId(): string {
  return `${hostname().replace(/[^\w.-]/g, '_')}.${process.pid}.${randomBytes(4).toString('hex')}`;
}
