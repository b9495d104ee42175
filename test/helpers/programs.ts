import { execFileSync } from 'node:child_process';

/**
 * Interop tests need real outside programs (swaks, openssl, postfix, ...). On a
 * developer machine a missing program skips those tests with a reason; with CI=true it
 * is an error, so CI can never pass by skipping.
 */
export function findProgram(name: string): string | undefined {
  try {
    const path = execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
    if (path) return path;
  } catch {
    // not found
  }
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/bin']) {
    try {
      execFileSync('test', ['-x', `${dir}/${name}`]);
      return `${dir}/${name}`;
    } catch {
      // keep looking
    }
  }
  if (process.env.CI === 'true') throw new Error(`interop test needs '${name}' but it is not installed (CI=true: install it, see .ci/run)`);
  return undefined;
}
