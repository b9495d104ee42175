import { X509Certificate } from 'node:crypto';

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Why PEM text given in archive.sinks[].ca is not a usable CA (undefined: it is). Checked
 * when the config is loaded: a bad one would otherwise show only at the first journal
 * report, as a TLS failure that stops delivery (fail-closed).
 */
export function caTextProblem(text: string): string | undefined {
  const blocks = text.match(PEM_CERT) ?? [];
  if (!blocks.length) return 'PEM text without a -----BEGIN CERTIFICATE----- block (give a file name, or the certificate itself)';
  for (const [i, block] of blocks.entries()) {
    try {
      new X509Certificate(block);
    } catch (err) {
      return `certificate ${i + 1} of the PEM text does not parse (${(err as Error).message}); paste the whole certificate, or give its file name`;
    }
  }
  return undefined;
}
