import { describe, expect, it } from 'vitest';
import { isQueueId, newQueueId } from '../../src/queue/ids.js';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** Decodes the 10-character time prefix. */
function timeOf(id: string): number {
  let t = 0;
  for (const ch of id.slice(0, 10)) t = t * 32 + ALPHABET.indexOf(ch);
  return t;
}

describe('newQueueId', () => {
  it('is 18 Crockford base32 characters and passes isQueueId', () => {
    for (let i = 0; i < 200; i++) {
      const id = newQueueId();
      expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{18}$/);
      expect(isQueueId(id)).toBe(true);
    }
  });

  it('encodes the time in the first 10 characters', () => {
    const now = Date.UTC(2024, 5, 1, 12, 0, 0, 123);
    expect(timeOf(newQueueId(now))).toBe(now);
    expect(newQueueId(0).slice(0, 10)).toBe('0000000000');
    expect(newQueueId(31).slice(0, 10)).toBe('000000000Z');
    expect(newQueueId(32).slice(0, 10)).toBe('0000000010');
    expect(newQueueId(32 ** 10 - 1).slice(0, 10)).toBe('ZZZZZZZZZZ');
  });

  it('ids sort by time (string order = time order)', () => {
    const start = Date.UTC(2020, 0, 1);
    const times: number[] = [];
    let seed = 7;
    for (let i = 0; i < 2000; i++) {
      seed = (seed * 48271) % 2147483647;
      times.push(start + (seed % 10_000_000_000));
    }
    const ids = times.map((t) => ({ t, id: newQueueId(t) }));
    const byId = [...ids].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (let i = 1; i < byId.length; i++) expect((byId[i] as { t: number }).t).toBeGreaterThanOrEqual((byId[i - 1] as { t: number }).t);
    // Adjacent milliseconds and carries across a digit.
    expect(newQueueId(start) < newQueueId(start + 1)).toBe(true);
    expect(newQueueId(1023) < newQueueId(1024)).toBe(true);
    expect(newQueueId(32 ** 9 - 1) < newQueueId(32 ** 9)).toBe(true);
  });

  it('ids made now sort after ids made a millisecond earlier', () => {
    const now = Date.now();
    expect(newQueueId(now - 1) < newQueueId(now)).toBe(true);
    expect(timeOf(newQueueId())).toBeGreaterThanOrEqual(now);
  });

  it('unique across 10k ids made in the same millisecond', () => {
    const now = Date.now();
    const ids = new Set<string>();
    for (let i = 0; i < 10_000; i++) ids.add(newQueueId(now));
    expect(ids.size).toBe(10_000);
  });

  it('unique across 10k ids made as fast as possible', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 10_000; i++) ids.add(newQueueId());
    expect(ids.size).toBe(10_000);
  });

  it('the random part uses the whole alphabet', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) for (const ch of newQueueId(0).slice(10)) seen.add(ch);
    expect(seen.size).toBe(32);
  });
});

describe('isQueueId', () => {
  it.each(['0000000000AAAAAAAA', '01HQ0ABCDEFGHJKMNP', 'ZZZZZZZZZZZZZZZZZZ'])('accepts %s', (id) => {
    expect(isQueueId(id)).toBe(true);
  });

  it.each([
    ['', 'empty'],
    ['01HQ0ABCDEFGHJKMN', '17 characters'],
    ['01HQ0ABCDEFGHJKMNPQ', '19 characters'],
    ['01hq0abcdefghjkmnp', 'lower case'],
    ['01HQ0ABCDEFGHJKMNI', 'I'],
    ['01HQ0ABCDEFGHJKMNL', 'L'],
    ['01HQ0ABCDEFGHJKMNO', 'O'],
    ['01HQ0ABCDEFGHJKMNU', 'U'],
    ['../../etc/passwd00', 'path'],
    ['01HQ0ABCDEFGHJKMN/', 'slash'],
    [' 01HQ0ABCDEFGHJKMNP', 'leading space'],
    ['01HQ0ABCDEFGHJKMNP\n', 'trailing newline'],
  ])('refuses %j (%s)', (id) => {
    expect(isQueueId(id)).toBe(false);
  });
});
