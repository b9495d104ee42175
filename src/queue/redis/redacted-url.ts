/**
 * The Redis URL with its password replaced, for logs, error messages and check-config.
 * Its own file, without ioredis, so check-config can print it without loading the client.
 */
export function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'redis://(unparseable url)';
  }
}
