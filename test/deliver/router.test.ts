import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { DeliveryDns } from '../../src/deliver/dns.js';
import { RouteError, Router } from '../../src/deliver/router.js';
import { TestDns } from '../helpers/dns-server.js';
import { seededRandom } from '../helpers/seeded-random.js';

describe('router: transport map, MX, implicit MX, null MX', () => {
  let dns: TestDns;
  beforeAll(async () => {
    dns = await new TestDns({
      'multi.test': {
        MX: [
          { exchange: 'backup.multi.test', priority: 20 },
          { exchange: 'primary.multi.test', priority: 10 },
        ],
      },
      'primary.multi.test': { A: ['127.0.0.10'] },
      'backup.multi.test': { A: ['127.0.0.20', '127.0.0.21'] },
      'nomx.test': { A: ['127.0.0.30'] },
      'nullmx.test': { MX: [{ exchange: '', priority: 0 }] },
      'deadmx.test': { MX: [{ exchange: 'gone.deadmx.test', priority: 10 }] },
      'nothing.test': {},
      'relay.corp.test': { A: ['127.0.0.40'] },
      'equal.test': {
        MX: [
          { exchange: 'a.equal.test', priority: 10 },
          { exchange: 'b.equal.test', priority: 10 },
          { exchange: 'c.equal.test', priority: 20 },
        ],
      },
      'a.equal.test': { A: ['127.0.0.11'] },
      'b.equal.test': { A: ['127.0.0.12'] },
      'c.equal.test': { A: ['127.0.0.13'] },
      'ipmx.test': { MX: [{ exchange: '127.0.0.9', priority: 10 }] },
      'ipmx-and-host.test': {
        MX: [
          { exchange: '127.0.0.9', priority: 5 },
          { exchange: 'mx.ipmx-and-host.test', priority: 10 },
        ],
      },
      'mx.ipmx-and-host.test': { A: ['127.0.0.14'] },
      'servfail.test': { SERVFAIL: true },
      'xn--bcher-kva.test': { MX: [{ exchange: 'mx.xn--bcher-kva.test', priority: 10 }] },
      'mx.xn--bcher-kva.test': { A: ['127.0.0.44'] },
    }).start();
  });
  afterAll(() => dns.stop());

  function router(delivery: Record<string, unknown> = {}): Router {
    const config = validateConfig({ delivery: { mxPort: 2525, dns: { servers: [dns.server], timeout: '1s', cacheTtl: 0 }, ...delivery } });
    return new Router(config.delivery, new DeliveryDns(config.delivery.dns.servers, config.delivery.dns.timeout));
  }

  it('orders MX hosts by preference and resolves each', async () => {
    const route = await router().route('Multi.Test');
    expect(route.source).toBe('mx');
    expect(route.hops).toEqual([
      { name: 'primary.multi.test', port: 2525, addresses: ['127.0.0.10'] },
      { name: 'backup.multi.test', port: 2525, addresses: ['127.0.0.20', '127.0.0.21'] },
    ]);
    expect(route.tls).toBe('verify');
  });

  it('uses the domain itself when it has no MX (implicit MX, RFC 5321 §5.1)', async () => {
    const route = await router().route('nomx.test');
    expect(route).toMatchObject({ source: 'implicit-mx', hops: [{ name: 'nomx.test', addresses: ['127.0.0.30'] }] });
  });

  it.each([
    ['nullmx.test', '5.1.10', true],
    ['does-not-exist.test', '5.1.2', true],
    ['nothing.test', '5.1.2', true],
    ['deadmx.test', '5.1.2', true],
  ])('%s fails with %s (permanent: %s)', async (domain, status, permanent) => {
    const err = await router().route(domain).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RouteError);
    expect(err).toMatchObject({ status, permanent });
  });

  it('treats an unreachable DNS server as temporary (4.4.3)', async () => {
    const config = validateConfig({ delivery: { dns: { servers: ['127.0.0.1:9'], timeout: '300ms', cacheTtl: 0 } } });
    const r = new Router(config.delivery, new DeliveryDns(config.delivery.dns.servers, config.delivery.dns.timeout));
    const err = await r.route('multi.test').catch((e: unknown) => e);
    expect(err).toMatchObject({ permanent: false, status: '4.4.3' });
  });

  it('prefers the transport map: exact domain, then *.parent, then *', async () => {
    const r = router({
      routes: { 'partner.test': '127.0.0.50:2600', '*.corp.test': { nexthop: 'relay.corp.test:587', tls: 'encrypt' }, '*': '127.0.0.60' },
    });
    expect(await r.route('partner.test')).toMatchObject({ source: 'transport', hops: [{ name: '127.0.0.50', port: 2600, addresses: ['127.0.0.50'] }] });
    expect(await r.route('eu.corp.test')).toMatchObject({ source: 'transport', tls: 'encrypt', hops: [{ name: 'relay.corp.test', port: 587, addresses: ['127.0.0.40'] }] });
    expect(await r.route('anything.test')).toMatchObject({ hops: [{ name: '127.0.0.60', port: 25 }] });
  });

  it('picks the most specific wildcard whatever the order in the file', async () => {
    const r = router({ routes: { '*.corp.test': '127.0.0.71:25', '*.eu.corp.test': '127.0.0.72:25' }, tls: { domains: { '*.test': 'may', '*.eu.corp.test': 'encrypt' } } });
    expect((await r.route('a.eu.corp.test')).hops[0]?.addresses).toEqual(['127.0.0.72']);
    expect((await r.route('a.us.corp.test')).hops[0]?.addresses).toEqual(['127.0.0.71']);
    expect(r.tlsLevelFor('a.eu.corp.test')).toBe('encrypt');
    expect(r.tlsLevelFor('a.us.corp.test')).toBe('may');
  });

  it('picks the TLS level per domain: exact, wildcard, star, default', () => {
    const r = router({ tls: { default: 'verify', domains: { 'legacy.test': 'may', '*.old.test': 'encrypt' } } });
    expect(r.tlsLevelFor('legacy.test')).toBe('may');
    expect(r.tlsLevelFor('a.old.test')).toBe('encrypt');
    expect(r.tlsLevelFor('old.test')).toBe('verify');
    expect(r.tlsLevelFor('other.test')).toBe('verify');
  });

  it('draws the order of equal-preference MX hosts on each use, also of a cached route (RFC 5321 §5.1)', async () => {
    const config = validateConfig({ delivery: { mxPort: 2525, dns: { servers: [dns.server], cacheTtl: '1m' } } });
    const r = new Router(config.delivery, new DeliveryDns(config.delivery.dns.servers, config.delivery.dns.timeout), seededRandom(7));
    const orders = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const names = (await r.route('equal.test')).hops.map((h) => h.name);
      // The preference order stands: only hosts of equal preference change places.
      expect(names[2]).toBe('c.equal.test');
      orders.add(names.join(' '));
    }
    expect([...orders].sort()).toEqual(['a.equal.test b.equal.test c.equal.test', 'b.equal.test a.equal.test c.equal.test']);
    expect(dns.queries.filter((q) => q.name === 'equal.test' && q.type === 'MX')).toHaveLength(1);
  });

  it('does not use an MX record whose target is an IP address, and fails clearly when nothing else is left', async () => {
    const err = await router().route('ipmx.test').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RouteError);
    expect(err).toMatchObject({ permanent: true, status: '5.4.4', message: expect.stringMatching(/malformed MX record of ipmx\.test: its target 127\.0\.0\.9 is an IP address, not a host name/) });
    const route = await router().route('ipmx-and-host.test');
    expect(route.hops).toEqual([{ name: 'mx.ipmx-and-host.test', port: 2525, addresses: ['127.0.0.14'] }]);
  });

  it('routes an address literal to its own address without DNS (RFC 5321 §4.1.3)', async () => {
    const r = router();
    const before = dns.queries.length;
    expect(await r.route('[192.0.2.1]')).toMatchObject({ source: 'address-literal', domain: '[192.0.2.1]', hops: [{ name: '192.0.2.1', port: 2525, addresses: ['192.0.2.1'] }] });
    expect(await r.route('[IPv6:2001:DB8::1]')).toMatchObject({ source: 'address-literal', hops: [{ name: '2001:db8::1', port: 2525, addresses: ['2001:db8::1'] }] });
    expect(await r.route('[ipv6:::ffff:192.0.2.1]')).toMatchObject({ hops: [{ addresses: ['::ffff:192.0.2.1'] }] });
    expect(dns.queries.length).toBe(before);
    // A smart host for everything ("*") takes address literals too, as any destination.
    expect(await router({ routes: { '*': '127.0.0.60:2600' } }).route('[192.0.2.1]')).toMatchObject({ source: 'transport', hops: [{ name: '127.0.0.60', port: 2600 }] });
  });

  it.each(['[300.1.2.3]', '[192.0.2]', '[2001:db8::1]', '[IPv6:192.0.2.1]', '[IPv6:fe80::1%eth0]', '[x-tag:something]', '[]'])('a malformed address literal %s fails permanently (5.1.3)', async (literal) => {
    const err = await router().route(literal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RouteError);
    expect(err).toMatchObject({ permanent: true, status: '5.1.3', message: expect.stringContaining('not a valid address literal') });
  });

  it('fails permanently (5.1.2) for a malformed domain name (EBADNAME); SERVFAIL stays temporary (4.4.3)', async () => {
    const long = `${'a'.repeat(64)}.test`;
    const err = await router().route(long).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RouteError);
    expect(err).toMatchObject({ permanent: true, status: '5.1.2', message: `${long} is not a valid domain name (EBADNAME)` });
    expect(await router().route('servfail.test').catch((e: unknown) => e)).toMatchObject({ permanent: false, status: '4.4.3' });
  });

  it('matches delivery.routes and delivery.tls.domains keys in either IDN form, and asks DNS in A-labels', async () => {
    const config = validateConfig({ delivery: { mxPort: 2525, dns: { servers: [dns.server], timeout: '1s', cacheTtl: 0 } } });
    // The keys as an admin may write them, whatever the config loader makes of them: the
    // router compares in A-labels itself.
    const delivery = {
      ...config.delivery,
      routes: { 'xn--bcher-kva.test': { host: '127.0.0.99', port: 2526 }, '*.xn--mnchen-3ya.test': { host: '127.0.0.98', port: 2527 } },
      tls: { ...config.delivery.tls, default: 'may' as const, domains: { 'bücher.test': 'encrypt' as const, '*.münchen.test': 'verify' as const } },
    };
    const r = new Router(delivery, new DeliveryDns(config.delivery.dns.servers, config.delivery.dns.timeout));
    for (const domain of ['bücher.test', 'xn--bcher-kva.test', 'XN--BCHER-KVA.TEST.']) {
      expect(await r.route(domain), domain).toMatchObject({ source: 'transport', domain: 'xn--bcher-kva.test', hops: [{ name: '127.0.0.99', port: 2526 }], tls: 'encrypt', tlsFrom: 'tls-domain:bücher.test' });
    }
    expect(r.tlsLevelFor('xn--bcher-kva.test')).toBe('encrypt');
    expect(await r.route('mx.münchen.test')).toMatchObject({ hops: [{ name: '127.0.0.98' }], tls: 'verify' });
    expect(await r.route('mx.xn--mnchen-3ya.test')).toMatchObject({ hops: [{ name: '127.0.0.98' }], tls: 'verify' });
    expect(await router().route('bücher.test')).toMatchObject({ source: 'mx', domain: 'xn--bcher-kva.test', hops: [{ name: 'mx.xn--bcher-kva.test', addresses: ['127.0.0.44'] }] });
  });

  it('caches a resolved route for dns.cacheTtl', async () => {
    const config = validateConfig({ delivery: { mxPort: 2525, dns: { servers: [dns.server], cacheTtl: '1m' } } });
    const r = new Router(config.delivery, new DeliveryDns(config.delivery.dns.servers, config.delivery.dns.timeout));
    const before = dns.queries.length;
    await r.route('multi.test');
    const afterFirst = dns.queries.length;
    await r.route('multi.test');
    expect(afterFirst).toBeGreaterThan(before);
    expect(dns.queries.length).toBe(afterFirst);
  });
});
