import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A throwaway GnuPG home for one check. gpg starts a gpg-agent per home that outlives
 * the command; done() stops it (gpgconf --kill) and removes the home, so test runs do not
 * leave agents behind.
 */
export function freshGnupgHome(): { home: string; env: NodeJS.ProcessEnv; done(): void } {
  const home = mkdtempSync(join(tmpdir(), 'postern-gpg-'));
  return {
    home,
    env: { ...process.env, GNUPGHOME: home },
    done() {
      try {
        execFileSync('gpgconf', ['--homedir', home, '--kill', 'gpg-agent'], { stdio: 'ignore' });
      } catch {
        // no agent was started, or gpgconf is missing: nothing to stop
      }
      rmSync(home, { recursive: true, force: true });
    },
  };
}
