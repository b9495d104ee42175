import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mboxrdEntry } from '../../src/archive/export-mbox.js';
import { openJournal } from '../../src/archive/journal.js';
import { auditRecords } from '../../src/events/audit-read.js';
import { archiveConfig, cli, decisions, envelope, message, silent, tempDir } from './helpers.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

let dataDir: string;
let file: string;
const originals = new Map<string, Buffer>();
/** Queue ids and receivedAt of the three items, oldest first. */
const items: { id: string; receivedAt: number }[] = [];

beforeAll(async () => {
  dataDir = tempDir();
  dirs.push(dataDir);
  const c = archiveConfig(dataDir);
  file = c.file;
  const journal = await openJournal(c.config, dataDir, silent);
  const bodies = [
    ['Appointment reminder', 'See you Monday.'],
    // Lines an mbox reader would take for a new message unless quoted.
    ['Referral letter', 'From the desk of Dr. Who\r\n>From an earlier mail\r\nregards'],
    ['Invoice 2025-01', 'Amount due: 10 EUR'],
  ];
  for (const [i, [subject, body]] of bodies.entries()) {
    const e = envelope({ from: i === 2 ? 'billing@hospital.test' : 'dr@hospital.test', receivedAt: Date.now() - (3 - i) * 60_000 });
    const raw = message(subject as string, body as string);
    originals.set(subject as string, raw);
    items.push({ id: e.id, receivedAt: e.receivedAt });
    await journal!.record({ envelope: e, decisions: decisions(e), body: raw });
  }
  await journal!.close();
});

const python = (script: string, ...args: string[]) => execFileSync('python3', ['-c', script, ...args], { encoding: 'utf8' });
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A copy of the config with other archive.searchLimits. */
function limitedConfig(name: string, limits: string): string {
  const out = join(dataDir, name);
  writeFileSync(out, readFileSync(file, 'utf8').replace('archive:\n', `archive:\n  searchLimits:\n${limits}`));
  return out;
}

/** The audit trail's "cli" chain records of one event. */
async function audited(event: string): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for await (const r of auditRecords(dataDir)) if (r.shard === 'cli' && r.event === event) out.push(r.fields);
  return out;
}

describe('postern archive export', () => {
  it('writes an mbox that Python\'s mailbox module reads: right count, subjects and bodies', async () => {
    const out = join(dataDir, 'all.mbox');
    const r = await cli(['archive', 'export', '--format', 'mbox', '--out', out, '-c', file]);
    expect(r.stdout).toContain('exported 3 message(s)');
    expect(r.stdout).toContain(`hashes in ${out}.manifest.json`);
    const read = JSON.parse(
      python('import mailbox,json,sys\nbox=mailbox.mbox(sys.argv[1])\nprint(json.dumps([{"subject":m["subject"],"from":m.get_from(),"body":m.get_payload()} for m in box]))', out),
    ) as { subject: string; from: string; body: string }[];
    expect(read.map((m) => m.subject)).toEqual(['Appointment reminder', 'Referral letter', 'Invoice 2025-01']);
    expect(read[1]?.from).toMatch(/^dr@hospital\.test \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$/);
    // mboxrd: one more ">" on each /^>*From / line; Python leaves the quoting in place.
    expect(read[1]?.body).toBe('>From the desk of Dr. Who\n>>From an earlier mail\nregards\n');
  });

  it('writes an mbox manifest next to it: the hash of the file, and per message the hash of its original and where its entry is', async () => {
    const out = join(dataDir, 'hashed.mbox');
    expect((await cli(['archive', 'export', '--format', 'mbox', '--out', out, '-c', file])).code).toBe(0);
    const manifest = JSON.parse(readFileSync(`${out}.manifest.json`, 'utf8')) as { file: string; bytes: number; sha256: string; complete: boolean; messages: { id: string; subject: string; sha256: string; offset: number; length: number; entrySha256: string }[] };
    const mbox = readFileSync(out);
    expect(manifest).toMatchObject({ file: 'hashed.mbox', bytes: mbox.length, sha256: sha256(mbox), complete: true });
    expect(manifest.messages.map((m) => m.id)).toEqual(items.map((i) => i.id));
    for (const m of manifest.messages) {
      expect(m.sha256).toBe(sha256(originals.get(m.subject)!));
      expect(sha256(mbox.subarray(m.offset, m.offset + m.length))).toBe(m.entrySha256);
    }
    // The entries tile the file, each starting with its "From " line.
    expect(manifest.messages.reduce((n, m) => n + m.length, 0)).toBe(mbox.length);
    for (const m of manifest.messages) expect(mbox.subarray(m.offset, m.offset + 5).toString()).toBe('From ');
  });

  it('exports only what the search finds', async () => {
    const out = join(dataDir, 'billing.mbox');
    await cli(['archive', 'export', '--format', 'mbox', '--out', out, '--sender', 'billing@hospital.test', '-c', file]);
    expect(python('import mailbox,sys\nprint(len(mailbox.mbox(sys.argv[1])))', out).trim()).toBe('1');
    const search = await cli(['archive', 'search', '--subject', 'referral', '-c', file]);
    expect(search.stdout.split('\n').filter(Boolean)).toHaveLength(1);
    expect(search.stdout).toContain('"Referral letter"');
    const kw = await cli(['archive', 'search', '--keyword', 'amount due', '-c', file]);
    expect(kw.stdout).toContain('"Invoice 2025-01"');
    expect(kw.stderr).toContain('keyword search: 3 item(s)');
  });

  it('says when the keyword search was cut short by searchLimits (maxItems, maxBytes), and exits 4 unless --allow-partial', async () => {
    const limited = limitedConfig('limited.yaml', '    maxItems: 1\n');
    const r = await cli(['archive', 'search', '--keyword', 'amount due', '-c', limited]);
    expect(r.stderr).toContain('keyword search stopped at searchLimits.maxItems (1 items): 2 candidate(s) not scanned, results may be incomplete');
    expect(r.stderr).toContain('INCOMPLETE: this result may miss messages (exit 4)');
    expect(r.code).toBe(4);
    // maxBytes: the first item fits, the second would not.
    const size = originals.get('Appointment reminder')!.length;
    const bytes = limitedConfig('bytes.yaml', `    maxBytes: ${size + 10}\n`);
    const b = await cli(['archive', 'search', '--keyword', 'see you monday', '--json', '-c', bytes]);
    expect(b.code).toBe(4);
    const json = JSON.parse(b.stdout) as { hits: { subject: string }[]; complete: boolean; incomplete: string[]; keyword: { scannedItems: number; scannedBytes: number; notScanned: number } };
    expect(json.hits.map((h) => h.subject)).toEqual(['Appointment reminder']);
    expect(json.keyword).toMatchObject({ scannedItems: 1, scannedBytes: size, notScanned: 2 });
    expect(json.complete).toBe(false);
    expect(json.incomplete).toEqual([`keyword search stopped at searchLimits.maxBytes (${size + 10} bytes): 2 candidate(s) not scanned`]);
    const ok = await cli(['archive', 'search', '--keyword', 'see you monday', '--allow-partial', '-c', bytes]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('"Appointment reminder"');
    // The search is in the audit trail: who, what was found, that it was incomplete; the keyword is not.
    const searched = await audited('archive.searched');
    expect(searched.at(-1)).toMatchObject({ via: 'cli', count: 1, queueIds: [items[0]!.id], complete: false, filters: { keywordGiven: true } });
    expect(JSON.stringify(searched)).not.toContain('monday');
  });

  it('searches by --since and --until (a bare --until date takes its whole day)', async () => {
    const iso = (t: number) => new Date(t).toISOString();
    const ids = async (...args: string[]) => {
      const r = await cli(['archive', 'search', '--json', '-c', file, ...args]);
      expect(r.code).toBe(0);
      return (JSON.parse(r.stdout) as { hits: { id: string }[] }).hits.map((h) => h.id);
    };
    const [a, b, c] = items as [{ id: string; receivedAt: number }, { id: string; receivedAt: number }, { id: string; receivedAt: number }];
    expect(await ids('--since', iso(b.receivedAt))).toEqual([b.id, c.id]);
    expect(await ids('--until', iso(b.receivedAt))).toEqual([a.id, b.id]);
    expect(await ids('--since', iso(b.receivedAt), '--until', iso(b.receivedAt))).toEqual([b.id]);
    expect(await ids('--until', iso(a.receivedAt - 1))).toEqual([]);
    expect(await ids('--since', iso(c.receivedAt - 86_400_000).slice(0, 10), '--until', iso(c.receivedAt).slice(0, 10))).toEqual([a.id, b.id, c.id]);
  });

  it('refuses to export an incomplete search (exit 4, no file) unless --allow-partial, which marks it INCOMPLETE; both are audited', async () => {
    const limited = limitedConfig('limited-export.yaml', '    maxItems: 1\n');
    const out = join(dataDir, 'partial.zip');
    const refused = await cli(['archive', 'export', '--format', 'zip', '--out', out, '--keyword', 'e', '-c', limited]);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain('REFUSED: the search may miss messages, nothing was written (exit 4)');
    expect(existsSync(out)).toBe(false);
    const partial = await cli(['archive', 'export', '--format', 'zip', '--out', out, '--keyword', 'e', '--allow-partial', '-c', limited]);
    expect(partial.code).toBe(0);
    expect(partial.stdout).toContain('exported 1 message(s)');
    expect(partial.stdout).toContain('INCOMPLETE');
    expect(python('import zipfile,sys\nprint(zipfile.ZipFile(sys.argv[1]).read("INCOMPLETE.txt").decode())', out)).toContain('keyword search stopped at searchLimits.maxItems (1 items)');
    const exported = await audited('archive.exported');
    expect(exported.slice(-2)).toEqual([
      expect.objectContaining({ via: 'cli', format: 'zip', outcome: 'refused', complete: false, count: 1 }),
      expect.objectContaining({ via: 'cli', format: 'zip', outcome: 'completed', complete: false, count: 1, queueIds: [items[0]!.id] }),
    ]);
  });

  it('writes a zip of .eml files whose manifest hashes match, with the original bytes', async () => {
    const out = join(dataDir, 'all.zip');
    const r = await cli(['archive', 'export', '--format', 'zip', '--out', out, '-c', file]);
    expect(r.stdout).toContain('exported 3 message(s)');
    const listing = JSON.parse(
      python(
        [
          'import zipfile,hashlib,json,sys,base64',
          'z=zipfile.ZipFile(sys.argv[1])',
          'names=[n for n in z.namelist() if n.endswith(".eml")]',
          'manifest=[l.split("  ",1) for l in z.read("MANIFEST.sha256").decode().splitlines()]',
          'print(json.dumps({"bad":z.testzip(),"files":{n:{"sha256":hashlib.sha256(z.read(n)).hexdigest(),"b64":base64.b64encode(z.read(n)).decode()} for n in names},"manifest":manifest,"json":json.loads(z.read("manifest.json"))}))',
        ].join('\n'),
        out,
      ),
    ) as { bad: string | null; files: Record<string, { sha256: string; b64: string }>; manifest: [string, string][]; json: { file: string; subject: string; sha256: string }[] };
    expect(listing.bad).toBeNull();
    expect(Object.keys(listing.files)).toHaveLength(3);
    expect(listing.manifest).toHaveLength(3);
    for (const [hash, name] of listing.manifest) expect(listing.files[name]?.sha256).toBe(hash);
    for (const m of listing.json) {
      const raw = Buffer.from(listing.files[m.file]?.b64 ?? '', 'base64');
      expect(raw.equals(originals.get(m.subject) as Buffer)).toBe(true);
      expect(m.sha256).toBe(createHash('sha256').update(raw).digest('hex'));
    }
  });

  it('mboxrd quoting and separator line', () => {
    const e = mboxrdEntry('a b@x.test', Date.UTC(2025, 0, 6, 9, 5, 3), Buffer.from('Subject: s\r\n\r\nFrom me\r\n>From you\r\nFromage'));
    expect(e.toString()).toBe('From a_b@x.test Mon Jan  6 09:05:03 2025\nSubject: s\n\n>From me\n>>From you\nFromage\n\n');
  });
});
