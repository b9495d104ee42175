import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey } from 'openpgp';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { selfSigned } from '../helpers/pki.js';
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
      ['protect:\n  pgp: { escrowKey: /nonexistent/escrow.asc }\n', /protect\.pgp\.escrowKey: not a PEM block and not a readable file: cannot read \/nonexistent\/escrow\.asc \(ENOENT\)/],
      ['dkim:\n  keys: [{ domain: client.test, selector: s1, privateKey: /nonexistent/dkim.pem }]\n', /dkim\.keys\.0 \(s1\._domainkey\.client\.test\): privateKey: not a PEM block and not a readable file: cannot read \/nonexistent\/dkim\.pem \(ENOENT\)/],
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

  it('PEM after "Bag Attributes" lines (openssl pkcs12 -nodes) through ${file:...} is used; a value that is neither PEM nor a file is named, not printed', async () => {
    const bagged = (pem: string) => `Bag Attributes\n    localKeyID: 01 02 03\nsubject=CN = postern.test\n${pem}`;
    const tls = selfSigned('postern.test');
    const leaf = buildCert({ name: 'dr@client.test', email: 'dr@client.test' });
    const dkim = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const secret = 'Bag Attributes\n    localKeyID: 01\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDtopSecretLine1\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDtopSecretLine2\n';
    const f = files({ 'tls.pem': bagged(tls.cert), 'tls.key': bagged(tls.key), 'smime.pem': bagged(leaf.cert), 'smime.key': bagged(leaf.key), 'dkim.pem': bagged(dkim), 'lost.txt': secret });
    const config = (keys: { tls: string; smime: string; dkim: string }) =>
      `hostname: postern.test\nsmtp:\n  tls: { cert: "\${file:${f['tls.pem']}}", key: "\${file:${keys.tls}}" }\n` +
      `identities:\n  client.test: { smimeCert: "\${file:${f['smime.pem']}}", smimeKey: "\${file:${keys.smime}}" }\n` +
      `dkim:\n  keys: [{ domain: client.test, selector: s1, privateKey: "\${file:${keys.dkim}}", algorithm: ed25519-sha256 }]\n`;

    const ok = await runCli(['check-config', '--config', files({ 'postern.yaml': config({ tls: f['tls.key']!, smime: f['smime.key']!, dkim: f['dkim.pem']! }) })['postern.yaml']!]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('  keys: 1 signing identity domain(s), escrow none, 1 DKIM key(s): all open\n');

    const lost = f['lost.txt']!;
    const hidden = 'not a PEM block and not a readable file (the value is not shown: it may be secret material)';
    // smtp.tls is checked when the config is loaded, the keys after it: one run each.
    for (const [keys, named] of [
      [{ tls: lost, smime: f['smime.key']!, dkim: f['dkim.pem']! }, [`smtp.tls.key: ${hidden}`]],
      [{ tls: f['tls.key']!, smime: lost, dkim: lost }, [`identities.client.test.smimeKey: ${hidden}`, `dkim.keys.0 (s1._domainkey.client.test): privateKey: ${hidden}`]],
    ] as const) {
      const r = await runCli(['check-config', '--config', files({ 'postern.yaml': config(keys) })['postern.yaml']!]);
      expect(r.code).toBe(2);
      for (const line of named) expect(r.stderr).toContain(line);
      for (const line of secret.split('\n').filter((l) => l.trim())) expect(r.stderr).not.toContain(line.trim());
    }
  });
});
