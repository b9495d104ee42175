import { isIPv4, isIPv6 } from 'node:net';

/** An IPv4 or IPv6 network as a bigint prefix, so both families share one matcher. */
export interface Cidr {
  family: 4 | 6;
  network: bigint;
  bits: number;
}

export function parseCidr(text: string): Cidr | undefined {
  const parts = text.trim().split('/');
  if (parts.length > 2) return undefined;
  const [addr = '', bitsText] = parts;
  const family = isIPv4(addr) ? 4 : isIPv6(addr) ? 6 : undefined;
  if (!family) return undefined;
  const width = family === 4 ? 32 : 128;
  const bits = bitsText === undefined ? width : Number(bitsText);
  if (!Number.isInteger(bits) || bits < 0 || bits > width || (bitsText !== undefined && !/^\d+$/.test(bitsText))) return undefined;
  const value = ipToBigInt(addr, family);
  // An IPv4-mapped network (::ffff:0:0/96 and inside it, e.g. ::ffff:10.0.0.0/104) is the
  // IPv4 network it carries: peers are matched as IPv4 (normalizeIp), so kept as IPv6 it
  // would never match anyone.
  if (family === 6 && bits >= 96 && value >> 32n === 0xffffn) {
    return { family: 4, network: value & 0xffffffffn & mask(bits - 96, 32), bits: bits - 96 };
  }
  return { family, network: value & mask(bits, width), bits };
}

export function cidrContains(cidr: Cidr, ip: string): boolean {
  const normalized = normalizeIp(ip);
  const family = isIPv4(normalized) ? 4 : isIPv6(normalized) ? 6 : undefined;
  if (family !== cidr.family) return false;
  const width = family === 4 ? 32 : 128;
  return (ipToBigInt(normalized, family) & mask(cidr.bits, width)) === cidr.network;
}

/** IPv4-mapped IPv6 addresses (::ffff:10.0.0.1) are matched as the IPv4 address they carry. */
export function normalizeIp(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return mapped ? (mapped[1] as string) : ip;
}

function mask(bits: number, width: number): bigint {
  if (bits === 0) return 0n;
  return ((1n << BigInt(bits)) - 1n) << BigInt(width - bits);
}

function ipToBigInt(ip: string, family: 4 | 6): bigint {
  if (family === 4) return ip.split('.').reduce((acc, octet) => (acc << 8n) + BigInt(Number(octet)), 0n);
  let text = ip;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = ipToBigInt(v4[1] as string, 4);
    text = text.slice(0, -(v4[1] as string).length) + ((n >> 16n) & 0xffffn).toString(16) + ':' + (n & 0xffffn).toString(16);
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array(missing).fill('0'), ...tailGroups];
  return groups.reduce((acc, g) => (acc << 16n) + BigInt(parseInt(g || '0', 16)), 0n);
}
