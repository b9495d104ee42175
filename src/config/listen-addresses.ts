import { formatAddress } from '../common/listen-error.js';
import type { PosternConfig } from './schema.js';

export interface ListenAddress {
  /** The setting it comes from: smtp.listen, portal.listen, admin.listen. */
  setting: string;
  host: string;
  port: number;
}

/** Every address `postern start` listens on, with its setting. */
export function listenAddresses(config: PosternConfig): ListenAddress[] {
  return [
    ...config.smtp.listen.map((a) => ({ setting: 'smtp.listen', ...a })),
    ...(config.portal.enabled ? [{ setting: 'portal.listen', ...config.portal.listen }] : []),
    ...(config.admin.enabled ? [{ setting: 'admin.listen', ...config.admin.listen }] : []),
  ];
}

/**
 * Two listeners given one port (portal.listen and admin.listen both on :8443, or one on
 * 0.0.0.0 and another on 127.0.0.1): the second cannot bind, whatever the machine. A
 * config error, so check-config names it. 0.0.0.0 takes the port on every IPv4 address,
 * :: on every address (Node listens dual-stack); port 0 is a new port each time.
 */
export function listenConflicts(addresses: ListenAddress[]): string[] {
  const overlap = (a: string, b: string) => a === b || a === '::' || b === '::' || (a === '0.0.0.0' && !b.includes(':')) || (b === '0.0.0.0' && !a.includes(':'));
  return addresses.flatMap((b, j) => {
    const a = addresses.slice(0, j).find((x) => x.port !== 0 && x.port === b.port && overlap(x.host, b.host));
    return a ? [`${b.setting}: ${formatAddress(b.host, b.port)} takes the port of ${a.setting} ${formatAddress(a.host, a.port)}; give each listener its own port`] : [];
  });
}
