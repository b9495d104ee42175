import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseKeyMaterial, rewrap, seal, unseal } from '../../src/portal/crypto.js';
import { identityOf } from '../../src/portal/identity.js';
import { newMessageId } from '../../src/portal/message-id.js';
import { normalizePhone } from '../../src/portal/phone.js';
import { FsPortalStore as PortalStore } from '../../src/portal/fs-store.js';
import { lockedUntil, recordFailure, recordSuccess } from '../../src/portal/web/lockout.js';
import { passwordProblem } from '../../src/portal/web/password-rules.js';

const k1 = { id: 'k1', key: randomBytes(32) };
const k2 = { id: 'k2', key: randomBytes(32) };

describe('portal encryption at rest', () => {
  it('round-trips, binds the item id, refuses tampering, and re-wraps for rotation', () => {
    const { sealed, ciphertext } = seal(Buffer.from('Subject: secret\r\n\r\nbody'), k1, 'item-1');
    expect(ciphertext.toString()).not.toContain('secret');
    expect(unseal(sealed, ciphertext, [k1], 'item-1').toString()).toContain('secret');
    expect(() => unseal(sealed, ciphertext, [k1], 'item-2')).toThrow();
    const flipped = Buffer.from(ciphertext);
    flipped[3] = (flipped[3] as number) ^ 1;
    expect(() => unseal(sealed, flipped, [k1], 'item-1')).toThrow();
    expect(() => unseal(sealed, ciphertext, [k2], 'item-1')).toThrow(/master key k1 is not configured/);
    const rotated = rewrap(sealed, [k1, k2], k2, 'item-1');
    expect(rotated.keyId).toBe('k2');
    expect(rotated.iv).toBe(sealed.iv); // the content itself is untouched
    expect(unseal(rotated, ciphertext, [k2], 'item-1').toString()).toContain('secret');
  });

  it('stores messages encrypted, rotates keys, and destroys expired content', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-portal-store-'));
    const store = new PortalStore(dir, [k1]);
    await store.open();
    const m = await store.putMessage(Buffer.from('Subject: MARKER-123\r\n\r\nsecret body'), { createdAt: Date.now(), expiresAt: Date.now() + 1000, sender: 'a@x.test', recipients: ['b@y.test'], queueId: 'Q', kind: 'received' });
    for (const f of readdirSync(join(dir, 'messages'))) expect(readFileSync(join(dir, 'messages', f)).includes('MARKER-123')).toBe(false);
    const rotated = new PortalStore(dir, [k2, k1]);
    expect(await rotated.rotate()).toBe(1);
    expect((await new PortalStore(dir, [k2]).read(m.id)).toString()).toContain('MARKER-123');
    expect(await rotated.purgeExpired(Date.now() + 5000)).toEqual([m.id]);
    expect(readdirSync(join(dir, 'messages'))).toEqual([]);
  });

  it('keeps only hashes of link tokens', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-portal-tokens-'));
    const store = new PortalStore(dir, [k1]);
    await store.open();
    const token = await store.createToken({ kind: 'notice', recipient: 'b@y.test', messageId: 'x', expiresAt: Date.now() + 1000 });
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/); // 256 bits
    expect(readdirSync(join(dir, 'tokens')).join()).not.toContain(token);
    expect((await store.getToken(token))?.recipient).toBe('b@y.test');
    // Another token of the same form (the last character changed; one in 64 ends in A already).
    expect(await store.getToken(`${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`)).toBeUndefined();
  });

  it('parses key material', () => {
    expect(parseKeyMaterial(randomBytes(32).toString('base64'))?.length).toBe(32);
    expect(parseKeyMaterial(`hex:${randomBytes(32).toString('hex')}`)?.length).toBe(32);
    expect(parseKeyMaterial('too-short')).toBeUndefined();
  });
});

/** Inputs and what they normalise to, with the default country's calling code. */
const PHONES: [string, string, string | undefined][] = [
    ['12025550143', '1', '+12025550143'],
    ['2025550143', '1', '+12025550143'],
    ['(202) 555-0143', '1', '+12025550143'],
    ['+447911123456', '1', '+447911123456'],
    ['00447911123456', '1', '+447911123456'],
    ['447911123456', '1', '+447911123456'], // international without its +: not a US number
    ['07911123456', '44', '+447911123456'],
    ['7911123456', '44', '+447911123456'], // a UK mobile without its trunk 0, not Russia (+7)
    ['7700900123', '44', '+447700900123'], // was +7700900123 (Russia); a UK number of the right length
    ['1701234567', '49', '+491701234567'], // a German mobile without its 0, not the US (+1)
    ['01701234567', '49', '+491701234567'],
    ['99999999', '1', undefined], // too short for the US, and no country's number
    ['15551234567', '1', '+15551234567'], // fictional (555), but a US number's shape: the provider decides
    ['+15551234567', '1', '+15551234567'], // the same number with its country code: the same identity
    ['0015551234567', '1', '+15551234567'],
    ['+1 (555) 123-4567', '1', '+15551234567'],
    ['+15551234567', '44', undefined], // not valid in the US plan, and not of the default country
    ['10551234567', '1', undefined], // an area code cannot start with 0
    ['0551234567', '1', undefined],
    ['+10551234567', '1', undefined],
    ['1234567890', '1', undefined], // nor with 1
    ['+447700900123', '44', '+447700900123'], // drama range: not in the plan data, a UK number's shape
    ['555123456', '1', undefined], // nine digits: no US number
    ['12345678', '44', undefined], // eight digits: no UK number
    ['12', '1', undefined],
    ['1555abc4567', '1', undefined],
    ['1234567890123456', '1', undefined], // longer than E.164 allows
];

/** Deterministic digits (mulberry32), so a failure is found again on the next run. */
function seededDigits(seed: number): () => string {
  let a = seed;
  const next = () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Array.from({ length: 6 + Math.floor(next() * 10) }, () => Math.floor(next() * 10)).join('');
}

describe('portal message ids', () => {
  it('are 16 base64url characters and never start with "-" (a command line would read it as an option)', () => {
    // One id in 64 would start with '-' if nothing prevented it: 5,000 make a miss unlikely.
    const ids = Array.from({ length: 5000 }, newMessageId);
    expect(ids.every((id) => /^[A-Za-z0-9_][A-Za-z0-9_-]{15}$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('Secure Text phone numbers and identities', () => {
  it.each(PHONES)('%s (country %s) → %s', (input, country, expected) => {
    expect(normalizePhone(input, country)).toBe(expected);
  });

  it('normalising is idempotent: every accepted number normalises to itself, and its identity is its own identity', () => {
    for (const [input, country, expected] of PHONES.filter(([, , e]) => e)) {
      expect(normalizePhone(expected as string, country), `${input} → ${expected}`).toBe(expected);
      const identity = identityOf(`${input.replace(/[\s()]/g, '')}@secure.text`, 'secure.text', country);
      expect(identity).toBe(`${expected}@secure.text`);
      expect(identityOf(identity as string, 'secure.text', country)).toBe(identity);
      expect(identityOf(expected as string, 'secure.text', country)).toBe(identity); // typed into the login form
    }
    // And for numbers nobody picked: national, with +, 00, a trunk 0 or a carrier code, in plans with odd corners.
    const digits = seededDigits(4);
    let accepted = 0;
    for (const country of ['1', '44', '49', '81', '86']) {
      for (let i = 0; i < 200; i++) {
        const input = ['', '+', '00', '0', `+${country}`][i % 5] + digits();
        const once = normalizePhone(input, country);
        if (!once) continue;
        accepted++;
        expect(normalizePhone(once, country), `${input} (country ${country}) → ${once}`).toBe(once);
      }
    }
    expect(accepted).toBeGreaterThan(100);
  });

  it('one identity per person: case-insensitive mail, E.164 phones', () => {
    expect(identityOf('Patient@Example.TEST', 'secure.text', '1')).toBe('patient@example.test');
    expect(identityOf('12025550143@secure.text', 'secure.text', '1')).toBe('+12025550143@secure.text');
    expect(identityOf('(202) 555-0143', 'secure.text', '1')).toBe('+12025550143@secure.text');
    expect(identityOf('07911 123456', 'secure.text', '44')).toBe('+447911123456@secure.text');
    expect(identityOf('99999999@secure.text', 'secure.text', '1')).toBeUndefined();
    // The portal's reach sends these spellings of the SMS domain to Secure Text; their
    // account must be the phone number's, or logging in by number would not show the message.
    for (const spelling of ['SECURE.TEXT', 'secure.text.', '\uff53\uff45\uff43\uff55\uff52\uff45.text', 'sec\u00adure.text']) {
      expect(identityOf(`12025550143@${spelling}`, 'secure.text', '1'), spelling).toBe('+12025550143@secure.text');
    }
  });
});

describe('portal passwords and lockout', () => {
  it('refuses weak passwords with a reason', () => {
    expect(passwordProblem('short', 'a@b.test')).toMatch(/12 characters/);
    expect(passwordProblem('aaaaaaaaaaaaaaa', 'a@b.test')).toMatch(/Mix/);
    expect(passwordProblem('Password1234', 'a@b.test')).toMatch(/too common/);
    expect(passwordProblem('Johnsmith-2026!', 'johnsmith@b.test')).toMatch(/address/);
    expect(passwordProblem('Blue-harbour-lantern-42', 'a@b.test')).toBeUndefined();
    expect(passwordProblem('a long passphrase of words', 'a@b.test')).toBeUndefined();
  });

  it('locks for ten minutes after five failures, caps at 100 an hour, and always unlocks', () => {
    const acc = { address: 'a@b.test', passwordHash: 'x', createdAt: 0, failures: [] as number[] };
    const t0 = 1_000_000_000;
    for (let i = 0; i < 4; i++) expect(recordFailure(acc, t0 + i)).toBe(false);
    expect(lockedUntil(acc, t0 + 10)).toBeUndefined();
    expect(recordFailure(acc, t0 + 5)).toBe(true);
    expect(lockedUntil(acc, t0 + 6)).toBe(t0 + 5 + 10 * 60_000);
    expect(lockedUntil(acc, t0 + 5 + 10 * 60_000 + 1)).toBeUndefined();
    // After the lock, it takes five new failures to lock again.
    const after = t0 + 11 * 60_000;
    for (let i = 0; i < 4; i++) expect(recordFailure(acc, after + i)).toBe(false);
    expect(recordFailure(acc, after + 4)).toBe(true);
    recordSuccess(acc);
    expect(lockedUntil(acc, after + 10)).toBeUndefined();
    // The hourly cap, even when failures are spread out between locks.
    const hourly = { address: 'c@b.test', passwordHash: 'x', createdAt: 0, failures: Array.from({ length: 100 }, (_, i) => t0 + i * 1000) };
    expect(lockedUntil(hourly, t0 + 200_000)).toBe(t0 + 3_600_000);
    expect(lockedUntil(hourly, t0 + 3_600_001)).toBeUndefined();
  });
});
