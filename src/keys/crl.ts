import { verify as verifySignature } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import forge from 'node-forge';
import type { RevocationCheck } from './smime-trust.js';
import { asn1Date, derHex, nameText, type Certificate } from './x509.js';

const { asn1 } = forge;

interface Crl {
  /** DER of the issuer Name (hex), as Certificate.issuerName. */
  issuerName: string;
  issuer: string;
  nextUpdate?: Date | undefined;
  /** Serial (hex, lower case) → revocation date. */
  revoked: Map<string, Date>;
}

/** CRL signature algorithms → the digest Node verifies them with (RSA PKCS#1 v1.5, ECDSA, Ed25519). */
const DIGESTS: Record<string, string | null> = {
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.3.101.112': null,
};

/**
 * Parses an X.509 CRL (RFC 5280 §5; PEM or DER) and checks its signature against the
 * configured CA that issued it (keys.smimeTrust or keys.smimeIntermediates; RSA, EC or
 * Ed25519). node-forge reads certificates but not CRLs, so the few fields needed are read
 * from the ASN.1 here. Throws when the CRL cannot be trusted.
 */
export function parseCrl(data: Buffer, issuers: Certificate[]): Crl {
  const text = data.toString('latin1');
  const der = text.includes('-----BEGIN X509 CRL-----') ? forge.pem.decode(text)[0]!.body : text;
  // The signature BIT STRING is kept as bytes (an ECDSA signature would otherwise be decoded as ASN.1).
  const list = (asn1.fromDer as unknown as (bytes: string, options: { decodeBitStrings: boolean }) => forge.asn1.Asn1)(der, { decodeBitStrings: false });
  const [tbs, sigAlg, sigValue] = list.value as forge.asn1.Asn1[];
  if (!tbs || !sigAlg || !sigValue) throw new Error('not a CRL');
  const fields = [...(tbs.value as forge.asn1.Asn1[])];
  if (fields[0]?.type === asn1.Type.INTEGER) fields.shift(); // version
  const [, issuerNode, , maybeNext, ...rest] = fields;
  if (!issuerNode) throw new Error('CRL without an issuer');
  const issuerName = derHex(issuerNode);
  const issuer = nameText(issuerNode);
  const candidates = issuers.filter((c) => c.subjectName === issuerName);
  if (!candidates.length) throw new Error(`CRL of ${issuer}: its issuer is not in keys.smimeTrust or keys.smimeIntermediates`);
  const oid = asn1.derToOid((sigAlg.value as forge.asn1.Asn1[])[0]!.value as string);
  const digest = DIGESTS[oid];
  if (digest === undefined) throw new Error(`CRL of ${issuer}: unsupported signature algorithm ${oid}`);
  const signed = Buffer.from(asn1.toDer(tbs).getBytes(), 'binary');
  // The BIT STRING value starts with the count of unused bits (0).
  const signature = Buffer.from((sigValue.value as string).slice(1), 'binary');
  if (!candidates.some((ca) => verifies(digest, signed, ca, signature))) throw new Error(`CRL of ${issuer}: bad signature`);
  const isTime = (n: forge.asn1.Asn1 | undefined) => n?.type === asn1.Type.UTCTIME || n?.type === asn1.Type.GENERALIZEDTIME;
  const nextUpdate = isTime(maybeNext) ? asn1Date(maybeNext as forge.asn1.Asn1) : undefined;
  const entries = [...(isTime(maybeNext) ? [] : [maybeNext]), ...rest].find((n) => n?.type === asn1.Type.SEQUENCE);
  const revoked = new Map<string, Date>();
  for (const entry of (entries?.value as forge.asn1.Asn1[] | undefined) ?? []) {
    const [serial, date] = entry.value as forge.asn1.Asn1[];
    if (serial && date) revoked.set(forge.util.bytesToHex(serial.value as string).toLowerCase(), asn1Date(date));
  }
  return { issuerName, issuer, nextUpdate, revoked };
}

/** A signature made with another key (or of another type) is simply not this CA's. */
function verifies(digest: string | null, data: Buffer, ca: Certificate, signature: Buffer): boolean {
  try {
    return verifySignature(digest, data, ca.publicKey, signature);
  } catch {
    return false;
  }
}

/**
 * The configured CRL files. They are read at start (an untrusted or unreadable CRL is a
 * start-up error) and again when a file changes, checked at most once a minute, so a
 * cron job that refreshes them needs no restart. A certificate whose issuer has a CRL
 * is refused when listed, and when that CRL is past its next update (fail closed).
 *
 * A changed file that cannot be used (unreadable, removed, a bad signature) leaves the
 * CRLs read before in force, and `onReloadFailed` is told, once per distinct problem:
 * the old set fails closed when it goes out of date, so an operator must learn why the
 * refresh did not take before certificates start being refused.
 *
 * `now` is the clock (tests move it instead of waiting a minute).
 */
export class CrlSet {
  private crls: Crl[] = [];
  private versions = new Map<string, number>();
  private checkedAt = 0;
  private lastFailure: string | undefined;
  private changes = 0;

  constructor(
    private readonly files: string[],
    private readonly issuers: Certificate[],
    private readonly onReloadFailed: (reason: string) => void = () => undefined,
    private readonly now: () => number = () => Date.now(),
  ) {
    this.reload(true);
  }

  /**
   * Moves when the CRLs in force change: what was checked against the old ones is checked
   * again. Reading it looks at the files first (at most once a minute, like check): what
   * was decided before is kept by comparing this number, so it must see a refreshed file
   * even when nothing is being checked — else a revoked certificate stays in use for as
   * long as that decision is kept.
   */
  get generation(): number {
    this.refreshWhenDue();
    return this.changes;
  }

  readonly check: RevocationCheck = (cert, issuer) => {
    if (!this.files.length) return undefined;
    this.refreshWhenDue();
    const crl = this.crls.find((c) => c.issuerName === cert.issuerName && c.issuerName === issuer.subjectName);
    if (!crl) return undefined;
    const when = crl.revoked.get(cert.serial);
    if (when) return `revoked on ${when.toISOString()} (CRL of ${crl.issuer})`;
    if (crl.nextUpdate && crl.nextUpdate.getTime() < this.now()) return `the CRL of ${crl.issuer} is out of date (next update was due ${crl.nextUpdate.toISOString()})`;
    return undefined;
  };

  private refreshWhenDue(): void {
    if (this.files.length && this.now() - this.checkedAt > 60_000) this.reload(false);
  }

  private reload(strict: boolean): void {
    this.checkedAt = this.now();
    const changed = this.files.some((f) => statSync(f, { throwIfNoEntry: false })?.mtimeMs !== this.versions.get(f));
    // At start every file is read: a missing one (no mtime, as nothing read before) looked
    // unchanged, and the gateway started with no revocation check for its CA at all.
    if (!changed && !strict) return;
    try {
      const versions = new Map(this.files.map((f) => [f, statSync(f).mtimeMs]));
      this.crls = this.files.map((f) => readCrlFile(f, this.issuers));
      this.versions = versions;
      this.changes++;
      this.lastFailure = undefined;
    } catch (err) {
      const reason = `keys.smimeCrls: ${(err as Error).message}`;
      // At start a bad CRL stops the gateway; later, the last good set stays in force.
      if (strict) throw new Error(reason);
      if (reason !== this.lastFailure) this.onReloadFailed(reason);
      this.lastFailure = reason;
    }
  }
}

/** One CRL file, its errors naming the file (statSync's and readFileSync's already do). */
function readCrlFile(file: string, issuers: Certificate[]): Crl {
  const data = readFileSync(file);
  try {
    return parseCrl(data, issuers);
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
}
