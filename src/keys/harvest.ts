import forge from 'node-forge';
import { EVENTS, type Logger } from '../events/logger.js';
import { inspectSmimeCert, type RevocationCheck } from './smime-cert.js';
import type { KeyStore } from './store.js';

const SIGNED = /^content-type:[ \t]*(multipart\/signed[^]*?protocol="?application\/(x-)?pkcs7-signature|application\/(x-)?pkcs7-mime[^]*?smime-type="?signed-data)/im;

/** Whether a header block announces an S/MIME signature (detached or opaque). */
export function isSmimeSigned(headerBlock: string): boolean {
  return SIGNED.test(headerBlock.replace(/\r\n[ \t]+/g, ' '));
}

/** The PKCS#7 signed-data of a message: the application/pkcs7-signature part, or the whole body. */
function signedData(raw: Buffer): string | undefined {
  const text = raw.toString('latin1');
  const part = /content-type:[ \t]*application\/(?:x-)?pkcs7-(?:signature|mime)[^]*?\r\n\r\n([A-Za-z0-9+/=\r\n]+)/i.exec(text);
  return part?.[1] ? forge.util.decode64(part[1].replace(/\s+/g, '')) : undefined;
}

/**
 * Certificates from S/MIME-signed messages passing through (keys.harvest). A
 * certificate is stored — source "harvest", for the From address — only when it passes
 * the same checks as an imported one (trust store, validity, key usage, CRLs) and names
 * that address; one already stored is left alone. The signature itself is not verified
 * (node-forge cannot): what counts is that the certificate is the CA's for that address.
 */
export class Harvester {
  constructor(
    private readonly store: KeyStore,
    private readonly trust: string[],
    private readonly log: Logger,
    private readonly revoked?: RevocationCheck,
  ) {}

  async harvest(raw: Buffer, from: string, queueId: string): Promise<void> {
    let certs: forge.pki.Certificate[];
    try {
      const der = signedData(raw);
      if (!der) return;
      certs = (forge.pkcs7.messageFromAsn1(forge.asn1.fromDer(der)) as forge.pkcs7.PkcsSignedData).certificates;
    } catch {
      return; // not a signature node-forge can read: nothing to harvest
    }
    const known = new Set((await this.store.forAddress('smime', from)).map((r) => r.id));
    for (const cert of certs) {
      const info = inspectSmimeCert(forge.pki.certificateToPem(cert), this.trust, new Date(), this.revoked);
      const id = `smime:${info.fingerprint}`;
      if (info.unusable || !info.emails.includes(from) || known.has(id)) continue;
      await this.store.put({ id, kind: 'smime', addresses: [from], source: 'harvest', addedAt: Date.now(), material: info.pem });
      this.log.info({ event: EVENTS.keyHarvested, queueId, address: from, keyId: info.fingerprint, subject: info.subject }, 'S/MIME certificate harvested');
    }
  }
}
