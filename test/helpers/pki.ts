import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';

export interface Issued {
  cert: string;
  key: string;
}

export interface TestCa extends Issued {
  /** PEM file of the CA certificate, for delivery.tls.trust. */
  caFile: string;
  issue(names: string[], opts?: { expired?: boolean }): Issued;
  /** An S/MIME certificate for an address (emailProtection, rfc822Name). */
  issueSmime(email: string, opts?: { expired?: boolean; bits?: number; keyUsage?: 'signOnly' }): Issued;
}

function keyPair(bits = 2048) {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: bits,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { privateKey, publicKey };
}

function baseCert(publicKey: string, cn: string, notBefore: Date, notAfter: Date) {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey);
  cert.serialNumber = '01' + randomBytes(8).toString('hex');
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  cert.setSubject([{ name: 'commonName', value: cn }]);
  return cert;
}

/** A throw-away certificate authority for tests, written to a temp file for `trust`. */
export function createTestCa(name = 'Postern Test CA'): TestCa {
  const { privateKey, publicKey } = keyPair();
  const caKey = forge.pki.privateKeyFromPem(privateKey);
  const ca = baseCert(publicKey, name, new Date(Date.now() - 86_400_000), new Date(Date.now() + 365 * 86_400_000));
  ca.setIssuer(ca.subject.attributes);
  ca.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
  ]);
  ca.sign(caKey, forge.md.sha256.create());
  const caPem = forge.pki.certificateToPem(ca);
  const dir = mkdtempSync(join(tmpdir(), 'postern-ca-'));
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, caPem);
  return {
    cert: caPem,
    key: privateKey,
    caFile,
    issue(names, opts = {}) {
      const leafKeys = keyPair();
      const now = Date.now();
      const [notBefore, notAfter] = opts.expired ? [new Date(now - 10 * 86_400_000), new Date(now - 86_400_000)] : [new Date(now - 86_400_000), new Date(now + 30 * 86_400_000)];
      const leaf = baseCert(leafKeys.publicKey, names[0] ?? 'localhost', notBefore, notAfter);
      leaf.setIssuer(ca.subject.attributes);
      leaf.setExtensions([
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames: names.map((n) => (/^\d+\.\d+\.\d+\.\d+$/.test(n) ? { type: 7, ip: n } : { type: 2, value: n })) },
      ]);
      leaf.sign(caKey, forge.md.sha256.create());
      return { cert: forge.pki.certificateToPem(leaf), key: leafKeys.privateKey };
    },
    issueSmime(email, opts = {}) {
      const leafKeys = keyPair(opts.bits ?? 2048);
      const now = Date.now();
      const [notBefore, notAfter] = opts.expired ? [new Date(now - 10 * 86_400_000), new Date(now - 86_400_000)] : [new Date(now - 86_400_000), new Date(now + 30 * 86_400_000)];
      const leaf = baseCert(leafKeys.publicKey, email, notBefore, notAfter);
      leaf.setIssuer(ca.subject.attributes);
      leaf.setExtensions([
        { name: 'basicConstraints', cA: false },
        opts.keyUsage === 'signOnly' ? { name: 'keyUsage', digitalSignature: true } : { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', emailProtection: true },
        { name: 'subjectAltName', altNames: [{ type: 1, value: email }] },
      ]);
      leaf.sign(caKey, forge.md.sha256.create());
      return { cert: forge.pki.certificateToPem(leaf), key: leafKeys.privateKey };
    },
  };
}

/** A certificate signed by itself, trusted by nobody. */
export function selfSigned(name: string): Issued {
  return createTestCa(name).issue([name]);
}
