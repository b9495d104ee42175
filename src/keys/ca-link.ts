import { extension, issuedBy, WEAK_SIGNATURES, type Certificate } from './x509.js';

/**
 * The checks on one link of a certificate path: `issuer` vouching for `cert`, which sits
 * `depth` certificates below the leaf (0: the leaf itself). Shared by the paths of
 * recipients' certificates to keys.smimeTrust (smime-trust.ts, which adds CRLs) and the
 * chain an organisation's signing certificate is sent with (identities.ts).
 */

/** "the certificate" for the leaf, else the intermediate by name: how reasons name it. */
export function certLabel(cert: Certificate, depth: number): string {
  return depth === 0 ? 'the certificate' : `intermediate "${cert.subject}"`;
}

/** A signature made with a digest whose collisions are practical (SHA-1, MD5): refused. */
export function weakSignatureProblem(cert: Certificate, depth: number): string | undefined {
  const weak = WEAK_SIGNATURES[cert.signatureOid];
  return weak ? `${certLabel(cert, depth)} is signed with ${weak}: refused (collisions can forge such signatures)` : undefined;
}

/**
 * Why `issuer` did not or may not issue `cert`: its signature does not verify, the issuer
 * is not current, not a CA, may not sign certificates, or its path length forbids this
 * depth. An anchor without basic constraints (an X.509 v1 root) is allowed.
 */
export function issuerProblem(cert: Certificate, issuer: Certificate, depth: number, now: Date, anchor: boolean): string | undefined {
  const who = anchor ? `trust anchor "${issuer.subject}"` : `intermediate "${issuer.subject}"`;
  if (!issuedBy(cert, issuer)) return `the signature on ${certLabel(cert, depth)} does not verify with ${who}`;
  if (now < issuer.notBefore) return `${who} is not valid yet`;
  if (now > issuer.notAfter) return `${who} expired on ${issuer.notAfter.toISOString()}`;
  const constrained = extension(issuer, 'basicConstraints') !== undefined;
  if (!issuer.isCa && (!anchor || constrained)) return `${who} is not a CA certificate (basic constraints)`;
  const ku = extension<{ keyCertSign?: boolean }>(issuer, 'keyUsage');
  if (ku && !ku.keyCertSign) return `${who} may not sign certificates (key usage)`;
  if (issuer.pathLen !== undefined && depth > issuer.pathLen) return `${who} allows ${issuer.pathLen} intermediate(s) below it`;
  return undefined;
}
