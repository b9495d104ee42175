import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText } from '../../src/config/load.js';
import { MAX_TIMER_MS } from '../../src/config/schema.js';

const HOST = 'hostname: gw.example.org\n';

function problemsOf(text: string): string[] {
  try {
    parseConfigText(HOST + text, 'test.yaml', {});
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  return [];
}

describe('durations the gateway waits out with a timer are bounded', () => {
  // Node.js fires a timer longer than 2^31-1 ms after 1 ms (TimeoutOverflowWarning): a
  // 30-day probe interval would probe without pause, a 30-day command timeout would cut
  // every SMTP session at once.
  it.each([
    ['health.probeInterval', 'health:\n  probeInterval: 30d\n'],
    ['smtp.limits.commandTimeout', 'smtp:\n  limits:\n    commandTimeout: 25d\n'],
    ['delivery.retry.maxDelay', 'delivery:\n  retry:\n    maxDelay: 40d\n'],
    ['delivery.pool.idleTimeout', `delivery:\n  pool:\n    idleTimeout: ${MAX_TIMER_MS + 1}\n`],
  ])('%s past 24.8 days is refused, naming the key and why', (key, text) => {
    const problems = problemsOf(text);
    expect(problems).toEqual([`${key}: must be at most 24d (${MAX_TIMER_MS} ms): the gateway waits this long with a timer, and timers cannot wait longer`]);
  });

  it('the longest timer Node.js can hold is accepted', () => {
    expect(problemsOf(`health:\n  probeInterval: ${MAX_TIMER_MS}\n`)).toEqual([]);
    expect(problemsOf('smtp:\n  limits:\n    commandTimeout: 24d\n')).toEqual([]);
  });

  it('spans only compared with the clock (expiry, lifetime, cache ages) may be longer', () => {
    const config = parseConfigText(
      `${HOST}portal:\n  expiry: 90d\n  sessions:\n    absolute: 60d\ndelivery:\n  retry:\n    lifetime: 30d\n  dns:\n    cacheTtl: 30d\nkeys:\n  cacheTtl: 60d\narchive:\n  purgeInterval: 30d\n`,
      'test.yaml',
      {},
    );
    expect(config.portal.expiry).toBe(90 * 86_400_000);
    expect(config.portal.sessions.absolute).toBe(60 * 86_400_000);
    expect(config.delivery.retry.lifetime).toBe(30 * 86_400_000);
    expect(config.delivery.dns.cacheTtl).toBe(30 * 86_400_000);
    expect(config.keys.cacheTtl).toBe(60 * 86_400_000);
    expect(config.archive.purgeInterval).toBe(30 * 86_400_000);
  });
});

describe('webhook timing that would hammer a receiver is refused', () => {
  const hook = (extra: string) => `webhooks:\n  - url: https://hooks.example.org/postern\n    events: [delivered]\n    secret: a-webhook-secret-of-32-characters\n${extra}`;

  it.each([
    // A tight loop: hundreds of POSTs a second to a failing receiver, each logged.
    ['retry.initialDelay 0', '    retry: { initialDelay: 0 }\n', 'webhooks.0.retry.initialDelay: must be at least 50ms (0 retries a failing receiver without pause)'],
    // Every POST aborted at once, after the receiver had it: duplicates until given up.
    ['timeout 0', '    timeout: 0\n', 'webhooks.0.timeout: must be at least 1s (a receiver that got the POST but had no time to answer gets it again and again)'],
    ['giveUpAfter below initialDelay', '    retry: { initialDelay: 10s, giveUpAfter: 1s }\n', 'webhooks.0.retry.giveUpAfter: must be at least retry.initialDelay (no retry would ever be made)'],
  ])('%s', (_name, extra, problem) => {
    expect(problemsOf(hook(extra))).toEqual([problem]);
  });

  it('the defaults pass', () => {
    expect(problemsOf(hook(''))).toEqual([]);
  });
});
