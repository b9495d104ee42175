import { afterEach, describe, expect, it, vi } from 'vitest';
import { dkimSignatures } from '../../src/sign/dkim-signature.js';
import { mailauthVerify, makeDkimKey } from '../helpers/dkim.js';

// mailauth's own signer reads the clock twice, for the DKIM-Signature it signs and again
// for the one it writes out: a signature made across the turn of a second carried a t=
// other than the signed one, and failed at every verifier. t= is now taken once.

describe('DKIM t= tag', () => {
  afterEach(() => vi.restoreAllMocks());

  it('is the one signed, even when the clock turns a second while signing', async () => {
    const key = makeDkimKey('client.test', 'sel1');
    const raw = Buffer.from('From: dr@client.test\r\nTo: p@dest.test\r\nSubject: x\r\n\r\nbody\r\n');
    let now = Date.parse('2026-12-01T10:00:00.400Z');
    // Every reading of Date.now is a second later than the one before.
    vi.spyOn(Date, 'now').mockImplementation(() => (now += 1000));
    const [line] = await dkimSignatures(raw, [{ domain: key.domain, selector: key.selector, algorithm: key.algorithm, privateKey: key.privateKey }], new Date('2026-12-01T10:00:00Z'));
    vi.restoreAllMocks();
    expect((await mailauthVerify(Buffer.concat([Buffer.from(`${line}\r\n`), raw]), [key])).map((r) => r.status)).toEqual(['pass']);
    expect(line?.replace(/\r\n[ \t]+/g, ' ')).toMatch(/\bt=1796119200;/);
  });
});
