import { execFileSync } from 'node:child_process';
import { openSync, readFileSync, closeSync, writeSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openJournal } from '../../src/archive/journal.js';
import { HEADER_BYTES } from '../../src/archive/item-file.js';
import { decisions, envelope, message, silent } from '../archive/helpers.js';
import type { TestGateway } from '../helpers/gateway.js';
import { scenario } from '../helpers/scenario.js';
import { adminConfig, KEYS, startAdmin } from './admin-helpers.js';

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
async function download(url: string): Promise<{ status: number; body?: Buffer; error?: string }> {
  const res = await fetch(url, { headers: { 'x-api-key': KEYS.adm } });
  try {
    return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
  } catch (err) {
    return { status: res.status, error: (err as Error).message };
  }
}

beforeAll(async () => {
  gw = await s.gateway({ admin: await adminConfig() });
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
});
