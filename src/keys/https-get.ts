import { isIP, type LookupFunction } from 'node:net';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import { Agent, request } from 'undici';

export interface HttpsGetOptions {
  /** Addresses of a host name: the delivery resolver, so split-horizon sites and tests work. */
  resolve: (host: string) => Promise<string[]>;
  /** Extra CA certificates (PEM) beside Node's built-in list. */
  trust: string[];
  port: number;
  /** Deadline of the whole request: name lookup, connections, TLS, redirects, headers and body. */
  timeoutMs: number;
  maxBytes?: number;
  /** Redirects to the same origin that are followed (default 3); one to another origin is refused. */
  maxRedirects?: number;
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
const DEFAULT_MAX_REDIRECTS = 3;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

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
 * GET over verified HTTPS with undici (the certificate is checked against the host name,
 * whatever address it was reached at). Each address of the host is tried in turn until
 * one answers; same-origin redirects are followed (maxRedirects), a redirect elsewhere is
 * an error, not an answer. Resolves with the status and body; rejects with
 * NoAddressError when the host has no address, and otherwise when DNS or every
 * connection fails, the whole answer has not arrived within timeoutMs (a deadline, not
 * an idle timeout: a server that trickles bytes cannot hold the caller), or the body is
 * larger than maxBytes.
 */
export async function httpsGet(host: string, path: string, opts: HttpsGetOptions): Promise<HttpsAnswer> {
  const deadline = new AbortController();
  const endsAt = Date.now() + opts.timeoutMs;
  const timer = setTimeout(() => deadline.abort(new Error(`no complete answer from ${host} in ${opts.timeoutMs} ms`)), opts.timeoutMs);
  try {
    const addresses = await untilAborted(addressesOf(host, opts), deadline.signal);
    let url = new URL(`https://${host}:${opts.port}${path}`);
    for (let redirects = 0; ; redirects++) {
      const answer = await fromAnyAddress(url, addresses, opts, deadline.signal, endsAt);
      if (!REDIRECTS.has(answer.status)) return answer;
      url = sameOriginTarget(url, answer.location, redirects < (opts.maxRedirects ?? DEFAULT_MAX_REDIRECTS));
    }
  } catch (err) {
    // An aborted request fails with a generic AbortError: say what happened instead.
    throw deadline.signal.aborted ? (deadline.signal.reason as Error) : err;
  } finally {
    clearTimeout(timer);
  }
}

/** Where a redirect may be followed: the same scheme, host and port only, a few times. */
function sameOriginTarget(from: URL, location: string | undefined, mayFollow: boolean): URL {
  if (!location) throw new Error(`${from.host} redirected without a Location`);
  const to = new URL(location, from);
  if (to.origin !== from.origin) throw new Error(`${from.host} redirected to ${to.origin}: only same-origin redirects are followed`);
  if (!mayFollow) throw new Error(`${from.host} redirected too many times`);
  return to;
}

/** A lookup the resolver bounds on its own time, given up at the deadline. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const stop = () => reject(signal.reason);
    signal.addEventListener('abort', stop, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', stop));
  });
}

/**
 * Connections are kept per trust list and address (a WKD host and its domain are often
 * one server): one TLS context per trust list, as building one from Node's ~140 root
 * certificates costs tens of milliseconds, and one undici Agent per address, whose
 * lookup answers that address, so an idle connection (undici closes it after 4 s)
 * serves the next lookup without a new handshake.
 */
const pools = new Map<string, { context: SecureContext; agents: Map<string, Agent> }>();
const MAX_AGENTS = 32;

/**
 * Builds the TLS context of a trust list ahead of the first request (at start-up), so
 * the first lookup's deadline is not spent on it.
 */
export function prepareHttps(trust: string[]): { context: SecureContext; agents: Map<string, Agent> } {
  const key = trust.join('');
  let pool = pools.get(key);
  if (!pool) pools.set(key, (pool = { context: createSecureContext({ ca: [...rootCertificates, ...trust] }), agents: new Map() }));
  return pool;
}

function agentFor(trust: string[], address: string): Agent {
  const pool = prepareHttps(trust);
  let agent = pool.agents.get(address);
  if (agent) return agent;
  const family = isIP(address) || 4;
  // Name resolution is ours (the delivery resolver); the host name still names the server for SNI and the certificate check.
  const lookup: LookupFunction = (_name, options, callback) => (options.all ? (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address, family }]) : callback(null, address, family));
  agent = new Agent({ connect: { secureContext: pool.context, lookup }, connections: 4 });
  pool.agents.set(address, agent);
  for (const [old, a] of pool.agents) {
    if (pool.agents.size <= MAX_AGENTS) break;
    pool.agents.delete(old);
    void a.close().catch(() => undefined);
  }
  return agent;
}

/** A failure before any answer: the next address may do better. */
class NoAnswer extends Error {}

/**
 * The first address that answers: one that refuses, times out connecting or fails TLS
 * gives way to the next, each given an equal share of the time left to connect.
 */
async function fromAnyAddress(url: URL, addresses: string[], opts: HttpsGetOptions, signal: AbortSignal, endsAt: number): Promise<HttpsAnswer & { location?: string | undefined }> {
  const failures: string[] = [];
  for (const [i, address] of addresses.entries()) {
    // The last address has no next one to give way to: the caller's deadline alone
    // bounds it (a share ending a moment before the deadline would only blur the error).
    const last = i === addresses.length - 1;
    const share = last ? undefined : Math.max(100, Math.floor((endsAt - Date.now()) / (addresses.length - i)));
    try {
      return await getFrom(url, address, opts, signal, share);
    } catch (err) {
      if (signal.aborted || !(err instanceof NoAnswer)) throw err;
      failures.push(`${address}: ${err.message}`);
    }
  }
  throw new Error(`no answer from ${url.hostname} (${failures.join('; ')})`);
}

/**
 * One GET to one address. Its share of the time runs until the headers arrive (a silent
 * address gives way to the next); the body is bounded by the caller's deadline only.
 * The connection is dropped as soon as the caller gives up.
 */
async function getFrom(url: URL, address: string, opts: HttpsGetOptions, signal: AbortSignal, shareMs: number | undefined): Promise<HttpsAnswer & { location?: string | undefined }> {
  const limit = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const stop = new AbortController();
  const giveUp = () => stop.abort(signal.reason);
  signal.addEventListener('abort', giveUp, { once: true });
  const share = shareMs === undefined ? undefined : setTimeout(() => stop.abort(new NoAnswer(`no answer in ${shareMs} ms`)), shareMs);
  try {
    const res = await request(url, { dispatcher: agentFor(opts.trust, address), method: 'GET', signal: stop.signal, headers: { accept: 'application/octet-stream, application/pgp-keys, */*' } }).catch(
      (err: Error & { code?: string; cause?: { message?: string } }) => {
        if (stop.signal.reason instanceof NoAnswer) throw stop.signal.reason;
        throw new NoAnswer(err.code && err.code !== 'UND_ERR_SOCKET' ? `${err.code}: ${err.message}` : (err.cause?.message ?? err.message));
      },
    );
    clearTimeout(share);
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > limit) throw new Error(`answer from ${url.hostname} larger than ${limit} bytes`);
        chunks.push(chunk);
      }
    } finally {
      // An unread rest (too large, deadline) must not keep the connection: undici then closes it.
      if (!res.body.readableEnded) res.body.destroy();
    }
    const location = res.headers.location;
    return { status: res.statusCode, body: Buffer.concat(chunks), location: Array.isArray(location) ? location[0] : location };
  } finally {
    clearTimeout(share);
    signal.removeEventListener('abort', giveUp);
  }
}
