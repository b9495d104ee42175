import { createPrivateKey, sign } from 'node:crypto';
import forge from 'node-forge';

const { asn1 } = forge;
const { Class, Type } = asn1;

/** Signature algorithms by the CA's key type: sha256WithRSAEncryption or ecdsa-with-SHA256. */
const ALGORITHMS: Record<string, { oid: string; nullParams: boolean }> = {
  rsa: { oid: '1.2.840.113549.1.1.11', nullParams: true },
  ec: { oid: '1.2.840.10045.4.3.2', nullParams: false },
};

/**
 * A CRL (RFC 5280 §5.1) issued by a test CA (RSA or EC), listing the given serial numbers,
 * as PEM. node-forge cannot write CRLs, so it is put together from ASN.1 and signed by
 * Node with the CA's key.
 */
export function makeCrl(ca: { cert: string; key: string }, revokedSerials: string[], opts: { nextUpdate?: Date } = {}): string {
  const caTbs = (asn1.fromDer(forge.pem.decode(ca.cert)[0]!.body).value as forge.asn1.Asn1[])[0]!;
  const caSubject = (caTbs.value as forge.asn1.Asn1[])[5]!;
  const key = createPrivateKey(ca.key);
  const alg = ALGORITHMS[key.asymmetricKeyType ?? '']!;
  const time = (d: Date) => asn1.create(Class.UNIVERSAL, Type.UTCTIME, false, asn1.dateToUtcTime(d));
  const algorithm = asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, [
    asn1.create(Class.UNIVERSAL, Type.OID, false, asn1.oidToDer(alg.oid).getBytes()),
    ...(alg.nullParams ? [asn1.create(Class.UNIVERSAL, Type.NULL, false, '')] : []),
  ]);
  const revokedDate = new Date(Date.now() - 3_600_000);
  const entries = revokedSerials.map((serial) =>
    asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, [asn1.create(Class.UNIVERSAL, Type.INTEGER, false, forge.util.hexToBytes(serial)), time(revokedDate)]),
  );
  const tbs = asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, [
    asn1.create(Class.UNIVERSAL, Type.INTEGER, false, asn1.integerToDer(1).getBytes()),
    algorithm,
    caSubject,
    time(new Date(Date.now() - 86_400_000)),
    time(opts.nextUpdate ?? new Date(Date.now() + 7 * 86_400_000)),
    ...(entries.length ? [asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, entries)] : []),
  ]);
  const signature = sign('sha256', Buffer.from(asn1.toDer(tbs).getBytes(), 'binary'), key).toString('binary');
  const crl = asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, [tbs, algorithm, asn1.create(Class.UNIVERSAL, Type.BITSTRING, false, `\u0000${signature}`)]);
  return forge.pem.encode({ type: 'X509 CRL', body: asn1.toDer(crl).getBytes() });
}
