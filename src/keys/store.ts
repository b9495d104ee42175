import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readJsonFile, writeFileDurably } from '../common/durable-file.js';
import { RecordLocks } from '../common/record-locks.js';
import { mergeRecord } from './merge.js';
import { claimsFor, normalizedRecord, type KeyRecord } from './record.js';

export type { KeyRecord, KeySource, Served } from './record.js';

/**
 * Recipients' public keys and certificates. One instance keeps them in files
 * (FileKeyStore); instances sharing a Redis queue keep them there (RedisKeyStore), so
 * the method a message gets does not depend on which instance delivers it. Chosen by
 * openKeyStore() (src/keys/open-store.ts), the same way for the gateway and the CLI.
 */
export interface KeyStore {
  open(): Promise<void>;
  close(): Promise<void>;
  /**
   * Stores a key for record.addresses with record.source, from and addedAt, merged with
   * the record of the same key already there (merge.ts): no address it served is lost,
   * and a discovery never overrides an import or harvest. Read, merge and write are one
   * step even between instances.
   */
  put(record: KeyRecord): Promise<void>;
  /** Every record, newest first. */
  all(): Promise<KeyRecord[]>;
  /** Keys for an address, then for its domain (gateway-to-gateway keys). */
  forAddress(kind: KeyRecord['kind'], address: string): Promise<KeyRecord[]>;
  /** By record id or by fingerprint; false when no record matched. */
  remove(id: string): Promise<boolean>;
}

/** What forAddress() returns from a store's records: one per claim (see claimsFor). */
export function recordsFor(records: KeyRecord[], kind: KeyRecord['kind'], address: string): KeyRecord[] {
  return claimsFor(records, kind, address).map((c) => c.record);
}

/** The record remove() means: its id, or a fingerprint (any case). */
export function recordNamed(records: KeyRecord[], id: string): KeyRecord | undefined {
  return records.find((r) => r.id === id || r.id.endsWith(`:${id.toUpperCase()}`));
}

export const newestFirst = (records: KeyRecord[]) => records.sort((a, b) => b.addedAt - a.addedAt);

/**
 * The key store of one instance, under <dataDir>/keys, one file each. Every lookup checks
 * the directory (its change time moves with each add or remove), so every worker process
 * and the CLI agree; the records are parsed again only after a change.
 */
export class FileKeyStore implements KeyStore {
  private snapshot: { version: bigint; records: KeyRecord[] } | undefined;
  /** A put reads the record before writing it: workers and the CLI must not interleave. */
  private readonly locks = new RecordLocks();

  constructor(private readonly dir: string) {}

  async open(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  async close(): Promise<void> {}

  async put(record: KeyRecord): Promise<void> {
    const file = join(this.dir, `${fileName(record.id)}.json`);
    await this.locks.run(file, async () => {
      const before = await readRecord(file);
      await writeFileDurably(file, JSON.stringify(await mergeRecord(before, record)), 0o644);
    });
  }

  async all(): Promise<KeyRecord[]> {
    // Synchronous on purpose: a stat of a directory the kernel has cached costs about a
    // microsecond, the async form a thread-pool round trip — and every message asks.
    const { mtimeNs, ctimeNs } = statSync(this.dir, { bigint: true });
    const version = mtimeNs > ctimeNs ? mtimeNs : ctimeNs;
    if (this.snapshot?.version === version) return this.snapshot.records;
    const records = await this.readAll();
    this.snapshot = { version, records };
    return records;
  }

  private async readAll(): Promise<KeyRecord[]> {
    const out: KeyRecord[] = [];
    for (const name of await readdir(this.dir)) {
      if (!name.endsWith('.json')) continue;
      try {
        out.push(normalizedRecord(JSON.parse(await readFile(join(this.dir, name), 'utf8')) as KeyRecord));
      } catch {
        // an unreadable record never fails a lookup; `keys list` shows what is there
      }
    }
    return newestFirst(out);
  }

  async forAddress(kind: KeyRecord['kind'], address: string): Promise<KeyRecord[]> {
    return recordsFor(await this.all(), kind, address);
  }

  async remove(id: string): Promise<boolean> {
    const hit = recordNamed(await this.all(), id);
    if (!hit) return false;
    // Under the put lock: a put that read the record before would otherwise write it back.
    const file = join(this.dir, `${fileName(hit.id)}.json`);
    await this.locks.run(file, () => rm(file, { force: true }));
    return true;
  }
}

/**
 * The file store under its earlier name, so `new KeyStore(dir)` (the benchmark, tests that
 * seed a gateway's key directory) keeps working; the type KeyStore is the interface.
 */
export const KeyStore = FileKeyStore;

/** The stored record, or undefined when there is none (or only an unreadable one, which a put replaces). */
const readRecord = async (file: string) => {
  const record = await readJsonFile<KeyRecord>(file);
  return record && normalizedRecord(record);
};

function fileName(id: string): string {
  return createHash('sha256').update(id).digest('hex').slice(0, 32);
}
