/**
 * What to say when a listener cannot have its address: the setting, the address, what
 * the error means and what to do, in the log line and on stderr alike. Node's own text
 * ("listen EADDRINUSE: address already in use 127.0.0.1:8443") names neither the setting
 * nor, for the listeners after the first, which of them it was.
 */
const MEANING: Record<string, string> = {
  EADDRINUSE: 'address already in use (EADDRINUSE): another process, or another of these listeners, has it; stop that or choose another port',
  EACCES: 'permission denied (EACCES): ports below 1024 need root or CAP_NET_BIND_SERVICE; or choose a port above 1023',
  EADDRNOTAVAIL: 'address not available (EADDRNOTAVAIL): no network interface of this machine has this address; use one it has, or 0.0.0.0',
};

/** host:port as written in the config ([v6]:port for IPv6). */
export function formatAddress(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** `portal.listen 127.0.0.1:8443: address already in use (EADDRINUSE): ...` */
export function listenError(setting: string, host: string, port: number, err: Error): Error {
  const code = (err as NodeJS.ErrnoException).code;
  return new Error(`${setting} ${formatAddress(host, port)}: ${(code && MEANING[code]) ?? err.message}`, { cause: err });
}
