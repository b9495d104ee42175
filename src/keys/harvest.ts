import forge from 'node-forge';
import { comparableAddress } from '../common/domain-name.js';
import { EVENTS, type Logger } from '../events/logger.js';
import { inspectSmimeCert, readable } from './smime-cert.js';
import type { SmimeTrust } from './smime-trust.js';
import type { KeyStore } from './store.js';
import type { Certificate } from './x509.js';

const { asn1 } = forge;
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
 * The certificates a CMS SignedData carries (RFC 5652 §5.1: ContentInfo → [0] SignedData
 * → [0] IMPLICIT certificates), read from the ASN.1 rather than by node-forge's PKCS#7
 * reader, which gives up on the whole signature at the first non-RSA certificate.
 */
export function signedDataCertificates(der: string): Certificate[] {
  const [, wrapped] = asn1.fromDer(der).value as forge.asn1.Asn1[];
  const signed = (wrapped?.value as forge.asn1.Asn1[] | undefined)?.[0];
  const set = (signed?.value as forge.asn1.Asn1[] | undefined)?.find((n) => n.tagClass === asn1.Class.CONTEXT_SPECIFIC && n.type === 0);
  return ((set?.value as forge.asn1.Asn1[] | undefined) ?? []).filter((n) => n.type === asn1.Type.SEQUENCE).flatMap((n) => readable(forge.pem.encode({ type: 'CERTIFICATE', body: asn1.toDer(n).getBytes() })));
}

/**
 * Certificates from S/MIME-signed messages passing through (keys.harvest). A
 * certificate is stored — source "harvest", for the From address — only when it passes
 * the same checks as an imported one (trust store, validity, key usage, CRLs), with the
 * intermediates the signature carries, and names that address; one already stored is
 * left alone. The signature itself is not verified: what counts is that the certificate
 * is the CA's for that address.
 */
export class Harvester {
  constructor(
    private readonly store: KeyStore,
    private readonly trust: SmimeTrust,
    private readonly log: Logger,
  ) {}

  async harvest(raw: Buffer, sender: string, queueId: string): Promise<void> {
    // Compared with what certificates name in the same form (x509.ts).
    const from = comparableAddress(sender);
    let certs: Certificate[];
    try {
      const der = signedData(raw);
      if (!der) return;
      certs = signedDataCertificates(der);
    } catch {
      return; // not a signature that can be read: nothing to harvest
    }
    const cas = certs.filter((c) => c.isCa);
    const known = new Set((await this.store.forAddress('smime', from)).map((r) => r.id));
    for (const cert of certs.filter((c) => !c.isCa && c.emails.includes(from))) {
      const info = inspectSmimeCert(cert.pem, this.trust, new Date(), cas);
      const id = `smime:${info.fingerprint}`;
      if (info.unusable || known.has(id)) continue;
      await this.store.put({ id, kind: 'smime', addresses: [from], source: 'harvest', addedAt: Date.now(), material: [info.pem, ...info.chain].join('') });
      this.log.info({ event: EVENTS.keyHarvested, queueId, address: from, keyId: info.fingerprint, subject: info.subject }, 'S/MIME certificate harvested');
    }
  }
}
