import { generateKeyPair as generateKeyPairCb, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { isPemText } from '../common/pem-or-file.js';
import { readCertificatePair, type CertificateSettings } from './certificate-pair.js';

const generateKeyPair = promisify(generateKeyPairCb);

export interface CertificatePair {
  cert: string;
  key: string;
  /** Where they came from, for the start-up log. */
  source: 'configured' | 'dev-existing' | 'dev-created';
  certPath: string;
}

const SMTP_TLS: CertificateSettings = { cert: 'smtp.tls.cert', key: 'smtp.tls.key' };

/**
 * The configured certificate, or a self-signed development certificate made once under
 * <dataDir>/tls so `npm start` works on a fresh machine. Production configs set
 * smtp.tls.cert/key; the start-up log warns when the dev certificate is in use.
 */
export async function loadOrCreateCertificate(dataDir: string, hostname: string, cert?: string, key?: string, settings = SMTP_TLS): Promise<CertificatePair> {
  if (cert && key) {
    // certPath goes into the start-up log: PEM text given inline is not a path to show.
    return { ...(await readCertificatePair(settings, cert, key)), source: 'configured', certPath: isPemText(cert) ? '(inline)' : cert };
  }
  const dir = join(dataDir, 'tls');
  const certPath = join(dir, 'dev-cert.pem');
  const keyPath = join(dir, 'dev-key.pem');
  try {
    return { cert: await readFile(certPath, 'utf8'), key: await readFile(keyPath, 'utf8'), source: 'dev-existing', certPath };
  } catch {
    // first start: make one below
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const made = await makeSelfSigned(hostname);
  await writeFile(`${keyPath}.tmp`, made.key, { mode: 0o600 });
  await writeFile(`${certPath}.tmp`, made.cert);
  await rename(`${keyPath}.tmp`, keyPath);
  await rename(`${certPath}.tmp`, certPath);
  return { ...made, source: 'dev-created', certPath };
}

export async function makeSelfSigned(hostname: string, days = 825): Promise<{ cert: string; key: string }> {
  const { privateKey, publicKey } = await generateKeyPair('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey);
  cert.serialNumber = '01' + randomBytes(15).toString('hex');
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + days * 86_400_000);
  const subject = [{ name: 'commonName', value: hostname }, { name: 'organizationName', value: 'Postern development certificate' }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: [{ type: 2, value: hostname }, { type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(privateKey), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: privateKey };
}
