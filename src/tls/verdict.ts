import { checkServerIdentity, type TLSSocket } from 'node:tls';
import type { TlsLevel } from '../config/schema.js';

/** RFC 8460 result types, used in logs and (later) TLS reports. */
export type TlsResultType =
  | 'starttls-not-supported'
  | 'certificate-host-mismatch'
  | 'certificate-expired'
  | 'certificate-not-trusted'
  | 'validation-failure'
  | 'sts-policy-fetch-error'
  | 'sts-policy-invalid'
  | 'sts-webpki-invalid';

export interface TlsInfo {
  version?: string | undefined;
  cipher?: string | undefined;
  /** Chain valid against our trust store AND the name matches. */
  verified: boolean;
  /** Why it is not verified, as an RFC 8460 result type. */
  failure?: TlsResultType | undefined;
  detail?: string | undefined;
  peer?: string | undefined;
}

const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_UNTRUSTED',
  'CERT_CHAIN_TOO_LONG',
  'INVALID_CA',
]);

/**
 * Reads what the handshake established. Verification is done here, after the handshake
 * and before any mail command, so the verdict (and its reason) is known and logged at
 * every level; `verify` then refuses to send when it is false.
 */
export function tlsVerdict(socket: TLSSocket | undefined, servername: string): TlsInfo {
  if (!socket || typeof socket.getPeerCertificate !== 'function' || !socket.encrypted) return { verified: false };
  const cipher = socket.getCipher();
  const cert = socket.getPeerCertificate();
  const base = { version: socket.getProtocol() ?? undefined, cipher: cipher?.name, peer: typeof cert?.subject?.CN === 'string' ? cert.subject.CN : undefined };
  if (!socket.authorized) {
    const code = String(socket.authorizationError ?? 'UNKNOWN');
    const failure: TlsResultType =
      code === 'CERT_HAS_EXPIRED'
        ? 'certificate-expired'
        : code === 'ERR_TLS_CERT_ALTNAME_INVALID'
          ? 'certificate-host-mismatch'
          : UNTRUSTED.has(code)
            ? 'certificate-not-trusted'
            : 'validation-failure';
    return { ...base, verified: false, failure, detail: code };
  }
  const mismatch = cert && Object.keys(cert).length ? checkServerIdentity(servername, cert) : new Error('no peer certificate');
  if (mismatch) return { ...base, verified: false, failure: 'certificate-host-mismatch', detail: mismatch.message };
  return { ...base, verified: true };
}

/** Whether an established session satisfies the level. */
export function meetsLevel(level: TlsLevel, info: TlsInfo): boolean {
  switch (level) {
    case 'none':
    case 'may':
      return true;
    case 'encrypt':
      return Boolean(info.version);
    case 'verify':
      return info.verified;
  }
}
