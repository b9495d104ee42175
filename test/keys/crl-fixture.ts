import forge from 'node-forge';
import type { TestCa } from '../helpers/pki.js';

const { asn1 } = forge;
const { Class, Type } = asn1;

/**
 * A CRL (RFC 5280 §5.1) issued by a test CA, listing the given serial numbers, as PEM.
 * node-forge cannot write CRLs, so it is put together from ASN.1 and signed with the
 * CA's key (sha256WithRSAEncryption).
 */
export function makeCrl(ca: TestCa, revokedSerials: string[], opts: { nextUpdate?: Date } = {}): string {
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const time = (d: Date) => asn1.create(Class.UNIVERSAL, Type.UTCTIME, false, asn1.dateToUtcTime(d));
  const algorithm = asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, [
    asn1.create(Class.UNIVERSAL, Type.OID, false, asn1.oidToDer(forge.pki.oids.sha256WithRSAEncryption as string).getBytes()),
    asn1.create(Class.UNIVERSAL, Type.NULL, false, ''),
  ]);
  const revokedDate = new Date(Date.now() - 3_600_000);
  const entries = revokedSerials.map((serial) =>
    asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, [asn1.create(Class.UNIVERSAL, Type.INTEGER, false, forge.util.hexToBytes(serial)), time(revokedDate)]),
  );
  const tbs = asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, [
    asn1.create(Class.UNIVERSAL, Type.INTEGER, false, asn1.integerToDer(1).getBytes()),
    algorithm,
    forge.pki.distinguishedNameToAsn1(caCert.subject),
    time(new Date(Date.now() - 86_400_000)),
    time(opts.nextUpdate ?? new Date(Date.now() + 7 * 86_400_000)),
    ...(entries.length ? [asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, entries)] : []),
  ]);
  const md = forge.md.sha256.create().update(asn1.toDer(tbs).getBytes());
  const signature = (forge.pki.privateKeyFromPem(ca.key) as forge.pki.rsa.PrivateKey).sign(md);
  const crl = asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, [tbs, algorithm, asn1.create(Class.UNIVERSAL, Type.BITSTRING, false, `\u0000${signature}`)]);
  return forge.pem.encode({ type: 'X509 CRL', body: asn1.toDer(crl).getBytes() });
}
