import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { closedPort } from '../helpers/closed-port.js';
import { testConfigInput, writeConfigFile } from '../helpers/gateway.js';
import { selfSigned } from '../helpers/pki.js';

/**
 * check-config opens what `postern start` opens (src/cli/startup-checks.ts), so a config
 * it passes does not then fail at start: each of these passed check-config and stopped
 * the start, some with OpenSSL's "key values mismatch" and no key named, some after the
 * SMTP listener had already answered clients. Start runs the same checks first: the same
 * line on stderr, exit code 2, and nothing made in dataDir.
 */
describe('check-config and start: what start opens is checked, each problem naming its key', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-check-startup-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const a = selfSigned('a.postern.test');
  const b = selfSigned('b.postern.test');
  const file = (name: string, text: string) => (writeFileSync(join(dir, name), text), join(dir, name));
  const f = { aCert: file('a.pem', a.cert), aKey: file('a.key', a.key), bKey: file('b.key', b.key), aDir: join(dir, 'a-directory') };
  mkdirSync(f.aDir);

  /** A config file and its (not yet made) dataDir, in a directory of their own. */
  const config = (overrides: Record<string, unknown>) => {
    const caseDir = mkdtempSync(join(dir, 'case-'));
    const dataDir = join(caseDir, 'data');
    return { file: writeConfigFile(caseDir, testConfigInput(dataDir, overrides)), dataDir };
  };

  const cases: [string, () => Promise<Record<string, unknown>>, string][] = [
    ['smtp.tls key of another certificate', async () => ({ smtp: { tls: { cert: f.aCert, key: f.bKey } } }), 'smtp.tls.key: does not match smtp.tls.cert'],
    ['portal.tls key of another certificate', async () => ({ portal: { tls: { cert: f.aCert, key: f.bKey } } }), 'portal.tls.key: does not match portal.tls.cert'],
    ['admin.tls key of another certificate', async () => ({ admin: { tls: { enabled: true, cert: f.aCert, key: f.bKey } } }), 'admin.tls.key: does not match admin.tls.cert'],
    ['portal.tls.cert missing', async () => ({ portal: { tls: { cert: '/nonexistent/portal.pem', key: f.aKey } } }), 'portal.tls.cert: not a PEM block and not a readable file: cannot read /nonexistent/portal.pem (ENOENT)'],
    ['admin.tls.key missing', async () => ({ admin: { tls: { enabled: true, cert: f.aCert, key: '/nonexistent/admin.key' } } }), 'admin.tls.key: not a PEM block and not a readable file: cannot read /nonexistent/admin.key (ENOENT)'],
    ['smtp.tls.key a directory', async () => ({ smtp: { tls: { cert: f.aCert, key: f.aDir } } }), `smtp.tls.key: not a PEM block and not a readable file: cannot read ${f.aDir} (EISDIR)`],
    ['portal.tls.cert a directory', async () => ({ portal: { tls: { cert: f.aDir, key: f.aKey } } }), `portal.tls.cert: not a PEM block and not a readable file: cannot read ${f.aDir} (EISDIR)`],
    ['portal.tls.cert without its key', async () => ({ portal: { tls: { cert: f.aCert } } }), 'portal.tls: set both cert and key, or neither'],
    ['portal.masterKeys entry of 16 bytes', async () => ({ portal: { masterKeys: [{ id: 'k1', key: Buffer.alloc(16, 1).toString('base64') }] } }), 'portal.masterKeys.0.key: must be 32 bytes, base64 (or hex:...)'],
    ['portal.masterKeys entry not base64', async () => ({ portal: { masterKeys: [{ id: 'k1', key: 'not a key at all!' }] } }), 'portal.masterKeys.0.key: must be 32 bytes'],
    ['portal.organisation.logoFile missing', async () => ({ portal: { organisation: { logoFile: '/nonexistent/logo.png' } } }), 'portal.organisation.logoFile: cannot read /nonexistent/logo.png'],
    ['keys.smimeTrust file missing', async () => ({ keys: { smimeTrust: ['/nonexistent/ca.pem'] } }), 'keys.smimeTrust: cannot read /nonexistent/ca.pem'],
    // It was taken for an unchanged file (no mtime, as before any read): no revocation check at all.
    ['keys.smimeCrls file missing', async () => ({ keys: { smimeCrls: ['/nonexistent/ca.crl'] } }), "keys.smimeCrls: ENOENT: no such file or directory, stat '/nonexistent/ca.crl'"],
    [
      'portal.listen and admin.listen on one port',
      async () => {
        const port = await closedPort();
        return { portal: { listen: `127.0.0.1:${port}` }, admin: { listen: `0.0.0.0:${port}` } };
      },
      'admin.listen: 0.0.0.0:', // ...:<port> takes the port of portal.listen 127.0.0.1:<port>
    ],
  ];

  it.each(cases)('%s: check-config exit 2 naming it; start the same, before making anything', async (_name, overrides, named) => {
    const c = config(await overrides());
    const checked = await runCli(['check-config', '--config', c.file]);
    expect(checked.stderr).toContain(named);
    expect(checked.code).toBe(2);
    const started = await runCli(['start', '--config', c.file]);
    expect(started.stderr).toContain(named);
    expect(started.code).toBe(2);
    expect(started.stdout, 'no log line: nothing started').toBe('');
    expect(existsSync(c.dataDir), 'dataDir not made').toBe(false);
  });

  it('every problem at once, not only the first', async () => {
    const c = config({ smtp: { tls: { cert: f.aCert, key: f.bKey } }, portal: { tls: { cert: f.aCert, key: f.bKey }, organisation: { logoFile: '/nonexistent/logo.png' } } });
    const r = await runCli(['check-config', '--config', c.file]);
    expect(r.code).toBe(2);
    for (const line of ['smtp.tls.key: does not match smtp.tls.cert', 'portal.tls.key: does not match portal.tls.cert', 'portal.organisation.logoFile: cannot read']) expect(r.stderr).toContain(line);
  });

  it('a matching pair for each listener: OK, saying what was checked', async () => {
    const pair = { cert: f.aCert, key: f.aKey };
    const c = config({ smtp: { tls: pair }, portal: { tls: pair, masterKeys: [{ id: 'k1', key: Buffer.alloc(32, 1).toString('base64') }] }, admin: { tls: { enabled: true, ...pair } } });
    const r = await runCli(['check-config', '--config', c.file]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('  tls: smtp.tls, portal.tls, admin.tls: each key matches its certificate\n');
  });
});
