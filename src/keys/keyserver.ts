import { httpsGet, type HttpsGetOptions } from './https-get.js';

export type KeyserverProtocol = 'vks' | 'hkp';

/**
 * One key for an address from a keyserver: VKS (`/vks/v1/by-email/`, keys.openpgp.org
 * and other Hagrid servers) or HKP (`/pks/lookup?op=get&options=mr&search=`, SKS-style
 * servers). Answers the armored key, or undefined when the server has none (404);
 * throws when it could not tell (no connection, timeout, any other status).
 */
export async function keyserverLookup(url: string, protocol: KeyserverProtocol, address: string, opts: Omit<HttpsGetOptions, 'port'>): Promise<string | undefined> {
  const base = new URL(url);
  if (base.protocol !== 'https:') throw new Error(`keyserver ${url}: only https is used`);
  const prefix = base.pathname.replace(/\/$/, '');
  const path =
    protocol === 'vks'
      ? `${prefix}/vks/v1/by-email/${encodeURIComponent(address)}`
      : `${prefix}/pks/lookup?op=get&options=mr&exact=on&search=${encodeURIComponent(address)}`;
  const answer = await httpsGet(base.hostname, path, { ...opts, port: Number(base.port || 443) });
  if (answer.status === 404) return undefined;
  if (answer.status !== 200) throw new Error(`keyserver ${base.host} answered HTTP ${answer.status}`);
  const text = answer.body.toString('utf8');
  return text.includes('-----BEGIN PGP PUBLIC KEY BLOCK-----') ? text : undefined;
}
