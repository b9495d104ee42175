import { describe, expect, it } from 'vitest';
import { isExpired, nextAttemptAt } from '../../src/deliver/retry.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const retry = { initialDelay: 5 * MIN, maxDelay: HOUR, lifetime: 5 * DAY };
const T0 = Date.UTC(2024, 0, 1);
const noJitter = () => 0;

describe('nextAttemptAt', () => {
  it('doubles from initialDelay: 5m, 10m, 20m, 40m, then the 1h cap', () => {
    const now = T0 + MIN;
    const delays = [1, 2, 3, 4, 5, 6, 10].map((attempts) => nextAttemptAt(retry, attempts, T0, now, noJitter) - now);
    expect(delays).toEqual([5 * MIN, 10 * MIN, 20 * MIN, 40 * MIN, HOUR, HOUR, HOUR]);
  });

  it('attempts 0 (or less) is treated as the first attempt', () => {
    expect(nextAttemptAt(retry, 0, T0, T0, noJitter)).toBe(T0 + 5 * MIN);
    expect(nextAttemptAt(retry, -3, T0, T0, noJitter)).toBe(T0 + 5 * MIN);
  });

  it('the cap holds for huge attempt counts (no overflow to Infinity or NaN)', () => {
    for (const attempts of [50, 1000, 10_000]) {
      expect(nextAttemptAt(retry, attempts, T0, T0, noJitter)).toBe(T0 + HOUR);
    }
  });

  it('delay counts from now, not from arrival', () => {
    const now = T0 + 3 * HOUR;
    expect(nextAttemptAt(retry, 2, T0, now, noJitter)).toBe(now + 10 * MIN);
  });

  it('jitter adds up to (not including) 10% of the delay', () => {
    const now = T0;
    expect(nextAttemptAt(retry, 1, T0, now, () => 0.5) - now).toBe(5 * MIN + 15_000);
    expect(nextAttemptAt(retry, 1, T0, now, () => 0.999999) - now).toBe(5 * MIN + Math.floor(5 * MIN * 0.1 * 0.999999));
    expect(nextAttemptAt(retry, 1, T0, now, () => 0.999999) - now).toBeLessThan(5 * MIN * 1.1);
    // At the cap the jitter is on top of maxDelay.
    expect(nextAttemptAt(retry, 9, T0, now, () => 0.5) - now).toBe(HOUR + 3 * MIN);
  });

  it('jitter bound over many random draws, always whole milliseconds', () => {
    let seed = 99;
    const random = () => {
      seed = (seed * 16807) % 2147483647;
      return (seed - 1) / 2147483646;
    };
    for (let i = 0; i < 5000; i++) {
      const attempts = 1 + (i % 8);
      const base = Math.min(retry.initialDelay * 2 ** (attempts - 1), retry.maxDelay);
      const delay = nextAttemptAt(retry, attempts, T0, T0, random) - T0;
      expect(delay).toBeGreaterThanOrEqual(base);
      expect(delay).toBeLessThan(base * 1.1);
      expect(Number.isInteger(delay)).toBe(true);
    }
  });

  it('uses Math.random by default, still within the bound', () => {
    for (let i = 0; i < 100; i++) {
      const delay = nextAttemptAt(retry, 1, T0, T0) - T0;
      expect(delay).toBeGreaterThanOrEqual(5 * MIN);
      expect(delay).toBeLessThan(5.5 * MIN);
    }
  });

  it('never goes past the end of the lifetime: the last attempt is placed at the end', () => {
    const end = T0 + retry.lifetime;
    expect(nextAttemptAt(retry, 20, T0, end - 10 * MIN, noJitter)).toBe(end);
    expect(nextAttemptAt(retry, 20, T0, end - 10 * MIN, () => 0.99)).toBe(end);
    expect(nextAttemptAt(retry, 1, T0, end - MIN, noJitter)).toBe(end);
    // Just early enough to fit a full delay: not clamped.
    expect(nextAttemptAt(retry, 20, T0, end - HOUR, noJitter)).toBe(end);
    expect(nextAttemptAt(retry, 20, T0, end - HOUR - 1, noJitter)).toBe(end - 1);
  });

  it('already past the lifetime: the end of the lifetime (due now)', () => {
    const end = T0 + retry.lifetime;
    expect(nextAttemptAt(retry, 3, T0, end + DAY, noJitter)).toBe(end);
  });

  it('a schedule of retries is increasing and ends at the lifetime', () => {
    const short = { initialDelay: 1000, maxDelay: 8000, lifetime: 60_000 };
    let now = 0;
    const times: number[] = [];
    for (let attempts = 1; attempts < 20 && now < short.lifetime; attempts++) {
      now = nextAttemptAt(short, attempts, 0, now, noJitter);
      times.push(now);
    }
    expect(times.slice(0, 6)).toEqual([1000, 3000, 7000, 15_000, 23_000, 31_000]);
    expect(times[times.length - 1]).toBe(60_000);
    for (let i = 1; i < times.length; i++) expect(times[i]).toBeGreaterThan(times[i - 1] as number);
  });
});

describe('isExpired', () => {
  it('expires exactly at the end of the lifetime', () => {
    expect(isExpired(retry, T0, T0)).toBe(false);
    expect(isExpired(retry, T0, T0 + retry.lifetime - 1)).toBe(false);
    expect(isExpired(retry, T0, T0 + retry.lifetime)).toBe(true);
    expect(isExpired(retry, T0, T0 + retry.lifetime + DAY)).toBe(true);
  });

  it('a zero lifetime is expired at once', () => {
    expect(isExpired({ ...retry, lifetime: 0 }, T0, T0)).toBe(true);
  });

  it('the last scheduled attempt is the expiry moment', () => {
    const at = nextAttemptAt(retry, 30, T0, T0 + retry.lifetime - MIN, noJitter);
    expect(isExpired(retry, T0, at)).toBe(true);
    expect(isExpired(retry, T0, at - 1)).toBe(false);
  });
});
