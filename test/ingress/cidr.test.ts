import { describe, expect, it } from 'vitest';
import { cidrContains, normalizeIp, parseCidr, type Cidr } from '../../src/ingress/cidr.js';

function cidr(text: string): Cidr {
  const c = parseCidr(text);
  if (!c) throw new Error(`test setup: ${text} should parse`);
  return c;
}

const contains = (net: string, ip: string) => cidrContains(cidr(net), ip);

describe('parseCidr', () => {
  it('IPv4 block: network masked, bits kept', () => {
    expect(parseCidr('10.0.0.0/8')).toEqual({ family: 4, network: 0x0a000000n, bits: 8 });
    expect(parseCidr('192.168.1.77/24')).toEqual({ family: 4, network: 0xc0a80100n, bits: 24 });
    expect(parseCidr('172.16.255.255/12')).toEqual({ family: 4, network: 0xac100000n, bits: 12 });
  });

  it('a bare IPv4 address is a /32 host route', () => {
    expect(parseCidr('127.0.0.1')).toEqual({ family: 4, network: 0x7f000001n, bits: 32 });
    expect(parseCidr('203.0.113.9/32')).toEqual({ family: 4, network: 0xcb007109n, bits: 32 });
  });

  it('/0 has an all-zero network', () => {
    expect(parseCidr('0.0.0.0/0')).toEqual({ family: 4, network: 0n, bits: 0 });
    expect(parseCidr('255.255.255.255/0')).toEqual({ family: 4, network: 0n, bits: 0 });
    expect(parseCidr('::/0')).toEqual({ family: 6, network: 0n, bits: 0 });
    expect(parseCidr('2001:db8::1/0')).toEqual({ family: 6, network: 0n, bits: 0 });
  });

  it('IPv6 blocks and addresses', () => {
    expect(parseCidr('2001:db8::/32')).toEqual({ family: 6, network: 0x20010db8n << 96n, bits: 32 });
    expect(parseCidr('::1')).toEqual({ family: 6, network: 1n, bits: 128 });
    expect(parseCidr('::')).toEqual({ family: 6, network: 0n, bits: 128 });
    expect(parseCidr('fe80::/10')).toEqual({ family: 6, network: 0xfe80n << 112n, bits: 10 });
    expect(parseCidr('2001:db8:1234:5678:9abc:def0:1234:5678/64')).toEqual({ family: 6, network: 0x20010db812345678n << 64n, bits: 64 });
    expect(parseCidr('2001:DB8::ABCD/128')).toEqual({ family: 6, network: (0x20010db8n << 96n) | 0xabcdn, bits: 128 });
  });

  it('compressed and expanded forms of one address are equal', () => {
    expect(parseCidr('2001:db8::1')).toEqual(parseCidr('2001:0db8:0000:0000:0000:0000:0000:0001'));
    expect(parseCidr('1::')).toEqual(parseCidr('1:0:0:0:0:0:0:0'));
    expect(parseCidr('1:2:3:4:5:6::8')).toEqual({ family: 6, network: 0x0001000200030004000500060000_0008n, bits: 128 });
  });

  it('IPv6 with an embedded IPv4 tail', () => {
    expect(parseCidr('64:ff9b::192.0.2.33')).toEqual({ family: 6, network: (0x64ff9bn << 96n) | 0xc0000221n, bits: 128 });
  });

  it('an IPv4-mapped network (::ffff:0:0/96 and inside it) is the IPv4 network it carries', () => {
    expect(parseCidr('::ffff:10.0.0.1')).toEqual({ family: 4, network: 0x0a000001n, bits: 32 });
    expect(parseCidr('::ffff:7f00:1')).toEqual({ family: 4, network: 0x7f000001n, bits: 32 });
    expect(parseCidr('::ffff:127.0.0.0/104')).toEqual({ family: 4, network: 0x7f000000n, bits: 8 });
    expect(parseCidr('::FFFF:0.0.0.0/96')).toEqual({ family: 4, network: 0n, bits: 0 });
    // Wider than /96 it is no mapped network: it stays IPv6.
    expect(parseCidr('::ffff:0.0.0.0/95')).toEqual({ family: 6, network: 0xfffen << 32n, bits: 95 });
    for (const ip of ['127.0.0.1', '::ffff:127.9.9.9']) expect(contains('::ffff:127.0.0.0/104', ip)).toBe(true);
    expect(contains('::ffff:127.0.0.0/104', '128.0.0.1')).toBe(false);
    expect(contains('::ffff:10.0.0.1', '10.0.0.1')).toBe(true);
  });

  it('surrounding whitespace is ignored', () => {
    expect(parseCidr(' 10.0.0.0/8 ')).toEqual(parseCidr('10.0.0.0/8'));
  });

  it.each([
    '',
    'bogus',
    'localhost',
    '10.0.0.0/33',
    '2001:db8::/129',
    '10.0.0.0/-1',
    '10.0.0.0/',
    '10.0.0.0/8.5',
    '10.0.0.0/ 8',
    '10.0.0.0/+8',
    '10.0.0.0/0x8',
    '10.0.0.0/1e1',
    '/8',
    '256.0.0.0/8',
    '10.0.0/8',
    '10.0.0.0.0',
    '2001:db8:::/32',
    '2001:db8::1::2',
    '12345::/16',
    '[::1]',
    '10.0.0.0 /8',
  ])('refuses %j', (text) => {
    expect(parseCidr(text)).toBeUndefined();
  });

  it('refuses more than one prefix length ("10.0.0.0/8/16")', () => {
    // Only one "/bits" suffix makes sense; the rest must not be silently ignored.
    expect(parseCidr('10.0.0.0/8/16')).toBeUndefined();
    expect(parseCidr('10.0.0.0/8/garbage')).toBeUndefined();
  });
});

describe('cidrContains', () => {
  it('IPv4 membership at both edges of the block', () => {
    expect(contains('10.0.0.0/8', '10.0.0.0')).toBe(true);
    expect(contains('10.0.0.0/8', '10.255.255.255')).toBe(true);
    expect(contains('10.0.0.0/8', '9.255.255.255')).toBe(false);
    expect(contains('10.0.0.0/8', '11.0.0.0')).toBe(false);
    expect(contains('192.168.1.0/25', '192.168.1.127')).toBe(true);
    expect(contains('192.168.1.0/25', '192.168.1.128')).toBe(false);
    expect(contains('172.16.0.0/12', '172.31.1.1')).toBe(true);
    expect(contains('172.16.0.0/12', '172.32.0.0')).toBe(false);
  });

  it('a block written with host bits set still matches its whole network', () => {
    expect(contains('192.168.1.77/24', '192.168.1.1')).toBe(true);
    expect(contains('192.168.1.77/24', '192.168.2.1')).toBe(false);
  });

  it('host routes match only that address', () => {
    expect(contains('127.0.0.1', '127.0.0.1')).toBe(true);
    expect(contains('127.0.0.1', '127.0.0.2')).toBe(false);
    expect(contains('198.51.100.7/32', '198.51.100.7')).toBe(true);
    expect(contains('198.51.100.7/32', '198.51.100.6')).toBe(false);
    expect(contains('::1', '::1')).toBe(true);
    expect(contains('::1', '::2')).toBe(false);
    expect(contains('::1', '0:0:0:0:0:0:0:1')).toBe(true);
    expect(contains('2001:db8::5/128', '2001:db8::5')).toBe(true);
    expect(contains('2001:db8::5/128', '2001:db8::4')).toBe(false);
  });

  it('/0 matches every address of its own family only', () => {
    for (const ip of ['0.0.0.0', '10.1.2.3', '255.255.255.255']) expect(contains('0.0.0.0/0', ip)).toBe(true);
    for (const ip of ['::', '::1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '2001:db8::1']) expect(contains('::/0', ip)).toBe(true);
    expect(contains('0.0.0.0/0', '::1')).toBe(false);
    expect(contains('0.0.0.0/0', '2001:db8::1')).toBe(false);
    expect(contains('::/0', '10.0.0.1')).toBe(false);
  });

  it('IPv6 membership, case-insensitive', () => {
    expect(contains('2001:db8::/32', '2001:db8:ffff::1')).toBe(true);
    expect(contains('2001:db8::/32', '2001:DB8::abcd')).toBe(true);
    expect(contains('2001:db8::/32', '2001:db9::1')).toBe(false);
    expect(contains('2001:db8::/33', '2001:db8:7fff::1')).toBe(true);
    expect(contains('2001:db8::/33', '2001:db8:8000::1')).toBe(false);
    expect(contains('fe80::/10', 'febf::1')).toBe(true);
    expect(contains('fe80::/10', 'fec0::1')).toBe(false);
  });

  it('IPv4-mapped IPv6 clients are matched as their IPv4 address', () => {
    expect(contains('10.0.0.0/8', '::ffff:10.1.2.3')).toBe(true);
    expect(contains('10.0.0.0/8', '::FFFF:10.1.2.3')).toBe(true);
    expect(contains('10.0.0.0/8', '::ffff:11.1.2.3')).toBe(false);
    expect(contains('127.0.0.1', '::ffff:127.0.0.1')).toBe(true);
    expect(contains('0.0.0.0/0', '::ffff:192.0.2.1')).toBe(true);
  });

  it('an IPv4 network never matches a non-mapped IPv6 address carrying the same bits', () => {
    // ::a00:1 has the same low 32 bits as 10.0.0.1 but is not IPv4-mapped.
    expect(contains('10.0.0.0/8', '::a00:1')).toBe(false);
    expect(contains('10.0.0.0/8', '::10.0.0.1')).toBe(false);
  });

  it('an invalid client address matches nothing', () => {
    for (const ip of ['', 'bogus', '10.0.0', '10.0.0.256', '::ffff:999.0.0.1', 'unknown']) {
      expect(contains('0.0.0.0/0', ip)).toBe(false);
      expect(contains('::/0', ip)).toBe(false);
    }
  });

  it('every prefix length of one IPv4 address matches it, and the next block does not', () => {
    const ip = '203.0.113.200';
    for (let bits = 0; bits <= 32; bits++) {
      expect(contains(`${ip}/${bits}`, ip)).toBe(true);
      if (bits > 0) {
        // Flip the last network bit: outside the block.
        const n = (203 << 24) + (0 << 16) + (113 << 8) + 200;
        const flipped = (n ^ (1 << (32 - bits))) >>> 0;
        const other = [24, 16, 8, 0].map((s) => (flipped >>> s) & 255).join('.');
        expect(contains(`${ip}/${bits}`, other)).toBe(false);
      }
    }
  });
});

describe('normalizeIp', () => {
  it('unwraps IPv4-mapped IPv6 only', () => {
    expect(normalizeIp('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(normalizeIp('::FFFF:192.0.2.1')).toBe('192.0.2.1');
    expect(normalizeIp('192.0.2.1')).toBe('192.0.2.1');
    expect(normalizeIp('::1')).toBe('::1');
    expect(normalizeIp('2001:db8::ffff:192.0.2.1')).toBe('2001:db8::ffff:192.0.2.1');
    expect(normalizeIp('64:ff9b::192.0.2.1')).toBe('64:ff9b::192.0.2.1');
  });
});
