import { describe, expect, it } from 'vitest';
import type { AuthUser, ClientRule } from '../../src/config/schema.js';
import { domainMatches, domainOf, mostSpecificMatch, RelayAuthorizer, relayTestForm } from '../../src/ingress/authorize.js';

const rule = (name: string, cidr: string[], senderDomains?: string[]): ClientRule => ({ name, cidr, requireTls: false, ...(senderDomains ? { senderDomains } : {}) });
const user = (username: string, senderDomains?: string[]): AuthUser => ({ username, passwordHash: 'scrypt$x', ...(senderDomains ? { senderDomains } : {}) });

describe('RelayAuthorizer.clientFor', () => {
  const office = rule('office', ['192.0.2.0/24']);
  const host = rule('host', ['192.0.2.5']);
  const v6 = rule('v6', ['2001:db8::/32', '10.9.0.0/16']);
  const auth = new RelayAuthorizer([office, host, v6], []);

  it('finds the rule whose network holds the IP', () => {
    expect(auth.clientFor('192.0.2.77')).toBe(office);
    expect(auth.clientFor('2001:db8:1::1')).toBe(v6);
    expect(auth.clientFor('10.9.200.1')).toBe(v6);
  });

  it('the first listed rule wins when several match', () => {
    expect(auth.clientFor('192.0.2.5')).toBe(office);
    expect(new RelayAuthorizer([host, office], []).clientFor('192.0.2.5')).toBe(host);
  });

  it('matches IPv4-mapped IPv6 client addresses', () => {
    expect(auth.clientFor('::ffff:192.0.2.77')).toBe(office);
    expect(auth.clientFor('::ffff:10.9.0.1')).toBe(v6);
  });

  it('no rule for other addresses', () => {
    expect(auth.clientFor('198.51.100.1')).toBeUndefined();
    expect(auth.clientFor('::1')).toBeUndefined();
    expect(auth.clientFor('10.10.0.1')).toBeUndefined();
    expect(auth.clientFor('not an ip')).toBeUndefined();
    expect(new RelayAuthorizer([], []).clientFor('127.0.0.1')).toBeUndefined();
  });
});

describe('RelayAuthorizer users', () => {
  it('authEnabled only when users are configured', () => {
    expect(new RelayAuthorizer([], []).authEnabled).toBe(false);
    expect(new RelayAuthorizer([], [user('a')]).authEnabled).toBe(true);
  });

  it('looks users up by exact name', () => {
    const a = user('relay');
    const auth = new RelayAuthorizer([], [a, user('other')]);
    expect(auth.user('relay')).toBe(a);
    expect(auth.user('Relay')).toBeUndefined();
    expect(auth.user('nobody')).toBeUndefined();
  });
});

describe('RelayAuthorizer.senderAllowed', () => {
  const auth = new RelayAuthorizer([], []);
  const open = rule('open', ['0.0.0.0/0']);
  const bound = rule('bound', ['0.0.0.0/0'], ['example.org', '*.corp.example']);

  it('no lists: any domain', () => {
    expect(auth.senderAllowed(undefined, undefined, 'anything.example')).toBe(true);
    expect(auth.senderAllowed(open, undefined, 'anything.example')).toBe(true);
    expect(auth.senderAllowed(open, user('u'), 'anything.example')).toBe(true);
  });

  it('exact domains, case-insensitively', () => {
    expect(auth.senderAllowed(bound, undefined, 'example.org')).toBe(true);
    expect(auth.senderAllowed(bound, undefined, 'EXAMPLE.ORG')).toBe(true);
    expect(auth.senderAllowed(bound, undefined, 'example.net')).toBe(false);
    expect(auth.senderAllowed(bound, undefined, 'sub.example.org')).toBe(false);
    expect(auth.senderAllowed(bound, undefined, 'badexample.org')).toBe(false);
  });

  it('*.example.org: subdomains at any depth, not the parent', () => {
    expect(auth.senderAllowed(bound, undefined, 'hq.corp.example')).toBe(true);
    expect(auth.senderAllowed(bound, undefined, 'a.b.corp.example')).toBe(true);
    expect(auth.senderAllowed(bound, undefined, 'corp.example')).toBe(false);
    expect(auth.senderAllowed(bound, undefined, 'evilcorp.example')).toBe(false);
  });

  it('"*" allows any domain', () => {
    expect(auth.senderAllowed(rule('any', ['0.0.0.0/0'], ['*']), undefined, 'whatever.example')).toBe(true);
  });

  it('an empty list allows nothing', () => {
    expect(auth.senderAllowed(rule('none', ['0.0.0.0/0'], []), undefined, 'example.org')).toBe(false);
  });

  it('an authenticated user is bound to their own domains', () => {
    expect(auth.senderAllowed(undefined, user('u', ['example.org']), 'example.org')).toBe(true);
    expect(auth.senderAllowed(undefined, user('u', ['example.org']), 'example.net')).toBe(false);
    expect(auth.senderAllowed(open, user('u', ['example.org']), 'example.net')).toBe(false);
  });

  it('logging in never widens what the network rule allows: both lists must match', () => {
    const u = user('u', ['example.net', 'example.org']);
    expect(auth.senderAllowed(bound, u, 'example.org')).toBe(true);
    expect(auth.senderAllowed(bound, u, 'example.net')).toBe(false);
    expect(auth.senderAllowed(bound, user('all', ['*']), 'example.net')).toBe(false);
    expect(auth.senderAllowed(rule('all', ['0.0.0.0/0'], ['*']), user('u', ['example.org']), 'example.net')).toBe(false);
  });

  it('the null sender domain "" matches only "*"', () => {
    expect(auth.senderAllowed(bound, undefined, '')).toBe(false);
    expect(auth.senderAllowed(rule('any', ['0.0.0.0/0'], ['*']), undefined, '')).toBe(true);
  });
});

describe('domainMatches', () => {
  it.each([
    ['example.org', 'example.org', true],
    ['example.org', 'Example.Org', true],
    ['example.org', 'www.example.org', false],
    ['example.org', 'example.org.evil', false],
    ['*.example.org', 'www.example.org', true],
    ['*.example.org', 'a.b.example.org', true],
    ['*.example.org', 'example.org', false],
    ['*.example.org', 'notexample.org', false],
    ['*.example.org', 'WWW.EXAMPLE.ORG', true],
    ['*', 'example.org', true],
    ['*', 'localhost', true],
  ] as const)('%s vs %s → %s', (pattern, domain, expected) => {
    expect(domainMatches(pattern, domain)).toBe(expected);
  });
});

describe('mostSpecificMatch', () => {
  const patterns = ['*', '*.example.org', 'example.org', '*.mail.example.org', 'other.example'];

  it('exact name first', () => {
    expect(mostSpecificMatch(patterns, 'example.org')).toBe('example.org');
    expect(mostSpecificMatch(patterns, 'EXAMPLE.org')).toBe('example.org');
  });

  it('then the longest wildcard, whatever the order', () => {
    expect(mostSpecificMatch(patterns, 'a.mail.example.org')).toBe('*.mail.example.org');
    expect(mostSpecificMatch([...patterns].reverse(), 'a.mail.example.org')).toBe('*.mail.example.org');
    expect(mostSpecificMatch(patterns, 'www.example.org')).toBe('*.example.org');
    // mail.example.org itself is not under *.mail.example.org.
    expect(mostSpecificMatch(patterns, 'mail.example.org')).toBe('*.example.org');
  });

  it('then "*", else nothing', () => {
    expect(mostSpecificMatch(patterns, 'unrelated.example')).toBe('*');
    expect(mostSpecificMatch(['example.org', '*.example.org'], 'unrelated.example')).toBeUndefined();
    expect(mostSpecificMatch([], 'example.org')).toBeUndefined();
  });
});

describe('domainOf', () => {
  it.each([
    ['user@Example.ORG', 'example.org'],
    ['"a@b"@example.org', 'example.org'],
    ['postmaster', ''],
    ['', ''],
    ['user@', ''],
  ])('%j → %j', (address, domain) => {
    expect(domainOf(address)).toBe(domain);
  });
});

describe('relayTestForm', () => {
  it.each([
    ['user%other@x.example', 'percent-hack'],
    ['user%other.example@x.example', 'percent-hack'],
    ['a!b@x.example', 'bang-path'],
    ['host!user@x.example', 'bang-path'],
    ['@route:user@x.example', 'source-route'],
    ['@a.example,@b.example:user@x.example', 'source-route'],
    ['"a@b"@x.example', 'quoted-at'],
    ['"user@other.example"@x.example', 'quoted-at'],
    ['"a@b@x.example', 'quoted-at'],
  ])('%j → %s', (address, form) => {
    expect(relayTestForm(address)).toBe(form);
  });

  it.each([
    'user@x.example',
    'first.last+tag@x.example',
    'o\'brien@x.example',
    '"john doe"@x.example',
    '"quoted"@x.example',
    'postmaster',
    '',
    'user@sub.x.example',
    'user@x%y.example',
  ])('normal address %j → undefined', (address) => {
    expect(relayTestForm(address)).toBeUndefined();
  });
});
