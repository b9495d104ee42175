import { BlockList, isIP } from 'node:net';

const LOOPBACK_6 = new BlockList();
LOOPBACK_6.addAddress('::1', 'ipv6');
LOOPBACK_6.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

/**
 * Whether a listen host is reachable only from this machine: 127.0.0.0/8, ::1 (also as
 * ::ffff:127.x.y.z) or "localhost". 0.0.0.0, :: and every other address are not.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return LOOPBACK_6.check(h, 'ipv6');
  return false;
}
