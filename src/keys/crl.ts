import { readFileSync, statSync } from 'node:fs';
import forge from 'node-forge';
import type { RevocationCheck } from './smime-cert.js';

const { asn1 } = forge;
/** In node-forge, missing from its type definitions. */
const rdnAttributes = (forge.pki as unknown as { RDNAttributesAsArray(name: forge.asn1.Asn1): { name?: string; shortName?: string; value: unknown }[] }).RDNAttributesAsArray;

interface Crl {
  /** SHA-1 of the issuer Name (DER), as node-forge keeps `cert.issuer.hash`. */
  issuerHash: string;
  issuer: string;
  nextUpdate?: Date | undefined;
  /** Serial (hex, lower case) → revocation date. */
  revoked: Map<string, Date>;
}

const DIGESTS: Record<string, () => forge.md.MessageDigest> = {
  sha256WithRSAEncryption: () => forge.md.sha256.create(),
  sha384WithRSAEncryption: () => forge.md.sha384.create(),
  sha512WithRSAEncryption: () => forge.md.sha512.create(),
};

/**
 * Parses an X.509 CRL (RFC 5280 §5; PEM or DER) and checks its signature against the
 * trusted CA that issued it. node-forge reads certificates but not CRLs, so the few
 * fields needed are read from the ASN.1 here. Throws when the CRL cannot be trusted.
 */
export function parseCrl(data: Buffer, trust: forge.pki.Certificate[]): Crl {
  const text = data.toString('latin1');
  const der = text.includes('-----BEGIN X509 CRL-----') ? forge.pem.decode(text)[0]!.body : text;
  const list = asn1.fromDer(der);
  const [tbs, sigAlg, sigValue] = list.value as forge.asn1.Asn1[];
  if (!tbs || !sigAlg || !sigValue) throw new Error('not a CRL');
  const fields = [...(tbs.value as forge.asn1.Asn1[])];
  if (fields[0]?.type === asn1.Type.INTEGER) fields.shift(); // version
  const [, issuerName, , maybeNext, ...rest] = fields;
  if (!issuerName) throw new Error('CRL without an issuer');
  const issuerHash = forge.md.sha1.create().update(asn1.toDer(issuerName).getBytes()).digest().toHex();
  const issuer = rdnAttributes(issuerName).map((a) => `${a.shortName ?? a.name}=${String(a.value)}`).join(', ');
  const ca = trust.find((c) => c.subject.hash === issuerHash);
  if (!ca) throw new Error(`CRL of ${issuer}: its issuer is not in keys.smimeTrust`);
  const oid = asn1.derToOid((sigAlg.value as forge.asn1.Asn1[])[0]!.value as string);
  const digest = DIGESTS[forge.pki.oids[oid] as string];
  if (!digest) throw new Error(`CRL of ${issuer}: unsupported signature algorithm ${oid}`);
  const md = digest().update(asn1.toDer(tbs).getBytes());
  // The BIT STRING value starts with the count of unused bits (0).
  const signature = (sigValue.value as string).slice(1);
  if (!verifies(ca, md.digest().bytes(), signature)) throw new Error(`CRL of ${issuer}: bad signature`);
  const isTime = (n: forge.asn1.Asn1 | undefined) => n?.type === asn1.Type.UTCTIME || n?.type === asn1.Type.GENERALIZEDTIME;
  const nextUpdate = isTime(maybeNext) ? toDate(maybeNext as forge.asn1.Asn1) : undefined;
  const entries = [...(isTime(maybeNext) ? [] : [maybeNext]), ...rest].find((n) => n?.type === asn1.Type.SEQUENCE);
  const revoked = new Map<string, Date>();
  for (const entry of (entries?.value as forge.asn1.Asn1[] | undefined) ?? []) {
    const [serial, date] = entry.value as forge.asn1.Asn1[];
    if (serial && date) revoked.set(forge.util.bytesToHex(serial.value as string).toLowerCase(), toDate(date));
  }
  return { issuerHash, issuer, nextUpdate, revoked };
}

/** node-forge throws, rather than answering false, for a signature made with another key. */
function verifies(ca: forge.pki.Certificate, digest: string, signature: string): boolean {
  try {
    return (ca.publicKey as forge.pki.rsa.PublicKey).verify(digest, signature);
  } catch {
    return false;
  }
}

function toDate(node: forge.asn1.Asn1): Date {
  return node.type === asn1.Type.UTCTIME ? asn1.utcTimeToDate(node.value as string) : asn1.generalizedTimeToDate(node.value as string);
}

/**
 * The configured CRL files. They are read at start (an untrusted or unreadable CRL is a
 * start-up error) and again when a file changes, checked at most once a minute, so a
 * cron job that refreshes them needs no restart. A certificate whose issuer has a CRL
 * is refused when listed, and when that CRL is past its next update (fail closed).
 */
export class CrlSet {
  private crls: Crl[] = [];
  private versions = new Map<string, number>();
  private checkedAt = 0;

  constructor(
    private readonly files: string[],
    private readonly trustPem: string[],
  ) {
    this.reload(true);
  }

  readonly check: RevocationCheck = (cert) => {
    if (!this.files.length) return undefined;
    if (Date.now() - this.checkedAt > 60_000) this.reload(false);
    const crl = this.crls.find((c) => c.issuerHash === cert.issuer.hash);
    if (!crl) return undefined;
    const when = crl.revoked.get(cert.serialNumber.toLowerCase());
    if (when) return `revoked on ${when.toISOString()} (CRL of ${crl.issuer})`;
    if (crl.nextUpdate && crl.nextUpdate.getTime() < Date.now()) return `the CRL of ${crl.issuer} is out of date (next update was due ${crl.nextUpdate.toISOString()})`;
    return undefined;
  };

  private reload(strict: boolean): void {
    this.checkedAt = Date.now();
    const changed = this.files.some((f) => statSync(f, { throwIfNoEntry: false })?.mtimeMs !== this.versions.get(f));
    if (!changed) return;
    try {
      const trust = this.trustPem.map((p) => forge.pki.certificateFromPem(p));
      const versions = new Map(this.files.map((f) => [f, statSync(f).mtimeMs]));
      this.crls = this.files.map((f) => parseCrl(readFileSync(f), trust));
      this.versions = versions;
    } catch (err) {
      // At start a bad CRL stops the gateway; later, the last good set stays in force.
      if (strict) throw new Error(`keys.smimeCrls: ${(err as Error).message}`);
    }
  }
}
