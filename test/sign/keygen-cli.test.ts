import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/events/logger.js';
import { DkimSigner } from '../../src/sign/dkim.js';
import { loadDkimKeys } from '../../src/sign/dkim-keys.js';
import { prependHeader } from '../../src/sign/prepend.js';
import { runCli } from '../helpers/cli.js';
import { mailauthVerify } from '../helpers/dkim.js';

/** The TXT value from the zone-file line the command prints: its strings joined. */
function txtFrom(stdout: string, name: string): string {
  const line = stdout.split('\n').find((l) => l.startsWith(`${name}. IN TXT (`)) ?? '';
  return [...line.matchAll(/"([^"]*)"/g)].map((m) => m[1]).join('');
}

describe('postern dkim keygen', () => {
  for (const algorithm of ['rsa-sha256', 'ed25519-sha256'] as const) {
    it(`${algorithm}: the key it writes signs messages that verify against the record it prints`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'postern-keygen-'));
      const out = join(dir, 'dkim.pem');
      const r = await runCli(['dkim', 'keygen', '--domain', 'Client.test', '--selector', 's2026', '--algorithm', algorithm, '--out', out]);
      expect(r.code).toBe(0);
      expect(statSync(out).mode & 0o777).toBe(0o600);
      expect(r.stdout).not.toContain('PRIVATE KEY');
      expect(r.stdout).toContain(`- { domain: client.test, selector: s2026, algorithm: ${algorithm}, privateKey: ${out} }`);
      const txt = txtFrom(r.stdout, 's2026._domainkey.client.test');
      expect(txt).toMatch(algorithm === 'rsa-sha256' ? /^v=DKIM1; k=rsa; p=[A-Za-z0-9+/=]{300,}$/ : /^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/=]{44}$/);

      const config = validateConfig({ hostname: 'postern.test', dkim: { keys: [{ domain: 'client.test', selector: 's2026', algorithm, privateKey: out }] } });
      const signer = new DkimSigner(await loadDkimKeys(config), createLogger('silent'));
      const raw = Buffer.from('From: dr@client.test\r\nTo: p@dest.test\r\nSubject: hi\r\n\r\nbody\r\n');
      const signed = await signer.sign(raw, { mailFrom: '', queueId: 'k1' });
      const results = await mailauthVerify(prependHeader(signed!.header, raw) as Buffer, [{ domain: 'client.test', selector: 's2026', algorithm, privateKey: '', txt }]);
      expect(results.map((x) => x.status)).toEqual(['pass']);

      const again = await runCli(['dkim', 'keygen', '--domain', 'client.test', '--selector', 's2026', '--out', out]);
      expect(again.code).toBe(1);
      expect(again.stderr).toMatch(/exists; not overwriting a key/);
      expect(readFileSync(out, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    });
  }
});
