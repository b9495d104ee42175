import { createServer, type Server } from 'node:net';
import { listenError } from '../common/listen-error.js';
import type { ListenAddress } from '../config/listen-addresses.js';

/**
 * Binds every address, all held at once, then lets them go: one error per address that
 * cannot be had (taken by another process or by another of the listeners, a privileged
 * port, an address not on this machine), each naming its setting. `postern start` runs
 * this before it opens anything: a port that cannot be had then stops it before the
 * spool is opened or an SMTP client is greeted, instead of after the SMTP listener had
 * already answered 220. (One taken in the moment between this and the bind still fails
 * the start, named the same way.)
 */
export async function listenProblems(addresses: ListenAddress[]): Promise<Error[]> {
  const held: Server[] = [];
  const problems: Error[] = [];
  for (const a of addresses) {
    const server = createServer();
    const err = await new Promise<Error | undefined>((resolve) => {
      server.once('error', resolve);
      server.listen(a.port, a.host, () => resolve(undefined));
    });
    if (err) problems.push(listenError(a.setting, a.host, a.port, err));
    else held.push(server);
  }
  await Promise.all(held.map((s) => new Promise((resolve) => s.close(resolve))));
  return problems;
}
