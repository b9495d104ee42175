import { resolve } from 'node:path';
import { ConfigError, configPathFrom, loadConfigFile } from '../config/load.js';
import type { PosternConfig } from '../config/schema.js';
import { openArchive, type ArchiveAdmin } from '../archive/admin.js';

/** What every `postern archive` command shares: the config, the archive, output and exit codes. */

export interface ConfigOption {
  config?: string;
}

/**
 * Exit code of a command that could not give the whole answer: verify found no archive
 * at all; search or export hit a limit or could not read some items (without --allow-partial).
 */
export const NOT_COMPLETE_EXIT = 4;

export const out = (text: string) => process.stdout.write(`${text}\n`);

/** Loads the config and the archive keys; a bad config exits 2 as check-config does. */
export async function open(opts: ConfigOption): Promise<{ config: PosternConfig; archive: ArchiveAdmin } | undefined> {
  let config: PosternConfig;
  try {
    config = loadConfigFile(configPathFrom(opts.config));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exitCode = 2;
    return undefined;
  }
  const archive = await openArchive(config, resolve(config.dataDir));
  if (archive.development) process.stderr.write(`warning: using the development archive key ${archive.layout.masterKeyFile}; set archive.masterKeys for production\n`);
  return { config, archive };
}

/** Runs a command; its errors become one line on stderr and exit code 1. */
export async function guarded(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    process.stderr.write(`postern archive: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}

/** "2025-01-31" or an ISO date-time; a bare date as the end of a range means its whole day. */
export function parseDate(text: string | undefined, endOfDay: boolean, name: string): number | undefined {
  if (text === undefined) return undefined;
  const bare = /^\d{4}-\d{2}-\d{2}$/.test(text);
  const t = Date.parse(bare ? `${text}T00:00:00Z` : text);
  if (!Number.isFinite(t)) throw new Error(`${name}: "${text}" is not a date (use e.g. 2025-01-31 or 2025-01-31T12:00:00Z)`);
  return bare && endOfDay ? t + 86_400_000 - 1 : t;
}
