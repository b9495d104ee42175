import { request } from 'node:https';
import { rootCertificates } from 'node:tls';

export interface HttpsGetOptions {
  /** Addresses of a host name: the delivery resolver, so split-horizon sites and tests work. */
  resolve: (host: string) => Promise<string[]>;
  /** Extra CA certificates (PEM) beside Node's built-in list. */
  trust: string[];
  port: number;
  /** Deadline of the whole request: name lookup, connection, TLS, headers and body. */
  timeoutMs: number;
  maxBytes?: number;
}

export interface HttpsAnswer {
  status: number;
  body: Buffer;
}

/** The host name does not exist or has no address: an answer ("nothing there"), not a failure. */
export class NoAddressError extends Error {
  constructor(host: string) {
    super(`${host} has no address`);
    this.name = 'NoAddressError';
  }
}

const DEFAULT_MAX_BYTES = 256 * 1024;

/** DnsError outcomes (src/deliver/dns.ts) that say the name has no address, rather than that DNS failed. */
const NO_ADDRESS = new Set(['nxdomain', 'nodata']);
const NO_ADDRESS_CODES = new Set(['ENOTFOUND', 'ENODATA']);

async function addressesOf(host: string, opts: HttpsGetOptions): Promise<string[]> {
  let addresses: string[];
  try {
    addresses = await opts.resolve(host);
  } catch (err) {
    const e = err as { outcome?: unknown; code?: unknown };
    if (NO_ADDRESS.has(String(e.outcome)) || NO_ADDRESS_CODES.has(String(e.code))) throw new NoAddressError(host);
    throw new Error(`cannot resolve ${host}: ${(err as Error).message}`);
  }
  if (!addresses.length) throw new NoAddressError(host);
  return addresses;
}

/**
 * GET over verified HTTPS (certificate checked against the host name, whatever address
 * it was reached at). Resolves with the status and body; rejects with NoAddressError when
 * the host has no address, and otherwise when DNS or the connection fails, the whole
 * answer has not arrived within timeoutMs (a deadline, not an idle timeout: a server
 * that trickles bytes cannot hold the caller), or the body is larger than maxBytes.
 */
export async function httpsGet(host: string, path: string, opts: HttpsGetOptions): Promise<HttpsAnswer> {
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(new Error(`no complete answer from ${host} in ${opts.timeoutMs} ms`)), opts.timeoutMs);
  try {
    const addresses = await untilAborted(addressesOf(host, opts), deadline.signal);
    return await get(host, addresses[0] as string, path, opts, deadline.signal);
  } catch (err) {
    // An aborted request fails with a generic AbortError: say what happened instead.
    throw deadline.signal.aborted ? (deadline.signal.reason as Error) : err;
  } finally {
    clearTimeout(timer);
  }
}

/** A lookup the resolver bounds on its own time, given up at the deadline. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const stop = () => reject(signal.reason);
    signal.addEventListener('abort', stop, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', stop));
  });
}

/** The request is destroyed when `signal` aborts: its socket closes as soon as the caller gives up. */
function get(host: string, address: string, path: string, opts: HttpsGetOptions, signal: AbortSignal): Promise<HttpsAnswer> {
  const ca = [...rootCertificates, ...opts.trust];
  const limit = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port: opts.port, path, servername: host, headers: { host: opts.port === 443 ? host : `${host}:${opts.port}` }, ca, signal, method: 'GET' }, (res) => {
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
    req.on('error', reject);
    req.end();
  });
}
