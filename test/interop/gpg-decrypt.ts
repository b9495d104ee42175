import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import { freshGnupgHome } from '../helpers/gnupg.js';

/** The armored OpenPGP message inside Postern's PGP/MIME output. */
export const armoredOf = (out: Buffer): string => /-----BEGIN PGP MESSAGE-----[\s\S]+?-----END PGP MESSAGE-----/.exec(out.toString('latin1'))![0];

/**
 * gpg --decrypt in a throwaway GnuPG home that holds only `secretKeys` (armored): what
 * the holder of those keys reads. The home and its agent go when the test ends.
 */
export function gpgDecryptor(gpg: string, secretKeys: string[]): (armored: string) => Buffer {
  const gnupg = freshGnupgHome();
  onTestFinished(() => gnupg.done());
  writeFileSync(join(gnupg.home, 'keys.asc'), secretKeys.join('\n'));
  execFileSync(gpg, ['--batch', '--import', join(gnupg.home, 'keys.asc')], { env: gnupg.env, stdio: 'ignore' });
  return (armored) => {
    writeFileSync(join(gnupg.home, 'm.asc'), armored);
    return execFileSync(gpg, ['--batch', '--decrypt', join(gnupg.home, 'm.asc')], { env: gnupg.env, stdio: ['ignore', 'pipe', 'pipe'] });
  };
}
