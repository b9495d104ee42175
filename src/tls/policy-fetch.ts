import { request } from 'node:https';
import type { TlsResultType } from './verdict.js';

export type StsFailure = Extract<TlsResultType, 'sts-policy-fetch-error' | 'sts-policy-invalid' | 'sts-webpki-invalid'>;

export class FetchError extends Error {
  constructor(
    readonly failure: StsFailure,
    message: string,
    /** The policy host answered (an HTTP status, a body): another address of it would not do better. */
    readonly answered = false,
  ) {
    super(message);
  }
}

export interface PolicyFetch {
  host: string;
  addresses: string[];
  port: number;
  ca: string[];
  /** When the whole lookup must be over (ms since the epoch): every address tried shares it. */
  deadline: number;
  /** The lookup's whole budget, for messages. */
  timeoutMs: number;
  maxBytes: number;
}

/** Addresses of the policy host tried, in the order DNS gave them. */
const MAX_ADDRESSES = 3;

/**
 * GET https://mta-sts.<domain>/.well-known/mta-sts.txt as RFC 8461 §3.3 asks: 200 only,
 * no redirects, text/plain, at most `maxBytes`, certificate valid for the policy host.
 * Each address of the host is tried in turn until one answers (a refused connection,
 * a TLS failure or a timeout is worth the next address; an answer is final). All tries
 * share one deadline (the lookup's, DNS included): each may use its share of what is
 * left — all of it for the last — so a server that trickles its answer a byte at a
 * time holds the delivery that waits for the policy no longer than the timeout, and
 * still leaves the next address its turn.
 */
export async function fetchPolicy(f: PolicyFetch): Promise<Buffer> {
  let last: FetchError | undefined;
  const addresses = f.addresses.slice(0, MAX_ADDRESSES);
  for (const [i, address] of addresses.entries()) {
    const left = f.deadline - Date.now();
    if (left <= 0) break;
    try {
      return await fetchFrom(f, address, left / (addresses.length - i));
    } catch (err) {
      const e = err instanceof FetchError ? err : new FetchError('sts-policy-fetch-error', `${f.host} (${address}): ${(err as Error).message}`);
      if (e.answered) throw e;
      last = e;
    }
  }
  throw last ?? new FetchError('sts-policy-fetch-error', addresses.length ? `${f.host}: no time left within the ${f.timeoutMs} ms MTA-STS deadline` : `${f.host} has no address`);
}

function fetchFrom(f: PolicyFetch, address: string, budgetMs: number): Promise<Buffer> {
  const where = `${f.host} (${address})`;
  return new Promise<Buffer>((resolve, reject) => {
    let done = false;
    const finish = (err: FetchError | undefined, body?: Buffer) => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      if (err) {
        req.destroy();
        reject(err);
      } else resolve(body as Buffer);
    };
    const req = request(
      { host: address, port: f.port, path: '/.well-known/mta-sts.txt', method: 'GET', servername: f.host, headers: { host: f.host }, ca: f.ca, rejectUnauthorized: true },
      (res) => {
        // 200 only, and never a redirect (RFC 8461 §3.3).
        if (res.statusCode !== 200) {
          res.resume();
          return finish(new FetchError('sts-policy-fetch-error', `HTTP ${res.statusCode} from https://${f.host}/.well-known/mta-sts.txt`, true));
        }
        const type = String(res.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
        if (type !== 'text/plain') {
          res.resume();
          return finish(new FetchError('sts-policy-invalid', `policy served as ${type || 'no content type'}, not text/plain`, true));
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > f.maxBytes) finish(new FetchError('sts-policy-invalid', `policy larger than ${f.maxBytes} bytes`, true));
          else chunks.push(c);
        });
        res.on('end', () => finish(undefined, Buffer.concat(chunks)));
        res.on('error', (err) => finish(new FetchError('sts-policy-fetch-error', `${where}: ${err.message}`)));
      },
    );
    const deadline = setTimeout(() => finish(new FetchError('sts-policy-fetch-error', `${where} did not send the whole policy in time (${Math.round(budgetMs)} ms of the ${f.timeoutMs} ms MTA-STS deadline)`)), budgetMs);
    req.on('error', (err) => {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      // A certificate the web PKI does not accept for mta-sts.<domain>.
      const webpki = /CERT|SELF_SIGNED|UNABLE_TO|ALTNAME|HOSTNAME/.test(code) || /certificate/i.test(err.message);
      finish(new FetchError(webpki ? 'sts-webpki-invalid' : 'sts-policy-fetch-error', `${where}: ${err.message}`));
    });
    req.end();
  });
}
