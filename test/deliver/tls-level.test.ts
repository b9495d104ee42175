import { describe, expect, it } from 'vitest';
import type { TlsLevel } from '../../src/config/schema.js';
import { attemptTls } from '../../src/deliver/tls-level.js';
import type { Envelope } from '../../src/types.js';

describe('the TLS level of a delivery attempt', () => {
  it.each<[Envelope['origin'], TlsLevel, TlsLevel, TlsLevel]>([
    // Relayed mail, reports and portal replies: the decision raises the route, never lowers it.
    [undefined, 'verify', 'may', 'verify'],
    [undefined, 'may', 'verify', 'verify'],
    [undefined, 'none', 'encrypt', 'encrypt'],
    ['dsn', 'verify', 'may', 'verify'],
    ['portal-reply', 'may', 'verify', 'verify'],
    ['portal-reply', 'verify', 'may', 'verify'],
    // Portal notices and reset links (origin portal-notice): their own level, capped by the route.
    ['portal-notice', 'verify', 'may', 'may'],
    ['portal-notice', 'encrypt', 'may', 'may'],
    ['portal-notice', 'may', 'may', 'may'],
    ['portal-notice', 'none', 'may', 'none'],
  ])('origin %s, route %s, decision %s → %s', (origin, route, decision, expected) => {
    expect(attemptTls(origin, route, decision).level).toBe(expected);
  });

  it('says why only when a notice goes below the route level', () => {
    expect(attemptTls('portal-notice', 'verify', 'may').relaxed).toMatch(/portal notice carries a link, never content: sent at its own TLS level \(may\) instead of the route's verify/);
    expect(attemptTls('portal-notice', 'may', 'may').relaxed).toBeUndefined();
    expect(attemptTls(undefined, 'verify', 'may').relaxed).toBeUndefined();
  });
});
