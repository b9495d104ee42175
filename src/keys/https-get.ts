import { request } from 'node:https';
import { rootCertificates } from 'node:tls';

export interface HttpsGetOptions {
  /** Addresses of a host name: the delivery resolver, so split-horizon sites and tests work. */
  resolve: (host: string) => Promise<string[]>;
  /** Extra CA certificates (PEM) beside Node's built-in list. */
  trust: string[];
  port: number;
  timeoutMs: number;
  maxBytes?: number;
}

export interface HttpsAnswer {
  status: number;
  body: Buffer;
}

const DEFAULT_MAX_BYTES = 256 * 1024;

/**
 * GET over verified HTTPS (certificate checked against the host name, whatever address
 * it was reached at). Resolves with the status and body; rejects when the host has no
 * address, the connection fails, nothing arrives within the timeout, or the body is
 * larger than maxBytes.
 */
export async function httpsGet(host: string, path: string, opts: HttpsGetOptions): Promise<HttpsAnswer> {
  const addresses = await opts.resolve(host).catch(() => [] as string[]);
  if (!addresses.length) throw new Error(`${host} has no address`);
  const ca = [...rootCertificates, ...opts.trust];
  const limit = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  return new Promise((resolve, reject) => {
    const req = request({ host: addresses[0], port: opts.port, path, servername: host, headers: { host: opts.port === 443 ? host : `${host}:${opts.port}` }, ca, timeout: opts.timeoutMs, method: 'GET' }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > limit) req.destroy(new Error(`answer from ${host} larger than ${limit} bytes`));
        else chunks.push(c);
      });
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${host} in ${opts.timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}
