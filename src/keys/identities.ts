import { createPrivateKey, type KeyObject } from 'node:crypto';
import { decryptKey, readPrivateKey, type PrivateKey } from 'openpgp';
import { readPemOrFile } from '../common/pem-or-file.js';
import type { PosternConfig } from '../config/schema.js';
import { mostSpecificMatch } from '../ingress/authorize.js';
import { pemCertificates } from './material.js';
import { issuerProblem, weakSignatureProblem } from './ca-link.js';
import { extension, issuedBy, keyDescription, readCertificate, WEAK_SIGNATURES, type Certificate } from './x509.js';

/** An organisation's S/MIME signing identity: its key, certificate and the intermediates sent along. */
export interface SmimeSigner {
  key: KeyObject;
  cert: Certificate;
  /** Intermediates up to (not including) the root, sent with each signature. */
  chain: Certificate[];
}

export interface OrgIdentity {
  /** Decrypted OpenPGP signing key, and when it stops being able to sign (ms). */
  pgp?: PrivateKey | undefined;
  pgpExpiresAt?: number | undefined;
  smime?: SmimeSigner | undefined;
}

export type IdentityFor = (senderDomain: string) => OrgIdentity | undefined;

/** A configured key or certificate that expires: which setting, and when. */
export interface Expiry {
  setting: string;
  expiresAt: number;
}

/**
 * Organisation signing identities per sender domain (exact, else the most specific
 * *.parent), loaded once at start-up. Private keys may be passphrase-protected at rest;
 * they are decrypted here. A key that does not open, cannot sign, has expired or does not
 * match its certificate, and a certificate that is not current, not RSA, signed with
 * SHA-1, or not for signing mail, stops the start with the setting named. `expiries` lists
 * when each expires, for the warnings ahead of it (protect/expiry-watch.ts).
 */
export async function loadIdentities(config: PosternConfig, now = new Date()): Promise<{ identityFor: IdentityFor; expiries: Expiry[] }> {
  const loaded = new Map<string, OrgIdentity>();
  const expiries: Expiry[] = [];
  for (const [domain, id] of Object.entries(config.identities)) {
    const key = `identities.${domain}`;
    try {
      const identity: OrgIdentity = {};
      if (id.pgpKey) {
        Object.assign(identity, await openPgpKey(await readSetting('pgpKey', id.pgpKey), id.pgpPassphrase, now));
        if (identity.pgpExpiresAt) expiries.push({ setting: `${key}.pgpKey`, expiresAt: identity.pgpExpiresAt });
      }
      if (id.smimeCert && id.smimeKey) {
        const smime = openSmime(await readSetting('smimeCert', id.smimeCert), await readSetting('smimeKey', id.smimeKey), id.smimeKeyPassphrase, now);
        identity.smime = smime;
        for (const c of [smime.cert, ...smime.chain]) expiries.push({ setting: c === smime.cert ? `${key}.smimeCert` : `${key}.smimeCert (intermediate ${c.subject})`, expiresAt: c.notAfter.getTime() });
      }
      loaded.set(domain, identity);
    } catch (err) {
      throw new Error(`${key}.${(err as Error).message}`);
    }
  }
  const identityFor: IdentityFor = (senderDomain) => {
    const match = mostSpecificMatch([...loaded.keys()], senderDomain.toLowerCase());
    return match ? loaded.get(match) : undefined;
  };
  return { identityFor, expiries };
}

/** A setting's PEM or armored text, inline (e.g. through ${file:...}) or from its file; a problem names the setting, never the key. */
export const readSetting = readPemOrFile;

/** Errors start with the setting they concern ("pgpKey: ..."): the caller puts identities.<domain>. in front. */
async function openPgpKey(armored: string, passphrase: string | undefined, now: Date): Promise<{ pgp: PrivateKey; pgpExpiresAt?: number | undefined }> {
  let open: PrivateKey;
  let signing: Awaited<ReturnType<PrivateKey['getSigningKey']>>;
  try {
    const key = await readPrivateKey({ armoredKey: armored });
    open = key.isDecrypted() ? key : await decryptKey({ privateKey: key, passphrase: passphrase ?? '' });
    // Throws for a revoked or expired key, or one without a signing-capable (sub)key.
    signing = await open.getSigningKey(undefined, now);
  } catch (err) {
    throw new Error(`pgpKey: ${(err as Error).message}`);
  }
  const expiry = [await open.getExpirationTime().catch(() => null), await signing.getExpirationTime().catch(() => null)].filter((d): d is Date => d instanceof Date).map((d) => d.getTime());
  return { pgp: open, pgpExpiresAt: expiry.length ? Math.min(...expiry) : undefined };
}

/** The certificate (first in the file) and the intermediates after it, checked for signing mail and as its chain. */
function openSmime(certText: string, keyPem: string, passphrase: string | undefined, now: Date): SmimeSigner {
  const [first, ...rest] = pemCertificates(certText);
  if (!first) throw new Error('smimeCert: holds no PEM certificate');
  let cert: Certificate;
  let chain: Certificate[];
  try {
    cert = readCertificate(first);
    chain = rest.map((pem) => readCertificate(pem));
  } catch (err) {
    throw new Error(`smimeCert: cannot be read (${(err as Error).message})`);
  }
  const problem = signingProblem(cert, now) ?? chainProblem([cert, ...chain], now);
  if (problem) throw new Error(`smimeCert: ${problem}`);
  let key: KeyObject;
  try {
    key = createPrivateKey(passphrase ? { key: keyPem, passphrase } : keyPem);
  } catch (err) {
    throw new Error(`smimeKey: does not open${passphrase ? ' with smimeKeyPassphrase' : ' (is it encrypted? set smimeKeyPassphrase)'} (${(err as Error).message})`);
  }
  if (key.asymmetricKeyType !== 'rsa') throw new Error('smimeKey: must be an RSA key');
  if (!cert.x509.checkPrivateKey(key)) throw new Error('smimeKey: does not belong to smimeCert');
  return { key, cert, chain };
}

/** Why a certificate cannot sign mail now, or undefined. */
function signingProblem(cert: Certificate, now: Date): string | undefined {
  if (cert.keyType !== 'rsa') return `not an RSA certificate (${keyDescription(cert)})`;
  if (now < cert.notBefore) return `not valid until ${cert.notBefore.toISOString()}`;
  if (now > cert.notAfter) return `expired on ${cert.notAfter.toISOString()}`;
  const weak = WEAK_SIGNATURES[cert.signatureOid];
  if (weak) return `signed with ${weak}: mail clients refuse such certificates`;
  const ku = extension<{ digitalSignature?: boolean; nonRepudiation?: boolean }>(cert, 'keyUsage');
  if (ku && !ku.digitalSignature && !ku.nonRepudiation) return 'key usage does not allow digital signatures';
  const eku = extension<{ emailProtection?: boolean }>(cert, 'extKeyUsage');
  if (eku && !eku.emailProtection) return 'extended key usage lacks emailProtection';
  return undefined;
}

/**
 * Why the certificates after the first are not its chain: each must have issued the one
 * before it (signature verifies), be a current CA allowed to sign certificates at that
 * depth, and none may be signed with SHA-1 or MD5 — except a self-signed root at the end,
 * whose own signature nobody relies on. Anything else would be sent with every signature
 * and make recipients' clients fail to build the path.
 */
function chainProblem(path: Certificate[], now: Date): string | undefined {
  const rule = 'the certificates after the first must be its chain, each issued by the next';
  for (let depth = 1; depth < path.length; depth++) {
    const [cert, issuer] = [path[depth - 1] as Certificate, path[depth] as Certificate];
    const problem = (depth > 1 ? weakSignatureProblem(cert, depth - 1) : undefined) ?? issuerProblem(cert, issuer, depth - 1, now, false);
    if (problem) return `${rule}: ${problem}`;
  }
  const top = path.at(-1) as Certificate;
  const weak = path.length > 1 && !issuedBy(top, top) ? weakSignatureProblem(top, path.length - 1) : undefined;
  return weak && `${rule}: ${weak}`;
}
