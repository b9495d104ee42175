import { describe, expect, it } from 'vitest';
import { parseDuration, parseSize } from '../../src/config/units.js';

describe('parseDuration', () => {
  it.each([
    ['0', 0],
    ['250', 250],
    ['250ms', 250],
    ['1s', 1000],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['5d', 5 * 86_400_000],
    ['1h30m', 5_400_000],
    ['1d2h3m4s5ms', 86_400_000 + 2 * 3_600_000 + 3 * 60_000 + 4000 + 5],
    ['1m30s', 90_000],
    ['1.5h', 5_400_000],
    ['0.5s', 500],
    ['1.0005s', 1001],
    ['5 m', 300_000],
    ['  10s  ', 10_000],
    ['\t2h\n', 7_200_000],
    ['10m10ms', 600_010],
  ])('%j → %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it('distinguishes "ms" from "m" followed by "s"', () => {
    expect(parseDuration('3ms')).toBe(3);
    expect(parseDuration('3m')).toBe(180_000);
  });

  it.each(['', '   ', '5 minutes', '5min', 'five minutes', 'm', '-5m', '5x', '5m garbage', '5m5', 'h1', '1h30', '1.h', '.5s', '5 M', '5M', '1w', '1y', '1e3', '0x10', '5m,1s'])(
    'rejects %j',
    (text) => {
      expect(parseDuration(text)).toBeUndefined();
    },
  );

  it('is not confused by state left over from an earlier call (global sticky regex)', () => {
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('5 minutes')).toBeUndefined();
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration('zz')).toBeUndefined();
    expect(parseDuration('7s')).toBe(7000);
  });

  it('returns whole milliseconds', () => {
    expect(parseDuration('0.0004s')).toBe(0);
    expect(parseDuration('0.0006s')).toBe(1);
    expect(Number.isInteger(parseDuration('1.333333s'))).toBe(true);
  });
});

describe('parseSize', () => {
  it.each([
    ['0', 0],
    ['1', 1],
    ['512', 512],
    ['10b', 10],
    ['10B', 10],
    ['1KB', 1024],
    ['1kb', 1024],
    ['64KB', 65_536],
    ['512KB', 524_288],
    ['25MB', 25 * 1024 * 1024],
    ['25 MB', 25 * 1024 * 1024],
    ['25mb', 25 * 1024 * 1024],
    ['1GB', 1024 ** 3],
    ['2gb', 2 * 1024 ** 3],
    ['1.5KB', 1536],
    ['0.5MB', 524_288],
    ['  7KB  ', 7168],
  ])('%j → %d bytes', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it('rounds fractional bytes', () => {
    expect(parseSize('1.4')).toBe(1);
    expect(parseSize('1.6')).toBe(2);
    expect(parseSize('0.001KB')).toBe(1);
  });

  it.each(['', 'MB', '25 megs', '25M', '25K', '25MiB', '25TB', '-1', '-1KB', '1e3', '25 MB extra', '1,5MB', 'KB25', '.5MB'])(
    'rejects %j',
    (text) => {
      expect(parseSize(text)).toBeUndefined();
    },
  );
});
