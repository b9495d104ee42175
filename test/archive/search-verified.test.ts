import { appendFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openJournal } from '../../src/archive/journal.js';
import type { PosternConfig } from '../../src/config/schema.js';
import type { TestGateway } from '../helpers/gateway.js';
import { scenario } from '../helpers/scenario.js';
import { adminConfig, call, KEYS, startAdmin } from '../api/admin-helpers.js';
import { archiveConfig, cli, decisions, envelope, message, silent, tempDir } from './helpers.js';

/**
 * Search and export read the chains as verify does: a destruction appended to the admin
 * chain by hand hides nothing, and a journal line that does not parse is a break that
 * makes the result incomplete (CLI exit 4, API complete: false, export refused with 409),
 * never a line skipped quietly.
 */

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** Three items to patient@example.net in the given shard's chain; their queue ids, in order. */
async function journalThree(config: PosternConfig, dataDir: string, shard = 0): Promise<string[]> {
  const journal = await openJournal(config, dataDir, silent, { shard });
  const ids: string[] = [];
  for (let i = 1; i <= 3; i++) {
    const e = envelope({ from: `dr${shard}@hospital.test` });
    await journal!.record({ envelope: e, decisions: decisions(e), body: message(`Lab results ${i}`, `text ${i}`) });
    ids.push(e.id);
  }
  await journal!.close();
  return ids;
}

/** A destroy record for `id` appended to the admin chain by someone without the archive key. */
function forgeDestruction(dataDir: string, id: string, chain = 'journal-0') {
  const forged = { seq: 99, prev: 'x', at: new Date().toISOString(), type: 'destroy', id, chain, itemSeq: 1, receivedAt: 0, rule: 'x', days: 1 };
  appendFileSync(join(dataDir, 'archive', 'chains', 'admin.log'), `${JSON.stringify(forged)}\n`);
}

interface SearchJson {
  hits: { id: string }[];
  complete: boolean;
  incomplete: string[];
}

describe('postern archive search and export on chains that do not verify', () => {
  async function archive() {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const { config, file } = archiveConfig(dataDir);
    const ids = await journalThree(config, dataDir);
    const search = async () => {
      const r = await cli(['archive', 'search', '-c', file, '--participant', 'patient@example.net', '--json']);
      return { code: r.code, json: JSON.parse(r.stdout) as SearchJson, stderr: r.stderr };
    };
    return { dataDir, file, ids, search, journalLog: join(dataDir, 'archive', 'chains', 'journal-0.log') };
  }

  it('a destruction appended to the admin chain by hand: the item is still found, the result is incomplete (exit 4), the export refused', async () => {
    const a = await archive();
    const before = await a.search();
    expect(before).toMatchObject({ code: 0, json: { complete: true, incomplete: [] } });
    expect(before.json.hits.map((h) => h.id)).toEqual(a.ids);

    forgeDestruction(a.dataDir, a.ids[0] as string);
    const after = await a.search();
    expect(after.json.hits.map((h) => h.id)).toEqual(a.ids);
    expect(after.json.complete).toBe(false);
    expect(after.json.incomplete).toEqual([expect.stringMatching(/^chain admin does not verify.*record 2 was deleted: the record found in its place has seq 99/)]);
    expect(after.code).toBe(4);
    const text = await cli(['archive', 'search', '-c', a.file, '--participant', 'patient@example.net']);
    expect(text.stderr).toMatch(/chain admin does not verify, results may be incomplete/);
    expect(text.code).toBe(4);
    const exported = await cli(['archive', 'export', '-c', a.file, '--participant', 'patient@example.net', '--format', 'mbox', '--out', join(a.dataDir, 'case.mbox')]);
    expect(exported.stderr).toMatch(/REFUSED: the search may miss messages/);
    expect(exported.code).toBe(4);
  });

  it('a journal line that no longer parses: a break named in the result (exit 4); the items after it are still found', async () => {
    const a = await archive();
    const lines = readFileSync(a.journalLog, 'utf8').split('\n');
    lines[2] = `X${lines[2]}`;
    writeFileSync(a.journalLog, lines.join('\n'));
    const r = await a.search();
    expect(r.json.hits.map((h) => h.id)).toEqual([a.ids[0], a.ids[2]]);
    expect(r.json.complete).toBe(false);
    expect(r.json.incomplete).toEqual([expect.stringMatching(/^chain journal-0 does not verify.*record 2 was edited: it is no longer a valid index record/)]);
    expect(r.code).toBe(4);
    const partial = await cli(['archive', 'export', '-c', a.file, '--participant', 'patient@example.net', '--format', 'zip', '--allow-partial', '--out', join(a.dataDir, 'case.zip')]);
    expect(partial.stdout).toMatch(/exported 2 message\(s\).*INCOMPLETE/);
  });
});

describe('the admin API search and export on a forged admin chain', () => {
  const s = scenario({ checkArchive: false });
  let gw: TestGateway;
  let admin: Awaited<ReturnType<typeof startAdmin>>;
  const api = (path: string) => `${admin.url}/api/v1${path}`;

  beforeAll(async () => {
    gw = await s.gateway({ admin: await adminConfig() });
    admin = await startAdmin(gw);
  });
  afterAll(async () => {
    await admin?.close();
  });

  it('the item a forged destruction names is found, complete: false with the reason; the export is refused with 409', async () => {
    const ids = await journalThree(gw.config, gw.dataDir, 7);
    const search = () => call(api('/archive/search?sender=dr7@hospital.test'), { key: KEYS.ro });
    expect((await search()).body).toMatchObject({ complete: true });
    forgeDestruction(gw.dataDir, ids[1] as string, 'journal-7');
    const r = await search();
    expect(r.status).toBe(200);
    expect((r.body as SearchJson).hits.map((h) => h.id)).toEqual(ids);
    expect(r.body).toMatchObject({ complete: false, incomplete: [expect.stringMatching(/^chain admin does not verify/)] });
    expect(r.headers.get('x-postern-incomplete')).toMatch(/chain admin does not verify/);
    const exported = await call(api('/archive/export?format=mbox&sender=dr7@hospital.test'), { key: KEYS.adm });
    expect(exported.status).toBe(409);
    expect((exported.body as { message: string }).message).toMatch(/the search may miss messages \(chain admin does not verify/);
  });
});
