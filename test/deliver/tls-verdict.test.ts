import { describe, expect, it } from 'vitest';
import { TLS_LEVELS } from '../../src/config/schema.js';
import { meetsLevel, type TlsInfo } from '../../src/tls/verdict.js';

const plaintext: TlsInfo = { verified: false };
const encryptedUnverified: TlsInfo = { version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', verified: false, failure: 'certificate-not-trusted', detail: 'DEPTH_ZERO_SELF_SIGNED_CERT' };
const hostMismatch: TlsInfo = { version: 'TLSv1.2', cipher: 'ECDHE-RSA-AES128-GCM-SHA256', verified: false, failure: 'certificate-host-mismatch' };
const verified: TlsInfo = { version: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256', verified: true, peer: 'mx.example.org' };

describe('meetsLevel', () => {
  it.each([
    ['none', plaintext, true],
    ['none', encryptedUnverified, true],
    ['none', verified, true],
    ['may', plaintext, true],
    ['may', encryptedUnverified, true],
    ['may', verified, true],
    ['encrypt', plaintext, false],
    ['encrypt', encryptedUnverified, true],
    ['encrypt', hostMismatch, true],
    ['encrypt', verified, true],
    ['verify', plaintext, false],
    ['verify', encryptedUnverified, false],
    ['verify', hostMismatch, false],
    ['verify', verified, true],
  ] as const)('%s with %j → %s', (level, info, expected) => {
    expect(meetsLevel(level, info)).toBe(expected);
  });

  it('encrypt needs a negotiated protocol version, not just a cipher name', () => {
    expect(meetsLevel('encrypt', { cipher: 'X', verified: false })).toBe(false);
    expect(meetsLevel('encrypt', { version: '', verified: false })).toBe(false);
  });

  it('verify follows the verified flag only', () => {
    expect(meetsLevel('verify', { version: 'TLSv1.3', verified: false })).toBe(false);
  });

  it('the levels are ordered: meeting one level means meeting every weaker one', () => {
    for (const info of [plaintext, encryptedUnverified, hostMismatch, verified]) {
      const met = TLS_LEVELS.map((l) => meetsLevel(l, info));
      for (let i = 1; i < met.length; i++) if (met[i]) expect(met[i - 1]).toBe(true);
    }
    expect(TLS_LEVELS).toEqual(['none', 'may', 'encrypt', 'verify']);
  });
});
