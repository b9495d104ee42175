import { describe, expect, it } from 'vitest';
import { ConfigError, validateConfig } from '../../src/config/load.js';
import { isDnsServer } from '../../src/config/schema.js';

/** The one problem line validateConfig reports for `input` (on top of a valid hostname). */
function problem(input: Record<string, unknown>): string {
  try {
    validateConfig({ hostname: 'gw.example.org', ...input });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    expect(err.problems).toHaveLength(1);
    return err.problems[0] as string;
  }
  throw new Error('the config was accepted');
}

const route = (value: unknown) => ({ delivery: { routes: { 'partner.example': value } } });

describe('config: what a wrong value is told, key by key', () => {
  it('delivery.dns.servers: each entry must be an IP address, optionally with a port', () => {
    expect(problem({ delivery: { dns: { servers: ['10.0.0.53', 'not-an-ip'] } } })).toBe(
      'delivery.dns.servers.1: not a DNS server address: give an IP address, optionally with a port (10.0.0.53, 10.0.0.53:5353, [2001:db8::53]:5353)',
    );
    expect(problem({ delivery: { dns: { servers: ['dns.example.org:53'] } } })).toMatch(/^delivery\.dns\.servers\.0: not a DNS server address/);
    expect(problem({ delivery: { dns: { servers: ['10.0.0.53:70000'] } } })).toMatch(/^delivery\.dns\.servers\.0: /);
    const ok = ['10.0.0.53', '10.0.0.53:5353', '2001:db8::53', '[2001:db8::53]', '[2001:db8::53]:5353'];
    expect(validateConfig({ hostname: 'gw.example.org', delivery: { dns: { servers: ok } } }).delivery.dns.servers).toEqual(ok);
  });

  it('isDnsServer takes what Node resolvers take and nothing else', () => {
    for (const good of ['127.0.0.1', '127.0.0.1:1053', '::1', '[::1]:1053']) expect(isDnsServer(good)).toBe(true);
    for (const bad of ['localhost', '[127.0.0.1]:53', '127.0.0.1:0', '127.0.0.1:', '', '10.0.0']) expect(isDnsServer(bad)).toBe(false);
  });

  it('delivery.routes: a route says what is wrong with it as a string or as an object, and what is expected otherwise', () => {
    expect(problem(route('mx.partner.example:smtp'))).toBe('delivery.routes.partner.example: "mx.partner.example:smtp" is not host:port (e.g. 127.0.0.1:2525 or [::1]:25)');
    expect(problem(route({ nexthop: 'mx.partner.example:25', tls: 'strict' }))).toMatch(/^delivery\.routes\.partner\.example\.tls: .*"verify"/);
    expect(problem(route({ tls: 'verify' }))).toBe('delivery.routes.partner.example.nexthop: required but missing');
    expect(problem(route(25))).toBe('delivery.routes.partner.example: expected "host:port" or { nexthop: "host:port", tls: none|may|encrypt|verify }');
    expect(problem(route(['mx.partner.example:25']))).toMatch(/^delivery\.routes\.partner\.example: expected "host:port" or \{ nexthop/);
  });

  it('durations, sizes, workers, client networks and trustProxy of the wrong type say what is expected', () => {
    expect(problem({ shutdown: { timeout: true } })).toBe('shutdown.timeout: expected a duration such as 30s, 5m, 1h, 5d, or milliseconds');
    expect(problem({ smtp: { limits: { maxMessageSize: [25] } } })).toBe('smtp.limits.maxMessageSize: expected a size such as 512KB, 25MB, or bytes');
    expect(problem({ workers: 'many' })).toBe('workers: expected "auto" or a number of processes from 1 to 64');
    expect(problem({ smtp: { clients: [{ cidr: 10 }] } })).toBe('smtp.clients.0.cidr: expected an IP address or CIDR block, or a list of them');
    expect(problem({ portal: { trustProxy: 'yes' } })).toMatch(/^portal\.trustProxy: expected true, false, or a list of loopback/);
  });

  it('pattern fields say what they accept, not the regular expression', () => {
    expect(problem({ portal: { masterKeys: [{ id: 'key 1', key: 'x' }] } })).toBe('portal.masterKeys.0.id: letters, digits, dot, dash and underscore only (e.g. key-2026)');
    expect(problem({ archive: { masterKeys: [{ id: 'a/b', key: Buffer.alloc(32).toString('base64') }] } })).toMatch(/^archive\.masterKeys\.0\.id: letters, digits/);
    expect(problem({ portal: { sms: { defaultCountry: '+44' } } })).toBe('portal.sms.defaultCountry: a country calling code of 1 to 3 digits, without + (e.g. 1, 44)');
  });

  it('no problem line anywhere says only "Invalid input"', () => {
    const inputs = [route(null), route(true), { shutdown: { timeout: null } }, { smtp: { clients: [{ cidr: {} }] } }, { workers: -1 }, { portal: { trustProxy: 3 } }];
    for (const input of inputs) expect(problem(input)).not.toMatch(/: Invalid input$/);
  });
});
