import { isIPv6 } from 'node:net';
import { normalizeIp, parseCidr } from '../../ingress/cidr.js';
import { addressKey, type PortalStore } from '../store.js';
import { Refusal } from './refusal.js';

export interface RateLimitSettings {
  window: number;
  sessions: number;
  logins: number;
  resets: number;
  resetsPerAccount: number;
  replyWindow: number;
  replies: number;
  replyBytes: number;
}

type PerClient = 'sessions' | 'logins' | 'resets';

/**
 * Per-client limits on what costs the portal: new visitor sessions (each one is stored),
 * login attempts (each one is a password check) and password-reset requests (each one
 * a mail or a paid SMS); reset requests are also limited per account asked for, so many
 * addresses cannot pump texts to one number. Counted through the store, so on Redis
 * every instance sees the same counts. Over the limit: a Refusal (429).
 */
export class RateLimits {
  constructor(
    private readonly store: Pick<PortalStore, 'countHit'>,
    private readonly settings: RateLimitSettings,
  ) {}

  check(kind: PerClient, ip: string): Promise<void> {
    return this.count(`${kind}:${clientKey(ip)}`, this.settings[kind], 'from your network');
  }

  /**
   * Reset requests for one identity, counted whether or not it has an account (the answer
   * must not tell which addresses have one), by a hash: no address in a rate-limit key.
   */
  checkResetsFor(identity: string): Promise<void> {
    return this.count(`resets-account:${addressKey(identity)}`, this.settings.resetsPerAccount, 'for this address');
  }

  /**
   * Secure replies of one account (each one a message signed for the gateway's domain),
   * counted before the reply is read, by a hash of the identity.
   */
  checkReplies(identity: string): Promise<void> {
    return this.count(`replies:${addressKey(identity)}`, this.settings.replies, 'from your account', this.settings.replyWindow);
  }

  /** The bytes of one account's secure replies, counted with each reply as composed. */
  checkReplyBytes(identity: string, bytes: number): Promise<void> {
    return this.count(`reply-bytes:${addressKey(identity)}`, this.settings.replyBytes, 'from your account', this.settings.replyWindow, bytes);
  }

  private async count(bucket: string, limit: number, whose: string, window = this.settings.window, amount = 1): Promise<void> {
    const n = await this.store.countHit(bucket, window, amount);
    if (n <= limit) return;
    const minutes = Math.ceil(window / 60_000);
    throw new Refusal(429, 'Too many requests', `Too many requests came ${whose}. Wait ${minutes} minute${minutes === 1 ? '' : 's'} and try again.`, Math.ceil(window / 1000));
  }
}

/** One client: an IPv4 address, or an IPv6 /64 (one subscriber's usual share). */
export function clientKey(ip: string): string {
  const addr = normalizeIp(ip.replace(/%.*$/, ''));
  if (!isIPv6(addr)) return addr;
  const net = parseCidr(`${addr}/64`);
  return net ? `${net.network.toString(16)}/64` : addr;
}
