import { describe, expect, it } from 'vitest';
import { ConfigError, validateConfig } from '../../src/config/load.js';

function problems(archive: unknown): string[] {
  try {
    validateConfig({ hostname: 'gw.example.test', archive });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('archive config', () => {
  it('takes an smtp sink next to the fs sink, with durations and host:port parsed', () => {
    const c = validateConfig({ hostname: 'gw.example.test', archive: { sinks: [{ type: 'fs' }, { type: 'smtp', server: 'archive.example.org:2525', to: 'journal@example.org', timeout: '10s' }], purgeInterval: '6h' } });
    expect(c.archive.sinks[1]).toEqual({ type: 'smtp', server: { host: 'archive.example.org', port: 2525 }, to: 'journal@example.org', ca: [], timeout: 10_000 });
    expect(c.archive.purgeInterval).toBe(6 * 3_600_000);
  });

  it('names what is wrong', () => {
    expect(problems({ sinks: [{ type: 'fs' }, { type: 'fs' }] })).toEqual(['archive.sinks: at most one fs sink (it lives under dataDir)']);
    expect(problems({ sinks: [{ type: 'smtp', server: 'a.test', to: 'not-an-address' }] })).toEqual(['archive.sinks.0.to: must be the archive mailbox address']);
    expect(problems({ retention: { rules: [{ days: 30 }] } })).toEqual(['archive.retention.rules.0: give at least one of sender, recipient, domain, category']);
    expect(problems({ retention: { rules: [{ domain: 'bad domain!', days: 30 }] } })[0]).toMatch(/^archive\.retention\.rules\.0\.domain: not a domain name/);
    expect(problems({ masterKeys: [{ id: 'has space', key: 'x' }] })[0]).toMatch(/^archive\.masterKeys\.0\.id/);
  });
});
