import { execFileSync } from 'node:child_process';
import { openSync, readFileSync, closeSync, renameSync, writeSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openJournal } from '../../src/archive/journal.js';
import { HEADER_BYTES } from '../../src/archive/item-file.js';
import { decisions, envelope, message, silent } from '../archive/helpers.js';
import type { TestGateway } from '../helpers/gateway.js';
import { scenario } from '../helpers/scenario.js';
import { adminConfig, call, KEYS, startAdmin } from './admin-helpers.js';

const s = scenario();
let gw: TestGateway;
let admin: Awaited<ReturnType<typeof startAdmin>>;
const scratch = mkdtempSync(join(tmpdir(), 'postern-export-test-'));
const api = (path: string) => `${admin.url}/api/v1${path}`;

/** Journals one message into a chain of its own; returns where its entry is. */
async function journalOne(shard: number, from: string, body: string) {
  const journal = await openJournal(gw.config, gw.dataDir, silent, { shard });
  const e = envelope({ from, to: ['pat@dest.test'] });
  await journal!.record({ envelope: e, decisions: decisions(e), body: message('Export test', body) });
  await journal!.close();
  const log = readFileSync(join(gw.dataDir, 'archive', 'chains', `journal-${shard}.log`), 'utf8').split('\n').filter(Boolean);
  const r = JSON.parse(log.at(-1) as string) as { file: string; offset: number };
  return { path: join(gw.dataDir, 'archive', r.file), offset: r.offset };
}

/** The whole body, or the error that cut it off. */
async function download(url: string): Promise<{ status: number; headers: Headers; body?: Buffer; error?: string }> {
  const res = await fetch(url, { headers: { 'x-api-key': KEYS.adm } });
  try {
    return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
  } catch (err) {
    return { status: res.status, headers: res.headers, error: (err as Error).message };
  }
}

/** The admin listener's log lines go to gw.logs without waking waitForLog: polled. */
async function logLine(pred: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  for (let i = 0; i < 200; i++) {
    const found = gw.logs.find(pred);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('log line did not appear in time');
}

const withSender = (event: string, sender: string, outcome?: string) => (l: Record<string, unknown>) =>
  l.event === event && (l.filters as { sender?: string } | undefined)?.sender === sender && (outcome === undefined || l.outcome === outcome);

beforeAll(async () => {
  // maxItems 1: a keyword search over two items is incomplete.
  gw = await s.gateway({ admin: await adminConfig(), archive: { searchLimits: { maxItems: 1 } } });
  admin = await startAdmin(gw);
});
afterAll(async () => {
  await admin?.close();
  rmSync(scratch, { recursive: true, force: true });
});

describe('archive export through the admin API', () => {
  it('streams mbox and zip to the response: nothing is written to a temporary directory (there is none here)', async () => {
    await journalOne(91, 'streamed@client.test', 'STREAMED-BODY-1');
    // A temporary "directory" that is a plain file: any attempt to write a temp copy fails.
    const notADir = join(scratch, 'tmp-is-a-file');
    writeFileSync(notADir, '');
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = notADir;
    try {
      expect(tmpdir()).toBe(notADir);
      const mbox = await download(api('/archive/export?format=mbox&sender=streamed@client.test'));
      expect(mbox.status).toBe(200);
      expect(mbox.body?.toString()).toMatch(/^From streamed@client\.test /);
      expect(mbox.body?.toString()).toContain('STREAMED-BODY-1');
      const zip = await download(api('/archive/export?format=zip&sender=streamed@client.test'));
      expect(zip.status).toBe(200);
      const file = join(scratch, 'export.zip');
      writeFileSync(file, zip.body!);
      // Python's zipfile reads it, and the manifest's hash matches the message it lists.
      const check = 'import zipfile,hashlib,sys\nz=zipfile.ZipFile(sys.argv[1])\nfor l in z.read("MANIFEST.sha256").decode().splitlines():\n  h,n=l.split("  ",1)\n  print(n, hashlib.sha256(z.read(n)).hexdigest()==h, b"STREAMED-BODY-1" in z.read(n))';
      expect(execFileSync('python3', ['-c', check, file], { encoding: 'utf8' })).toMatch(/^messages\/00001-\S+\.eml True True\n$/);
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
  });

  it('an item that fails authentication part way: never a complete-looking 200', async () => {
    const { path, offset } = await journalOne(92, 'broken@client.test', `BROKEN-${'x'.repeat(2000)}`);
    // Flip a byte of the ciphertext: the header (and the metadata) stay readable, the content fails its tag.
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.from('!'), 0, 1, offset + HEADER_BYTES + 100);
    closeSync(fd);
    for (const format of ['mbox', 'zip']) {
      const r = await download(api(`/archive/export?format=${format}&sender=broken@client.test`));
      if (r.status === 200) expect(r.error, `${format}: the transfer must be cut off`).toBeDefined();
      else expect(r.status).toBeGreaterThanOrEqual(500);
    }
  });

  it('an incomplete search says so (header and body); its export is refused with 409 unless allowPartial=true; searches and exports are logged with who, filters and ids, never the keyword', async () => {
    await journalOne(93, 'limits@client.test', 'LIMITED-ONE');
    await journalOne(94, 'limits@client.test', 'LIMITED-TWO');
    // A keyword search tells what messages say: admin only (test/api/archive-input.test.ts).
    const search = await call(api('/archive/search?sender=limits@client.test&keyword=limited'), { key: KEYS.adm });
    expect(search.status).toBe(200);
    expect(search.headers.get('x-postern-incomplete')).toMatch(/keyword search stopped at searchLimits\.maxItems \(1 items\): 1 candidate\(s\) not scanned/);
    expect(search.body).toMatchObject({ complete: false, incomplete: [expect.stringContaining('searchLimits.maxItems') as unknown] });
    const searched = await logLine(withSender('archive.searched', 'limits@client.test'));
    expect(searched).toMatchObject({ actor: 'boss', via: 'api', count: 1, complete: false, filters: { keywordGiven: true } });

    const refused = await download(api('/archive/export?format=mbox&sender=limits@client.test&keyword=limited'));
    expect(refused.status).toBe(409);
    expect(refused.body?.toString()).toContain('allowPartial=true');
    expect(await logLine(withSender('archive.exported', 'limits@client.test', 'refused'))).toMatchObject({ actor: 'boss', format: 'mbox' });

    // An mbox could not carry the mark once saved: a partial one is refused, pointing to the zip.
    const mbox = await download(api('/archive/export?format=mbox&sender=limits@client.test&keyword=limited&allowPartial=true'));
    expect(mbox.status).toBe(409);
    expect(mbox.body?.toString()).toContain('format=zip&allowPartial=true');
    const partial = await download(api('/archive/export?format=zip&sender=limits@client.test&keyword=limited&allowPartial=true'));
    expect(partial.status).toBe(200);
    expect(partial.headers.get('x-postern-incomplete')).toContain('searchLimits.maxItems');
    const file = join(scratch, 'partial.zip');
    writeFileSync(file, partial.body!);
    const names = execFileSync('python3', ['-c', 'import zipfile,sys\nz=zipfile.ZipFile(sys.argv[1])\nprint("\\n".join(z.namelist()))\nprint(z.read("INCOMPLETE.txt").decode())', file], { encoding: 'utf8' });
    expect(names).toMatch(/^messages\/00001-\S+\.eml$/m);
    expect(names).not.toMatch(/^messages\/00002-/m);
    expect(names).toContain('searchLimits.maxItems');
    const done = await logLine(withSender('archive.exported', 'limits@client.test', 'completed'));
    expect(done).toMatchObject({ actor: 'boss', via: 'api', format: 'zip', count: 1, complete: false });
    expect((done.queueIds as string[])[0]).toMatch(/^[0-9A-Z]{18}$/);
    expect(JSON.stringify(gw.logs.filter((l) => String(l.event).startsWith('archive.')))).not.toMatch(/limited/i);
  });

  it('hold list answers 409 with the problem while the admin chain does not verify', async () => {
    const head = join(gw.dataDir, 'archive', 'chains', 'admin.head');
    expect((await call(api('/archive/holds'), { key: KEYS.ro })).status).toBe(200);
    renameSync(head, `${head}.away`);
    try {
      const r = await call(api('/archive/holds'), { key: KEYS.ro });
      expect(r.status).toBe(409);
      expect(JSON.stringify(r.body)).toMatch(/admin chain .*does not verify: the head file \S+admin\.head is missing/);
    } finally {
      renameSync(`${head}.away`, head);
    }
    expect((await call(api('/archive/holds'), { key: KEYS.ro })).status).toBe(200);
  });

  it('an export cut off part way is logged as aborted', async () => {
    await logLine(withSender('archive.exported', 'broken@client.test'));
    const lines = gw.logs.filter(withSender('archive.exported', 'broken@client.test'));
    expect(lines.map((l) => l.outcome)).toEqual(['aborted', 'aborted']);
    expect(lines[0]?.err).toBeTruthy();
  });
});
