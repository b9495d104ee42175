import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey } from 'openpgp';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { buildCert } from '../keys/smime-pki.js';

/** Writes each file into a fresh directory; returns their paths. */
function files(entries: Record<string, string>): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-check-keys-'));
  return Object.fromEntries(Object.entries(entries).map(([name, text]) => [name, (writeFileSync(join(dir, name), text), join(dir, name))]));
}

describe('postern check-config opens the keys the gateway opens at start', () => {
  it('an identity key that does not open, a chain that is not one, an escrow key or DKIM key that is not there: each named, exit 2', async () => {
    const org = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: 'dr@client.test' }], passphrase: 'right', format: 'armored' });
    const root = buildCert({ name: 'Org Root', ca: true });
    const leaf = buildCert({ name: 'dr@other.test', email: 'dr@other.test', issuer: root });
    const unrelated = buildCert({ name: 'Unrelated CA', ca: true });
    const f = files({ 'org.asc': org.privateKey, 'smime.pem': leaf.cert + unrelated.cert, 'smime.key': leaf.key });
    const cases: [string, RegExp][] = [
      [`identities:\n  client.test: { pgpKey: ${f['org.asc']}, pgpPassphrase: wrong }\n`, /identities\.client\.test\.pgpKey: /],
      [`identities:\n  other.test: { smimeCert: ${f['smime.pem']}, smimeKey: ${f['smime.key']} }\n`, /identities\.other\.test\.smimeCert: the certificates after the first must be its chain, each issued by the next: the signature on the certificate does not verify with intermediate "CN=Unrelated CA"/],
      ['protect:\n  pgp: { escrowKey: /nonexistent/escrow.asc }\n', /protect\.pgp\.escrowKey: cannot read \/nonexistent\/escrow\.asc: ENOENT/],
      ['dkim:\n  keys: [{ domain: client.test, selector: s1, privateKey: /nonexistent/dkim.pem }]\n', /dkim\.keys\.0 \(s1\._domainkey\.client\.test\): ENOENT/],
    ];
    for (const [yaml, named] of cases) {
      const r = await runCli(['check-config', '--config', files({ 'postern.yaml': `hostname: postern.test\n${yaml}` })['postern.yaml']!]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(named);
      expect(r.stderr).not.toMatch(/\n\s+at /); // a named problem, not a stack trace
    }
  });

  it('keys that open: OK, with what was opened', async () => {
    const org = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: 'dr@client.test' }], format: 'armored' });
    const dkim = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const f = files({ 'org.asc': org.privateKey, 'dkim.pem': dkim });
    const yaml = `hostname: postern.test\nidentities:\n  client.test: { pgpKey: ${f['org.asc']} }\nprotect:\n  pgp: { escrowKey: ${JSON.stringify(org.publicKey)} }\ndkim:\n  keys: [{ domain: client.test, selector: s1, privateKey: ${f['dkim.pem']}, algorithm: ed25519-sha256 }]\n`;
    const r = await runCli(['check-config', '--config', files({ 'postern.yaml': yaml })['postern.yaml']!]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('  keys: 1 signing identity domain(s), escrow pgp, 1 DKIM key(s): all open\n');
  });
});
