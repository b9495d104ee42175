import { scryptSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { hashPassword, isPasswordHash, unmatchableHash, verifyPassword } from '../../src/ingress/password-hash.js';

const FAST = { N: 1024, r: 8, p: 1 };

/** A well-formed hash made independently of the module, to pin the format. */
function manualHash(password: string, N: number, r: number, p: number, salt = Buffer.from('0123456789abcdef')): string {
  const key = scryptSync(password, salt, 32, { N, r, p });
  return ['scrypt', N, r, p, salt.toString('base64'), key.toString('base64')].join('$');
}

describe('hashPassword / verifyPassword', () => {
  it('round trip with small parameters', async () => {
    const hash = await hashPassword('correct horse battery staple', FAST);
    expect(await verifyPassword('correct horse battery staple', hash)).toBe(true);
  });

  it('format: scrypt$N$r$p$salt$hash with a 16-byte salt and a 32-byte key', async () => {
    const hash = await hashPassword('pw', FAST);
    const parts = hash.split('$');
    expect(parts).toHaveLength(6);
    expect(parts.slice(0, 4)).toEqual(['scrypt', '1024', '8', '1']);
    expect(Buffer.from(parts[4] as string, 'base64')).toHaveLength(16);
    expect(Buffer.from(parts[5] as string, 'base64')).toHaveLength(32);
  });

  it('the key is scrypt(password, salt) with the stated parameters', async () => {
    const hash = await hashPassword('pw', { N: 2048, r: 4, p: 2 });
    const [, N, r, p, salt, key] = hash.split('$') as [string, string, string, string, string, string];
    expect([N, r, p]).toEqual(['2048', '4', '2']);
    expect(scryptSync('pw', Buffer.from(salt, 'base64'), 32, { N: 2048, r: 4, p: 2 }).toString('base64')).toBe(key);
  });

  it('unmatchableHash: the parameters of the hash it is like (else hashPassword\'s), a fresh salt and key each time, and no password matches it', async () => {
    const real = await hashPassword('pw', FAST);
    const dummy = unmatchableHash(real);
    expect(isPasswordHash(dummy)).toBe(true);
    expect(dummy.split('$').slice(0, 4)).toEqual(real.split('$').slice(0, 4));
    expect(unmatchableHash().split('$').slice(0, 4)).toEqual(['scrypt', String(2 ** 17), '8', '1']);
    expect(unmatchableHash(real).split('$').slice(4)).not.toEqual(dummy.split('$').slice(4));
    for (const password of ['', 'pw', 'correct horse battery staple']) expect(await verifyPassword(password, dummy)).toBe(false);
  });

  it('verifies hashes made elsewhere with the same format', async () => {
    expect(await verifyPassword('s3cret', manualHash('s3cret', 1024, 8, 1))).toBe(true);
    expect(await verifyPassword('s3cret', manualHash('s3cret', 16, 1, 1))).toBe(true);
    expect(await verifyPassword('S3cret', manualHash('s3cret', 1024, 8, 1))).toBe(false);
  });

  it('salts differ, so equal passwords give different hashes', async () => {
    const a = await hashPassword('same', FAST);
    const b = await hashPassword('same', FAST);
    expect(a).not.toBe(b);
    expect(await verifyPassword('same', a)).toBe(true);
    expect(await verifyPassword('same', b)).toBe(true);
  });

  it('wrong password is false', async () => {
    const hash = await hashPassword('right', FAST);
    expect(await verifyPassword('wrong', hash)).toBe(false);
    expect(await verifyPassword('Right', hash)).toBe(false);
    expect(await verifyPassword('right ', hash)).toBe(false);
    expect(await verifyPassword('', hash)).toBe(false);
  });

  it('empty and non-ASCII passwords work', async () => {
    expect(await verifyPassword('', await hashPassword('', FAST))).toBe(true);
    const unicode = await hashPassword('pässwörd ✓', FAST);
    expect(await verifyPassword('pässwörd ✓', unicode)).toBe(true);
    expect(await verifyPassword('passwörd ✓', unicode)).toBe(false);
  });

  it('a hash tampered with (another key of the right length) is false', async () => {
    const hash = await hashPassword('pw', FAST);
    const parts = hash.split('$');
    parts[5] = Buffer.alloc(32, 7).toString('base64');
    expect(await verifyPassword('pw', parts.join('$'))).toBe(false);
  });

  it('a hash whose parameters were changed is false', async () => {
    const hash = await hashPassword('pw', FAST);
    expect(await verifyPassword('pw', hash.replace('scrypt$1024$', 'scrypt$2048$'))).toBe(false);
  });

  describe('malformed hashes are false', () => {
    const good = manualHash('pw', 1024, 8, 1);
    const [, , , , salt, key] = good.split('$') as string[];
    it.each([
      ['empty', ''],
      ['plain text', 'hunter2'],
      ['wrong scheme', good.replace(/^scrypt/, 'bcrypt')],
      ['too few parts', `scrypt$1024$8$1$${key}`],
      ['too many parts', `${good}$extra`],
      ['N not a number', `scrypt$abc$8$1$${salt}$${key}`],
      ['N zero', `scrypt$0$8$1$${salt}$${key}`],
      ['r zero', `scrypt$1024$0$1$${salt}$${key}`],
      ['p zero', `scrypt$1024$8$0$${salt}$${key}`],
      ['empty salt', `scrypt$1024$8$1$$${key}`],
      ['empty key', `scrypt$1024$8$1$${salt}$`],
      ['short key', `scrypt$1024$8$1$${salt}$${Buffer.alloc(16).toString('base64')}`],
      ['long key', `scrypt$1024$8$1$${salt}$${Buffer.alloc(64).toString('base64')}`],
    ])('%s', async (_name, encoded) => {
      expect(await verifyPassword('pw', encoded)).toBe(false);
    });

    // Parameters scrypt itself refuses must give false too, not an exception.
    it.each([
      ['N not a power of two', `scrypt$1000$8$1$${salt}$${key}`],
      ['N negative', `scrypt$-1024$8$1$${salt}$${key}`],
      ['r fractional', `scrypt$1024$1.5$1$${salt}$${key}`],
    ])('%s', async (_name, encoded) => {
      await expect(verifyPassword('pw', encoded)).resolves.toBe(false);
    });
  });

  it('default parameters (N=2^17, r=8, p=1) round trip', async () => {
    const hash = await hashPassword('default params');
    expect(hash.startsWith('scrypt$131072$8$1$')).toBe(true);
    expect(await verifyPassword('default params', hash)).toBe(true);
    expect(await verifyPassword('default paramz', hash)).toBe(false);
  }, 60_000);
});
