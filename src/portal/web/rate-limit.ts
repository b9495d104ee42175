import { isIPv6 } from 'node:net';
import { normalizeIp, parseCidr } from '../../ingress/cidr.js';
import type { PortalStore } from '../store.js';
import { Refusal } from './refusal.js';

export interface RateLimitSettings {
  window: number;
  sessions: number;
  logins: number;
}

/**
 * Per-client limits on what costs the portal: new visitor sessions (each one is stored)
 * and login attempts (each one is a password check). Counted through the store, so on
 * Redis every instance sees the same counts. Over the limit: a Refusal (429).
 */
export class RateLimits {
  constructor(
    private readonly store: Pick<PortalStore, 'countHit'>,
    private readonly settings: RateLimitSettings,
  ) {}

  async check(kind: 'sessions' | 'logins', ip: string): Promise<void> {
    const n = await this.store.countHit(`${kind}:${clientKey(ip)}`, this.settings.window);
    if (n <= this.settings[kind]) return;
    const minutes = Math.ceil(this.settings.window / 60_000);
    throw new Refusal(429, 'Too many requests', `Too many requests came from your network. Wait ${minutes} minute${minutes === 1 ? '' : 's'} and try again.`, Math.ceil(this.settings.window / 1000));
  }
}

/** One client: an IPv4 address, or an IPv6 /64 (one subscriber's usual share). */
export function clientKey(ip: string): string {
  const addr = normalizeIp(ip.replace(/%.*$/, ''));
  if (!isIPv6(addr)) return addr;
  const net = parseCidr(`${addr}/64`);
  return net ? `${net.network.toString(16)}/64` : addr;
}
