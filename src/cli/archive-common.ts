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

const DAY_MS = 86_400_000;
const BARE_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:(Z)|([+-])(\d{2}):(\d{2}))$/i;
const DATE_FORMS = 'use a day, 2026-01-31 (a whole UTC day), or a date-time with Z or an offset, 2026-01-31T12:00:00Z or 2026-01-31T07:00:00-05:00';

/** Epoch ms of a UTC calendar date and time; undefined when a field is out of range (February 31, 24:00). */
function utcTime(y: number, mo: number, d: number, h = 0, mi = 0, s = 0, ms = 0): number | undefined {
  if (mo < 1 || mo > 12 || h > 23 || mi > 59 || s > 59) return undefined;
  const t = Date.UTC(y, mo - 1, d, h, mi, s, ms);
  const back = new Date(t);
  // Date.UTC rolls a day over (February 31 is March 3) and reads years 0-99 as 19xx: only a round trip tells.
  return back.getUTCFullYear() === y && back.getUTCMonth() === mo - 1 && back.getUTCDate() === d ? t : undefined;
}

/**
 * "2026-01-31" (a whole UTC day: its first millisecond, or with `endOfDay` its last) or an
 * ISO date-time with Z or an offset. Nothing else: Date.parse reads other forms in the
 * host's time zone ("2026-6-30", "2026-06-30T23:59:59"), rolls days over ("2026-02-31" is
 * March 3) and guesses ("1" is 2001), so the same command would mean another instant on
 * another machine. `name` (--since, until...) starts the error.
 */
export function parseDate(text: string | undefined, endOfDay: boolean, name: string): number | undefined {
  if (text === undefined) return undefined;
  const n = (i: number, m: RegExpExecArray) => Number(m[i] ?? 0);
  const day = BARE_DATE.exec(text);
  const at = day ? undefined : DATE_TIME.exec(text);
  if (!day && !at) throw new Error(`${name}: "${text}" is not a date: ${DATE_FORMS}`);
  let t: number | undefined;
  if (day) {
    t = utcTime(n(1, day), n(2, day), n(3, day));
    if (t !== undefined && endOfDay) t += DAY_MS - 1;
  } else if (at) {
    const ms = Number((at[7] ?? '').padEnd(3, '0').slice(0, 3));
    const local = utcTime(n(1, at), n(2, at), n(3, at), n(4, at), n(5, at), n(6, at), ms);
    const offH = n(10, at);
    const offM = n(11, at);
    const offset = at[8] ? 0 : (at[9] === '-' ? -1 : 1) * (offH * 60 + offM) * 60_000;
    t = local === undefined || offH > 23 || offM > 59 ? undefined : local - offset;
  }
  if (t === undefined) throw new Error(`${name}: "${text}" names a day or time that does not exist: ${DATE_FORMS}`);
  return t;
}

/**
 * The received-date range of a search, export or hold: since at the start of its day,
 * until at the end of its. A range that ends before it starts is refused (it would find
 * nothing, or hold nothing, without a word).
 */
export function parseRange(since: string | undefined, until: string | undefined, names: { since: string; until: string }): { since: number | undefined; until: number | undefined } {
  const range = { since: parseDate(since, false, names.since), until: parseDate(until, true, names.until) };
  if (range.since !== undefined && range.until !== undefined && range.since > range.until) {
    throw new Error(`${names.since} (${new Date(range.since).toISOString()}) is after ${names.until} (${new Date(range.until).toISOString()})`);
  }
  return range;
}
