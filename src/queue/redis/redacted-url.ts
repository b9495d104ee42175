/**
 * Query parameters whose value is a secret. ioredis turns a URL's query parameters into
 * client options, so `?password=...` authenticates as userinfo does and must be masked too.
 */
const SECRET_PARAM = /pass|pwd|token|secret|auth|key|credential/i;

/**
 * The Redis URL with its password replaced, in the userinfo and in the query, for logs,
 * error messages and check-config.
 * Its own file, without ioredis, so check-config can print it without loading the client.
 */
export function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const name of [...new Set(u.searchParams.keys())]) if (SECRET_PARAM.test(name)) u.searchParams.set(name, '***');
    // URLSearchParams writes * as %2A: keep the mask as readable as in the userinfo.
    return u.toString().replace(/%2A%2A%2A/g, '***');
  } catch {
    return 'redis://(unparseable url)';
  }
}
