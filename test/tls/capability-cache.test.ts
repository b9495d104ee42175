import { describe, expect, it } from 'vitest';
import { TlsCapabilityCache } from '../../src/tls/capability-cache.js';

describe('TLS capability cache', () => {
  it('remembers per host:port until the TTL and forecasts failures by level', () => {
    const c = new TlsCapabilityCache(1000, 100);
    c.record('MX.Example.Test', 25, { starttls: true, verdict: 'certificate-not-trusted', protocol: 'TLSv1.3' }, 0);
    c.record('plain.example.test', 25, { starttls: false, verdict: 'starttls-not-supported' }, 0);
    expect(c.get('mx.example.test', 25, 500)).toMatchObject({ starttls: true, verdict: 'certificate-not-trusted' });
    expect(c.get('mx.example.test', 2525, 500)).toBeUndefined();
    expect(c.foreseesFailure('mx.example.test', 25, 'encrypt', 500)).toBeUndefined();
    expect(c.foreseesFailure('mx.example.test', 25, 'verify', 500)?.verdict).toBe('certificate-not-trusted');
    expect(c.foreseesFailure('plain.example.test', 25, 'encrypt', 500)?.verdict).toBe('starttls-not-supported');
    expect(c.foreseesFailure('plain.example.test', 25, 'may', 500)).toBeUndefined();
    expect(c.get('mx.example.test', 25, 1500)).toBeUndefined();
  });

  it('stays within its bound, dropping the least recently recorded', () => {
    const c = new TlsCapabilityCache(60_000, 3);
    for (const h of ['a', 'b', 'c']) c.record(h, 25, { starttls: true, verdict: 'verified' }, 0);
    c.record('a', 25, { starttls: true, verdict: 'verified' }, 1); // refreshed: now newest
    c.record('d', 25, { starttls: true, verdict: 'verified' }, 2);
    expect(c.get('b', 25, 3)).toBeUndefined();
    expect(c.get('a', 25, 3)).toBeDefined();
    expect(c.get('d', 25, 3)).toBeDefined();
  });
});
