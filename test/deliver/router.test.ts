import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { DeliveryDns } from '../../src/deliver/dns.js';
import { RouteError, Router } from '../../src/deliver/router.js';
import { TestDns } from '../helpers/dns-server.js';

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
