import { createHash } from 'node:crypto';
import { request } from 'node:https';
import { rootCertificates } from 'node:tls';

/** z-base-32 (RFC 6189 §5.1.6 alphabet), as WKD uses for the hashed local part. */
function zbase32(bytes: Buffer): string {
  const alphabet = 'ybndrfg8ejkmcpqxot1uwisza345h769';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

export function wkdHash(localPart: string): string {
  return zbase32(createHash('sha1').update(localPart.toLowerCase()).digest());
}

export interface HttpsGetOptions {
  resolve: (host: string) => Promise<string[]>;
  trust: string[];
  port: number;
  timeoutMs: number;
  maxBytes?: number;
}

/** GET over verified HTTPS to a host resolved with the delivery resolver; 200 only. */
export async function httpsGet(host: string, path: string, opts: HttpsGetOptions): Promise<Buffer | undefined> {
  const addresses = await opts.resolve(host).catch(() => [] as string[]);
  if (!addresses.length) return undefined;
  const ca = [...rootCertificates, ...opts.trust];
  return new Promise((resolve, reject) => {
    const req = request({ host: addresses[0], port: opts.port, path, servername: host, headers: { host }, ca, timeout: opts.timeoutMs, method: 'GET' }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return resolve(undefined);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > (opts.maxBytes ?? 256 * 1024)) req.destroy(new Error('response too large'));
        else chunks.push(c);
      });
      res.on('end', () => resolve(Buffer.concat(chunks)));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${host} in ${opts.timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Web Key Directory lookup (draft-koch-openpgp-webkey-service): the advanced method
 * (openpgpkey.<domain>) first, then the direct one (<domain>). Returns binary key data.
 */
export async function wkdLookup(address: string, opts: HttpsGetOptions): Promise<{ data: Buffer; method: 'advanced' | 'direct' } | undefined> {
  const at = address.lastIndexOf('@');
  const local = address.slice(0, at);
  const domain = address.slice(at + 1).toLowerCase();
  const hu = `${wkdHash(local)}?l=${encodeURIComponent(local)}`;
  const advanced = await httpsGet(`openpgpkey.${domain}`, `/.well-known/openpgpkey/${domain}/hu/${hu}`, opts).catch(() => undefined);
  if (advanced?.length) return { data: advanced, method: 'advanced' };
  const direct = await httpsGet(domain, `/.well-known/openpgpkey/hu/${hu}`, opts).catch(() => undefined);
  if (direct?.length) return { data: direct, method: 'direct' };
  return undefined;
}
