import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { dnsTxtRecord, generateDkimKey, type DkimAlgorithm } from '../sign/keygen.js';
import { failCommand } from './config-or-exit.js';

export interface KeygenOptions {
  domain: string;
  selector: string;
  algorithm?: string;
  out?: string;
}

/**
 * postern dkim keygen: writes a new private key (mode 0600, never over an existing file)
 * and prints the DNS TXT record to publish and the dkim.keys entry to add.
 */
export async function dkimKeygenCommand(opts: KeygenOptions): Promise<void> {
  const algorithm = (opts.algorithm ?? 'rsa-sha256') as DkimAlgorithm;
  if (algorithm !== 'rsa-sha256' && algorithm !== 'ed25519-sha256') return failCommand(`--algorithm must be rsa-sha256 or ed25519-sha256, not ${opts.algorithm}`);
  const domain = opts.domain.trim().toLowerCase().replace(/\.$/, '');
  if (!/^[a-z0-9.-]+\.[a-z0-9-]+$/.test(domain)) return failCommand(`--domain ${opts.domain} is not a domain name`);
  if (!/^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/.test(opts.selector)) return failCommand(`--selector ${opts.selector}: use letters, digits, dot, dash, underscore`);
  const out = resolve(opts.out ?? `dkim-${domain}-${opts.selector}.pem`);
  if (existsSync(out)) return failCommand(`${out} exists; not overwriting a key (choose another --out)`);
  const key = generateDkimKey(algorithm);
  await writeFile(out, key.privateKey, { mode: 0o600, flag: 'wx' });
  process.stdout.write(
    [
      `private key written to ${out} (mode 0600: keep it secret)`,
      '',
      'publish this DNS record:',
      dnsTxtRecord(domain, opts.selector, key.txt),
      '',
      'and add to the config:',
      'dkim:',
      '  keys:',
      `    - { domain: ${domain}, selector: ${opts.selector}, algorithm: ${algorithm}, privateKey: ${out} }`,
      '',
    ].join('\n'),
  );
}
