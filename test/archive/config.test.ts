import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, validateConfig } from '../../src/config/load.js';
import { createTestCa } from '../helpers/pki.js';
import { cli, tempDir } from './helpers.js';

const dir = tempDir('postern-archive-config-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

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

  it('a missing sink CA file and a master key that is not 32 bytes are named at load, with the fix', () => {
    const missing = join(dir, 'no-such-ca.pem');
    expect(problems({ sinks: [{ type: 'fs' }, { type: 'smtp', server: 'a.test', to: 'j@a.test', ca: [missing] }] })).toEqual([`archive.sinks.1.ca.0: not a PEM block and not a readable file: cannot read ${missing} (ENOENT); fix the path or the file's permissions`]);
    expect(problems({ masterKeys: [{ id: 'k1', key: 'c2hvcnQ=' }] })).toEqual(['archive.masterKeys.0.key: must be 32 bytes, base64 (or hex:...); make one with: openssl rand -base64 32']);
    // PEM text in place of a file name (e.g. from ${file:...}) is parsed at load too.
    const pem = readFileSync(createTestCa('Config CA').caFile, 'utf8');
    expect(problems({ sinks: [{ type: 'smtp', server: 'a.test', to: 'j@a.test', ca: [pem, `${pem}${pem}`] }] })).toEqual([]);
    const cut = problems({ sinks: [{ type: 'fs' }, { type: 'smtp', server: 'a.test', to: 'j@a.test', ca: [pem, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'] }] });
    expect(cut).toEqual([expect.stringMatching(/^archive\.sinks\.1\.ca\.1: certificate 1 of the PEM text does not parse \(.+\); paste the whole certificate, or give its file name$/)]);
    expect(problems({ sinks: [{ type: 'smtp', server: 'a.test', to: 'j@a.test', ca: ['-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n'] }] })).toEqual([
      'archive.sinks.0.ca.0: PEM text without a -----BEGIN CERTIFICATE----- block (give a file name, or the certificate itself)',
    ]);
    expect(problems({ masterKeys: [{ id: 'k1', key: Buffer.alloc(32, 7).toString('base64') }, { id: 'k0', key: `hex:${'ab'.repeat(32)}` }] })).toEqual([]);
  });

  it('postern check-config refuses them (exit 2) instead of saying OK', async () => {
    const check = async (archive: Record<string, unknown>) => {
      const file = join(dir, 'postern.yaml');
      writeFileSync(file, stringify({ hostname: 'gw.example.test', dataDir: dir, archive }));
      const r = await cli(['check-config', '--config', file]);
      expect(r.code).toBe(2);
      expect(r.stdout).not.toContain('OK');
      return r.stderr;
    };
    expect(await check({ masterKeys: [{ id: 'k1', key: 'not-a-key' }] })).toContain('archive.masterKeys.0.key: must be 32 bytes');
    expect(await check({ sinks: [{ type: 'smtp', server: 'a.test', to: 'j@a.test', ca: [join(dir, 'gone.pem')] }] })).toContain('archive.sinks.0.ca.0: not a PEM block and not a readable file: cannot read');
  });
});
