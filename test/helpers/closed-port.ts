import { createServer } from 'node:net';

/**
 * A loopback port with nothing listening, for "the next hop is down" tests. It is taken
 * from below the kernel's ephemeral range (net.ipv4.ip_local_port_range, 32768–60999 by
 * default): every other server in the suite listens on port 0 and so gets an ephemeral
 * port, so a parallel test file cannot take this one between the check and its use (a
 * port reserved with port 0 and then freed could be handed out again at once, and a
 * delivery to some other test's server hangs instead of being refused).
 */
export async function closedPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await isFree(port)) return port;
  }
  throw new Error('no free port found between 20000 and 32000');
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
