import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { removeStaleTemps, writeFileDurably } from '../common/durable-file.js';
import { EVENTS, type Logger } from './logger.js';
import type { Hook } from './webhooks-hooks.js';
import type { OutboxEvent } from './webhooks-outbox.js';
import type { RedisOutbox } from './webhooks-redis-outbox.js';

/**
 * Events the Redis outbox had taken but could not write to Redis before its process
 * stopped (Redis down or hanging at shutdown): kept on the local disk, under
 * <dataDir>/webhooks/redis-unsent/, one file per stop, and written to Redis by the next
 * start of any instance on this data directory. Without this they were dropped without a
 * word at each stop during a Redis outage. Same JSON as in Redis: no secret.
 */
const unsentDir = (dataDir: string) => join(dataDir, 'webhooks', 'redis-unsent');

/** Writes the events to a file of their own, durably (temp, fsync, rename, fsync of the directory). Returns its path. */
async function saveUnsent(dataDir: string, shard: number | string, events: OutboxEvent[]): Promise<string> {
  const dir = unsentDir(dataDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${Date.now()}-${String(shard)}-${process.pid}-${randomBytes(4).toString('hex')}.jsonl`);
  await writeFileDurably(file, events.map((e) => `${JSON.stringify(e)}\n`).join(''));
  return file;
}

/**
 * What earlier stops kept: every file, and their events (once each, by delivery id: a stop
 * while the events of an earlier file were still waiting for Redis saves them again).
 * A line that is not an event (cut short, edited) is skipped.
 */
async function loadUnsent(dataDir: string): Promise<{ files: string[]; events: OutboxEvent[] }> {
  const dir = unsentDir(dataDir);
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!names) return { files: [], events: [] };
  await removeStaleTemps(dir);
  const files = names.filter((n) => n.endsWith('.jsonl')).sort().map((n) => join(dir, n));
  const events = new Map<string, OutboxEvent>();
  for (const file of files) {
    for (const line of (await readFile(file, 'utf8')).split('\n')) {
      const e = parseEvent(line);
      if (e) events.set(e.id, e);
    }
  }
  return { files, events: [...events.values()] };
}

/** Deletes files whose events are all in Redis now. */
async function removeUnsent(files: string[]): Promise<void> {
  for (const file of files) await rm(file, { force: true });
}

/**
 * Events kept on disk by earlier stops go to Redis first; their files are deleted once
 * Redis has every one of them (kept otherwise, for the start after). Each keeps its
 * delivery id: written again by two instances starting at once, or after a stop that
 * saved them again, it is one delivery still (the add script skips an id it has).
 */
export async function addKeptEvents(dataDir: string, outbox: RedisOutbox, wake: () => void): Promise<void> {
  const { files, events } = await loadUnsent(dataDir);
  if (!files.length) return;
  let waiting = events.length;
  const written = () => {
    wake();
    if (--waiting === 0) void removeUnsent(files).catch(() => undefined);
  };
  for (const e of events) if (!outbox.add(e, written)) return; // the write buffer is full: the files stay
  if (!events.length) await removeUnsent(files);
}

/**
 * Redis did not take these before the stop (down, or hanging): kept on the local disk for
 * the next start, and said so per webhook (its host, never its URL or secret). Only when
 * the disk refuses them too are they lost: `webhook.lost`, and the stop fails (exit 1,
 * as when the file outbox cannot write its last events). A stop while Redis is down with a
 * working disk still exits 0.
 */
export async function keepUnsent(log: Logger, hooks: Map<string, Hook>, dataDir: string, shard: number | string, events: OutboxEvent[]): Promise<void> {
  const byHook = new Map<string, number>();
  for (const e of events) byHook.set(e.hook, (byHook.get(e.hook) ?? 0) + 1);
  try {
    const file = await saveUnsent(dataDir, shard, events);
    for (const [hook, count] of byHook) {
      log.warn({ event: EVENTS.webhookFailed, host: hooks.get(hook)?.host, count, file, reason: 'not written to Redis before the stop: kept on disk, written to Redis at the next start' }, 'webhook events kept on disk for the next start');
    }
  } catch (err) {
    for (const [hook, count] of byHook) {
      log.error({ event: EVENTS.webhookLost, host: hooks.get(hook)?.host, count, err: (err as Error).message, reason: 'not written to Redis before the stop, and the disk refused them too' }, 'webhook events lost');
    }
    throw new Error(`${events.length} webhook event(s) lost: Redis did not take them before the stop, and they could not be kept on disk: ${(err as Error).message}`);
  }
}

function parseEvent(line: string): OutboxEvent | undefined {
  if (!line.trim()) return undefined;
  try {
    const e = JSON.parse(line) as OutboxEvent;
    return e.t === 'event' && typeof e.id === 'string' && typeof e.hook === 'string' && typeof e.at === 'number' ? e : undefined;
  } catch {
    return undefined;
  }
}
