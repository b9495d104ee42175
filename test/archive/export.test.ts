import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mboxrdEntry } from '../../src/archive/export-mbox.js';
import { openJournal } from '../../src/archive/journal.js';
import { archiveConfig, cli, decisions, envelope, message, silent, tempDir } from './helpers.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

let dataDir: string;
let file: string;
const originals = new Map<string, Buffer>();

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
    await journal!.record({ envelope: e, decisions: decisions(e), body: raw });
  }
  await journal!.close();
});

const python = (script: string, ...args: string[]) => execFileSync('python3', ['-c', script, ...args], { encoding: 'utf8' });

describe('postern archive export', () => {
  it('writes an mbox that Python\'s mailbox module reads: right count, subjects and bodies', async () => {
    const out = join(dataDir, 'all.mbox');
    const r = await cli(['archive', 'export', '--format', 'mbox', '--out', out, '-c', file]);
    expect(r.stdout).toContain('exported 3 message(s)');
    const read = JSON.parse(
      python('import mailbox,json,sys\nbox=mailbox.mbox(sys.argv[1])\nprint(json.dumps([{"subject":m["subject"],"from":m.get_from(),"body":m.get_payload()} for m in box]))', out),
    ) as { subject: string; from: string; body: string }[];
    expect(read.map((m) => m.subject)).toEqual(['Appointment reminder', 'Referral letter', 'Invoice 2025-01']);
    expect(read[1]?.from).toMatch(/^dr@hospital\.test \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$/);
    // mboxrd: one more ">" on each /^>*From / line; Python leaves the quoting in place.
    expect(read[1]?.body).toBe('>From the desk of Dr. Who\n>>From an earlier mail\nregards\n');
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

  it('says when the keyword search was cut short by searchLimits', async () => {
    const limited = join(dataDir, 'limited.yaml');
    const text = readFileSync(file, 'utf8').replace('archive:\n', 'archive:\n  searchLimits:\n    maxItems: 1\n');
    writeFileSync(limited, text);
    const r = await cli(['archive', 'search', '--keyword', 'amount due', '-c', limited]);
    expect(r.stderr).toContain('keyword search stopped at searchLimits.maxItems (1 items): 2 candidate(s) not scanned, results may be incomplete');
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
