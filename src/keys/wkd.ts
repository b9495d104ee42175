import { createHash } from 'node:crypto';
import { comparableDomain } from '../common/domain-name.js';
import { httpsGet, NoAddressError, type HttpsGetOptions } from './https-get.js';

/** z-base-32 (RFC 6189 §5.1.6 alphabet), as WKD uses for the hashed local part. */
function zbase32(bytes: Buffer): string {
  const alphabet = 'ybndrfg8ejkmcpqxot1uwisza345h769';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = ((value << 8) | b) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

/** The WKD name of a local part: z-base-32 of its SHA-1 (a name, not a signature). */
export function wkdHash(localPart: string): string {
  return zbase32(createHash('sha1').update(localPart.toLowerCase()).digest());
}

export interface WkdResult {
  data?: Buffer | undefined;
  method?: 'advanced' | 'direct' | undefined;
  /** What each method answered, for the log: "advanced: 404", "direct: no answer in 5000 ms". */
  tried: string[];
  /**
   * No key, and a method failed rather than answered (timeout, connection or TLS failure,
   * DNS failure, a 5xx): "no key there" cannot be concluded, so it is not remembered as long.
   */
  failed?: boolean | undefined;
}

/** An HTTP answer that says the server has no key here (a 5xx says the server is in trouble). */
const isAnswer = (status: number) => status < 500;

/**
 * Web Key Directory lookup (draft-koch-openpgp-webkey-service §3.1): the advanced method
 * (https://openpgpkey.<domain>/.well-known/openpgpkey/<domain>/hu/...) first, then the
 * direct one (https://<domain>/.well-known/openpgpkey/hu/...). A missing host, an error
 * status, a timeout or an empty answer falls through to the next method; `failed` says
 * whether any of that was a failure rather than an answer. The local part is sent as the
 * sender wrote it (l=, the hash of its lower case); the domain, a host name in DNS and
 * TLS, in its ASCII form (an internationalised one as A-labels, however it came).
 */
export async function wkdLookup(address: string, opts: HttpsGetOptions): Promise<WkdResult> {
  const at = address.lastIndexOf('@');
  const local = address.slice(0, at);
  const domain = comparableDomain(address.slice(at + 1));
  const hu = `${wkdHash(local)}?l=${encodeURIComponent(local)}`;
  const methods = [
    { method: 'advanced' as const, host: `openpgpkey.${domain}`, path: `/.well-known/openpgpkey/${domain}/hu/${hu}` },
    { method: 'direct' as const, host: domain, path: `/.well-known/openpgpkey/hu/${hu}` },
  ];
  const tried: string[] = [];
  let failed = false;
  for (const m of methods) {
    try {
      const answer = await httpsGet(m.host, m.path, opts);
      if (answer.status === 200 && answer.body.length) return { data: answer.body, method: m.method, tried };
      tried.push(`${m.method}: ${answer.status === 200 ? 'empty answer' : `HTTP ${answer.status}`}`);
      if (!isAnswer(answer.status)) failed = true;
    } catch (err) {
      tried.push(`${m.method}: ${(err as Error).message}`);
      // A host without an address is the usual "no WKD here" for the advanced method.
      if (!(err instanceof NoAddressError)) failed = true;
    }
  }
  return { tried, failed };
}
