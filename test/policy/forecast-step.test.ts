import { describe, expect, it } from 'vitest';
import { applyTlsForecast, withForecastReason } from '../../src/policy/forecast-step.js';
import type { TlsCapability } from '../../src/tls/capability-cache.js';
import { tlsForecaster, type ForecastFn } from '../../src/tls/forecast.js';
import type { Decision } from '../../src/types.js';

const seen = (c: Partial<TlsCapability>): TlsCapability => ({ starttls: true, verdict: 'verified', checkedAt: Date.UTC(2026, 11, 7, 9, 0), ...c });

describe('tlsForecaster: a failure only when every next hop was seen failing the level', () => {
  const caps: Record<string, TlsCapability> = {
    'bad1:25': seen({ verdict: 'certificate-not-trusted' }),
    'bad2:25': seen({ verdict: 'certificate-expired' }),
    'plain:25': seen({ starttls: false, verdict: 'starttls-not-supported' }),
    'good:25': seen({}),
  };
  const hops: Record<string, string[]> = { all: ['bad1', 'bad2'], mixed: ['bad1', 'good'], unknown: ['bad1', 'never-seen'], plain: ['plain'] };
  const forecast = tlsForecaster(
    async (domain) => {
      if (!hops[domain]) throw new Error('no route');
      return { hops: hops[domain]!.map((name) => ({ name, port: 25 })) };
    },
    async (host, port) => caps[`${host}:${port}`],
  );
  it.each([
    ['all', 'verify', ['bad1:25 certificate-not-trusted', 'bad2:25 certificate-expired']],
    ['all', 'encrypt', undefined], // STARTTLS works: encryption would
    ['mixed', 'verify', undefined],
    ['unknown', 'verify', undefined],
    ['plain', 'encrypt', ['plain:25 starttls-not-supported']],
    ['no-route', 'verify', undefined],
  ] as const)('%s at %s', async (domain, level, expected) => {
    const f = await forecast(domain, level);
    expect(f?.map((h) => `${h.host} ${h.result}`)).toEqual(expected);
  });
});

describe('applyTlsForecast', () => {
  const failing: ForecastFn = async () => [{ host: 'mx.x.test:25', result: 'certificate-not-trusted', checkedAt: Date.UTC(2026, 11, 7, 9, 0) }];
  const decision = (over: Partial<Decision>): Decision => ({ rcpt: 'a@x.test', ruleId: 'default', reasons: ['no rule matched: default policy'], candidates: ['tls', 'portal'], tls: 'verify', onNoMethod: 'portal', method: 'tls', ...over });
  const all = () => true;
  const noPortal = (m: string) => m !== 'portal';
  it.each([
    ['the next candidate at once', decision({}), all, 'portal', /every MX failed verification when last seen: mx\.x\.test:25 certificate-not-trusted \(seen 2026-12-07T09:00:00\.000Z\); portal now instead/],
    ['onNoMethod portal at once', decision({ candidates: ['tls'] }), all, 'portal', /portal now instead/],
    ['an attempt when nothing else is possible', decision({ candidates: ['tls'], onNoMethod: 'defer' }), all, 'tls', /tried anyway \(the attempt decides\)/],
    ['an attempt when the portal cannot take the recipient', decision({}), noPortal, 'tls', /tried anyway/],
    ['encrypt: the forecast is about encryption', decision({ tls: 'encrypt', candidates: ['tls'], onNoMethod: 'defer' }), all, 'tls', /every MX failed encryption/],
  ] as const)('%s', async (_name, d, available, method, reason) => {
    const f = await applyTlsForecast(d, 'tls', available, failing);
    expect(f.method).toBe(method);
    expect(f.why).toMatch(reason);
  });

  it('asks nothing for tls: may, another method, or without a forecast source', async () => {
    let asked = 0;
    const counting: ForecastFn = async (...a) => (asked++, failing(...a));
    expect(await applyTlsForecast(decision({ tls: 'may' }), 'tls', all, counting)).toEqual({ method: 'tls' });
    expect(await applyTlsForecast(decision({}), 'portal', all, counting)).toEqual({ method: 'portal' });
    expect(await applyTlsForecast(decision({}), 'tls', all, undefined)).toEqual({ method: 'tls' });
    expect(asked).toBe(0);
  });

  it("replaces an earlier attempt's forecast reason", () => {
    expect(withForecastReason(['rule x', 'TLS forecast: old'], 'TLS forecast: new')).toEqual(['rule x', 'TLS forecast: new']);
    expect(withForecastReason(['rule x', 'TLS forecast: old'], undefined)).toEqual(['rule x']);
  });
});
