import { certLabel, issuerProblem, weakSignatureProblem } from './ca-link.js';
import { readCertificate, type Certificate } from './x509.js';

/** Whether a CRL revokes a certificate its issuer issued: the reason, or undefined (see crl.ts). */
export type RevocationCheck = (cert: Certificate, issuer: Certificate) => string | undefined;

/** More intermediates than this between a certificate and its anchor is not a real S/MIME chain. */
const MAX_INTERMEDIATES = 6;

/**
 * What recipients' S/MIME certificates must chain to: the anchors of keys.smimeTrust,
 * the intermediates of keys.smimeIntermediates (more come with each certificate: the file
 * it was imported from, the signature it was harvested from), and the CRL check.
 * Certificates of any key type are read (an EC root issues RSA certificates too); one
 * that cannot be read is left out and named in `skipped`, for the start-up log.
 */
export class SmimeTrust {
  private constructor(
    readonly anchors: Certificate[],
    readonly intermediates: Certificate[],
    readonly skipped: string[],
    readonly revoked?: RevocationCheck | undefined,
    /** Moves when the CRLs in force change (what was decided before may no longer hold). */
    readonly revision: () => number = () => 0,
  ) {}

  static fromPem(anchors: string[], intermediates: string[] = []): SmimeTrust {
    const skipped: string[] = [];
    const read = (pems: string[], key: string) =>
      pems.flatMap((pem, i) => {
        try {
          return [readCertificate(pem)];
        } catch (err) {
          skipped.push(`${key}: certificate ${i + 1} cannot be read (${(err as Error).message}); it is left out`);
          return [];
        }
      });
    return new SmimeTrust(read(anchors, 'keys.smimeTrust'), read(intermediates, 'keys.smimeIntermediates'), skipped);
  }

  /** The same anchors with a revocation check (the CRLs are verified against these CAs). */
  withRevocation(revoked: RevocationCheck, revision: () => number = () => 0): SmimeTrust {
    return new SmimeTrust(this.anchors, this.intermediates, this.skipped, revoked, revision);
  }

  /** Every CA certificate given in the config: who may sign a CRL. */
  get issuers(): Certificate[] {
    return [...this.anchors, ...this.intermediates];
  }

  /**
   * The path from `cert` to an anchor through the intermediates given (and the configured
   * ones): the intermediates used, leaf side first. Throws with the reason when there is
   * none — "not trusted: ..." for a missing or failing link, or the problem of a
   * certificate in the path (expired, signed with SHA-1, revoked, not a CA).
   */
  chain(cert: Certificate, intermediates: Certificate[], now: Date): Certificate[] {
    if (!this.anchors.length) throw new Error('not trusted: keys.smimeTrust holds no CA certificate');
    const anchors = new Set(this.anchors.map((a) => a.fingerprint));
    const pool = [...intermediates, ...this.intermediates].filter((c) => !anchors.has(c.fingerprint));
    let reason: string | undefined;
    const walk = (path: Certificate[]): Certificate[] | undefined => {
      const last = path.at(-1) as Certificate;
      for (const anchor of this.anchors) {
        if (!names(anchor, last)) continue;
        const problem = this.linkProblem(last, anchor, path.length - 1, now, true);
        if (!problem) return path.slice(1);
        reason ??= problem;
      }
      if (path.length > MAX_INTERMEDIATES) {
        reason ??= `not trusted: more than ${MAX_INTERMEDIATES} intermediate certificates`;
        return undefined;
      }
      for (const ca of pool) {
        if (path.some((p) => p.fingerprint === ca.fingerprint) || !names(ca, last)) continue;
        const problem = this.linkProblem(last, ca, path.length - 1, now, false);
        if (problem) {
          reason ??= problem;
          continue;
        }
        const found = walk([...path, ca]);
        if (found) return found;
      }
      reason ??= `not trusted: no certificate of keys.smimeTrust issued ${certLabel(last, path.length - 1)} (issuer ${last.issuer}), nor an intermediate given with it`;
      return undefined;
    };
    const found = walk([cert]);
    if (!found) throw new Error(reason);
    return found;
  }

  /** Why `issuer` cannot vouch for `cert` (at `depth` below the leaf), or undefined. */
  private linkProblem(cert: Certificate, issuer: Certificate, depth: number, now: Date, anchor: boolean): string | undefined {
    const weak = weakSignatureProblem(cert, depth);
    if (weak) return weak;
    const problem = issuerProblem(cert, issuer, depth, now, anchor);
    if (problem) return `not trusted: ${problem}`;
    const revoked = this.revoked?.(cert, issuer);
    return revoked ? (depth === 0 ? revoked : `${certLabel(cert, depth)}: ${revoked}`) : undefined;
  }
}

/** Whether `issuer`'s subject is `cert`'s issuer (cheap: the signature is checked after). */
function names(issuer: Certificate, cert: Certificate): boolean {
  return cert.issuerName === issuer.subjectName || cert.x509.checkIssued(issuer.x509);
}
