import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurably } from '../portal/files.js';

export interface KeyRecord {
  /** "pgp:<fingerprint>" or "smime:<sha-256 fingerprint>". */
  id: string;
  kind: 'pgp' | 'smime';
  /** Lower-case addresses the key serves; "@example.org" for a domain key. */
  addresses: string[];
  source: 'import' | 'wkd' | 'keyserver' | 'harvest';
  addedAt: number;
  material: string;
}

/**
 * Recipients' public keys and certificates under <dataDir>/keys, one file each. Every
 * lookup checks the directory (its change time moves with each add or remove), so every
 * worker process and the CLI agree; the records are parsed again only after a change.
 */
export class KeyStore {
  private snapshot: { version: bigint; records: KeyRecord[] } | undefined;

  constructor(private readonly dir: string) {}

  async open(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  async put(record: KeyRecord): Promise<void> {
    await writeFileDurably(join(this.dir, `${fileName(record.id)}.json`), JSON.stringify(record), 0o644);
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
        out.push(JSON.parse(await readFile(join(this.dir, name), 'utf8')) as KeyRecord);
      } catch {
        // an unreadable record never fails a lookup; `keys list` shows what is there
      }
    }
    return out.sort((a, b) => b.addedAt - a.addedAt);
  }

  /** Keys for an address, then for its domain (gateway-to-gateway keys). */
  async forAddress(kind: KeyRecord['kind'], address: string): Promise<KeyRecord[]> {
    const a = address.toLowerCase();
    const domain = `@${a.slice(a.lastIndexOf('@') + 1)}`;
    const mine = (await this.all()).filter((r) => r.kind === kind);
    return [...mine.filter((r) => r.addresses.includes(a)), ...mine.filter((r) => r.addresses.includes(domain))];
  }

  async remove(id: string): Promise<boolean> {
    const all = await this.all();
    const hit = all.find((r) => r.id === id || r.id.endsWith(`:${id.toUpperCase()}`));
    if (!hit) return false;
    await rm(join(this.dir, `${fileName(hit.id)}.json`), { force: true });
    return true;
  }
}

function fileName(id: string): string {
  return createHash('sha256').update(id).digest('hex').slice(0, 32);
}
