import { join } from 'node:path';
import { startCapture } from './capture.js';
import { startEncrypting } from './encrypting.js';
import type { BenchOptions } from './options.js';
import { postfixAvailable, startPostfixRelay } from './postfix.js';
import { startPostern } from './postern.js';
import { freePort } from './proc.js';
import { redisAvailable, REDIS_SERVER } from './redis.js';
import { startRedisPair } from './redis-pair.js';
import type { Setup } from './setup.js';
import type { Sink } from './sink.js';
import { verifyEncrypts } from './verify-encrypted.js';

export interface Setups {
  /** The main table: 5 KB and 100 KB, both modes. */
  main: Setup[];
  /** The encryption table: plain postern, postern-pgp, postern-smime at one size. */
  encrypt: Setup[];
  /** Why a case asked for is not there (a missing program). */
  skipped: string[];
}

/**
 * Starts every setup the options ask for, all next to each other for the whole run
 * (`running` collects them as they start, so a failure half-way still stops them all).
 * The encrypting setups are checked before anything is timed.
 */
export async function startSetups(opts: BenchOptions, base: string, sink: Sink, running: Setup[], log: (line: string) => void): Promise<Setups> {
  const add = (s: Setup) => (running.push(s), s);
  const direct: Setup = { name: 'direct', ports: [sink.port], pgids: [], stop: async () => undefined };
  const plain = { dir: '', port: 0, sinkPort: sink.port, workers: opts.workers };
  const postern = add(await startPostern({ ...plain, name: 'postern', dir: join(base, 'postern'), port: await freePort() }));
  const main = [direct, postern];
  const skipped: string[] = [];
  if (opts.journalOff) main.push(add(await startPostern({ ...plain, name: 'postern-nojournal', dir: join(base, 'nojournal'), port: await freePort(), journal: false })));
  if (opts.redis && redisAvailable()) main.push(add(await startRedisPair(join(base, 'redis-x2'), sink.port)));
  else if (opts.redis) skipped.push(`postern-redis-x2: ${REDIS_SERVER} not found`);
  if (opts.postfix && postfixAvailable()) main.push(add(await startPostfixRelay(join(base, 'postfix'), await freePort(), sink.port)));
  else if (opts.postfix) skipped.push('postfix: Postfix not installed or not root');

  const encrypt: Setup[] = [];
  if (opts.encrypt) {
    const capture = await startCapture(await freePort());
    try {
      encrypt.push(postern);
      for (const method of ['pgp', 'smime'] as const) {
        const e = await startEncrypting(method, join(base, method), await freePort(), sink.port, capture.port, opts.workers);
        add(e.setup);
        await verifyEncrypts(e.setup.name, e.setup.ports[0] as number, method, e.recipient, capture, opts.encryptSize);
        log(`${e.setup.name}: checked: a ${opts.encryptSize}-byte message arrived ${method === 'pgp' ? 'OpenPGP' : 'S/MIME'}-encrypted, without its plain text, and decrypts to it`);
        encrypt.push(e.setup);
      }
    } finally {
      await capture.stop();
    }
  }
  return { main, encrypt, skipped };
}
