import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText, validateConfig } from '../../src/config/load.js';
import { loadIdentities } from '../../src/keys/identities.js';
import { loadDkimKeys } from '../../src/sign/dkim-keys.js';
import { loadOrCreateCertificate } from '../../src/tls/dev-certificate.js';
import { selfSigned } from '../helpers/pki.js';
import { buildCert } from '../keys/smime-pki.js';

const tmp = mkdtempSync(join(tmpdir(), 'postern-pem-or-file-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** What `openssl pkcs12 -nodes` writes in front of each block. */
const bagged = (pem: string) => `Bag Attributes\n    localKeyID: 01 02 03\n    friendlyName: postern\nsubject=CN = postern.test\nissuer=CN = postern.test\n${pem}`;
/** A private key that lost its -----BEGIN/-----END lines: secret, and no file name. */
const LOST_MARKERS = `Bag Attributes\n    localKeyID: 01\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDtopSecretLine1\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDtopSecretLine2\n`;
const NOT_SHOWN = 'not a PEM block and not a readable file (the value is not shown: it may be secret material)';

function file(name: string, text: string): string {
  writeFileSync(join(tmp, name), text);
  return join(tmp, name);
}

/** The problems a config that must fail is refused with. */
function problemsOf(yaml: string): string[] {
  try {
    parseConfigText(yaml, 'test.yaml', {});
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('the config was accepted');
}

const pkcs8 = (pem: string) => createPrivateKey(pem).export({ type: 'pkcs8', format: 'pem' });

describe('a key or certificate after "Bag Attributes" lines (openssl pkcs12 -nodes) is PEM text, and is used', () => {
  it('smtp.tls.cert/key through ${file:...}: accepted at load, and the pair makes a TLS context', async () => {
    const { cert, key } = selfSigned('postern.test');
    const yaml = `hostname: postern.test\nsmtp:\n  tls:\n    cert: \${file:${file('tls-cert.pem', bagged(cert))}}\n    key: \${file:${file('tls-key.pem', bagged(key))}}\n`;
    const config = parseConfigText(yaml, 'test.yaml', {});
    const pair = await loadOrCreateCertificate(tmp, 'postern.test', config.smtp.tls.cert, config.smtp.tls.key);
    expect(pair.source).toBe('configured');
    expect(pair.certPath).toBe('(inline)');
    expect(pair.key.trim()).toBe(key.trim());
    expect(() => createSecureContext({ cert: pair.cert, key: pair.key })).not.toThrow();
  });

  it('a DKIM privateKey', async () => {
    const key = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const yaml = `hostname: postern.test\ndkim:\n  keys: [{ domain: client.test, selector: s1, privateKey: "\${file:${file('dkim.pem', bagged(key))}}", algorithm: ed25519-sha256 }]\n`;
    const [loaded] = await loadDkimKeys(parseConfigText(yaml, 'test.yaml', {}));
    expect(loaded?.privateKey).toBe(pkcs8(key));
  });

  it('an identity smimeCert and smimeKey', async () => {
    const leaf = buildCert({ name: 'dr@client.test', email: 'dr@client.test' });
    const config = validateConfig({ hostname: 'postern.test', identities: { 'client.test': { smimeCert: bagged(leaf.cert), smimeKey: bagged(leaf.key) } } });
    const { identityFor } = await loadIdentities(config);
    const smime = identityFor('client.test')?.smime;
    expect(smime?.cert.subject).toBe('CN=dr@client.test');
    expect(smime?.key.export({ type: 'pkcs8', format: 'pem' })).toBe(pkcs8(leaf.key));
  });
});

describe('a value that is neither PEM text nor a readable file is named, and shown only when it looks like a path', () => {
  const secretLines = LOST_MARKERS.split('\n').filter((l) => l.trim());
  const expectHidden = (message: string) => {
    for (const line of secretLines) expect(message).not.toContain(line.trim());
  };

  it('smtp.tls.key: at load, and when the certificate is loaded', async () => {
    const { cert } = selfSigned('postern.test');
    const yaml = `hostname: postern.test\nsmtp:\n  tls:\n    cert: \${file:${file('ok-cert.pem', cert)}}\n    key: \${file:${file('lost.txt', LOST_MARKERS)}}\n`;
    const problems = problemsOf(yaml);
    expect(problems).toEqual([`smtp.tls.key: ${NOT_SHOWN}; give a file path, or the PEM text with its -----BEGIN and -----END lines`]);
    const failed = await loadOrCreateCertificate(tmp, 'postern.test', cert, LOST_MARKERS).catch((err: Error) => err.message);
    expect(failed).toMatch(/^smtp\.tls\.key: not a PEM block and not a readable file \(the value is not shown/);
    expectHidden(failed as string);
  });

  it('a DKIM privateKey', async () => {
    const config = validateConfig({ hostname: 'postern.test', dkim: { keys: [{ domain: 'client.test', selector: 's1', privateKey: LOST_MARKERS }] } });
    const failed = await loadDkimKeys(config).catch((err: Error) => err.message);
    expect(failed).toMatch(/^dkim\.keys\.0 \(s1\._domainkey\.client\.test\): privateKey: not a PEM block and not a readable file \(the value is not shown/);
    expectHidden(failed as string);
  });

  it('an identity smimeKey', async () => {
    const leaf = buildCert({ name: 'dr@client.test', email: 'dr@client.test' });
    const config = validateConfig({ hostname: 'postern.test', identities: { 'client.test': { smimeCert: leaf.cert, smimeKey: LOST_MARKERS } } });
    const failed = await loadIdentities(config).catch((err: Error) => err.message);
    expect(failed).toMatch(/^identities\.client\.test\.smimeKey: not a PEM block and not a readable file \(the value is not shown/);
    expectHidden(failed as string);
  });

  it('a file name is shown; a single line of base64 is not', async () => {
    const config = (privateKey: string) => validateConfig({ hostname: 'postern.test', dkim: { keys: [{ domain: 'client.test', selector: 's1', privateKey }] } });
    expect(await loadDkimKeys(config('/nonexistent/dkim.pem')).catch((err: Error) => err.message)).toBe(
      "dkim.keys.0 (s1._domainkey.client.test): privateKey: not a PEM block and not a readable file: cannot read /nonexistent/dkim.pem (ENOENT); fix the path or the file's permissions",
    );
    const body = 'MC4CAQAwBQYDK2VwBCIEIHtopSecretBase64KeyMaterialWithoutItsMarkers0';
    const failed = await loadDkimKeys(config(body)).catch((err: Error) => err.message);
    expect(failed).toContain(NOT_SHOWN);
    expect(failed).not.toContain(body);
  });
});
