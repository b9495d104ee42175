import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openArchive } from '../../src/archive/admin.js';
import { openJournal } from '../../src/archive/journal.js';
import { startRetentionJob } from '../../src/archive/retention-job.js';
import { retentionOf } from '../../src/archive/retention.js';
import type { PosternConfig } from '../../src/config/schema.js';
import type { Envelope } from '../../src/types.js';
import { allFiles, archiveConfig, cli, DAY, decisions, envelope, message, silent, tempDir } from './helpers.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const RETENTION = { defaultDays: 2192, rules: [{ id: 'phi-short', category: 'phi', days: 30 }, { domain: 'lab.test', days: 10 }] };

/** An archive with items received `ageDays` ago; returns the envelopes. */
async function archiveWith(items: { ageDays: number; categories?: string[]; from?: string; body?: string }[]) {
  const dataDir = tempDir();
  dirs.push(dataDir);
  const { config, file } = archiveConfig(dataDir, { retention: RETENTION });
  const journal = await openJournal(config, dataDir, silent);
  const envs: Envelope[] = [];
  for (const it of items) {
    const e = envelope({ receivedAt: Date.now() - it.ageDays * DAY, from: it.from });
    envs.push(e);
    await journal!.record({ envelope: e, decisions: decisions(e), body: message(`age ${it.ageDays}`, it.body ?? 'text'), categories: it.categories });
  }
  await journal!.close();
  return { dataDir, config, file, envs };
}

const adminRecords = (dataDir: string) =>
  readFileSync(join(dataDir, 'archive', 'chains', 'admin.log'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

async function alive(config: PosternConfig, dataDir: string): Promise<string[]> {
  const { reader } = await openArchive(config, dataDir);
  const { destroyed } = await reader.adminState();
  const ids: string[] = [];
  for await (const e of reader.items()) if (!destroyed.has(e.record.id) && existsSync(reader.path(e))) ids.push(e.record.id);
  return ids.sort();
}

describe('retention rules', () => {
  it('the first matching rule decides, else the default', () => {
    const meta = { id: 'x', receivedAt: 0, mailFrom: 'a@lab.test', rcptTo: ['b@c.test'], subject: '', size: 1, recipients: [], categories: ['phi'], client: { ip: '', helo: '' } };
    expect(retentionOf(meta, RETENTION)).toEqual({ days: 30, rule: 'phi-short' });
    expect(retentionOf({ ...meta, categories: [] }, RETENTION)).toEqual({ days: 10, rule: 'retention.rules.1' });
    expect(retentionOf({ ...meta, categories: [], mailFrom: 'a@other.test' }, RETENTION)).toEqual({ days: 2192, rule: 'retention.defaultDays' });
  });
});

describe('postern archive purge and hold', () => {
  it('destroys an expired item with a destruction record, keeps what is not expired; a dry run changes nothing', async () => {
    const { dataDir, config, file, envs } = await archiveWith([{ ageDays: 40, categories: ['phi'] }, { ageDays: 40 }, { ageDays: 5, categories: ['phi'] }]);
    const [expired, kept, young] = envs as [Envelope, Envelope, Envelope];
    const dry = await cli(['archive', 'purge', '--dry-run', '-c', file]);
    expect(dry.stdout).toContain(`would destroy ${expired.id}`);
    expect(await alive(config, dataDir)).toEqual([expired.id, kept.id, young.id].sort());

    const r = await cli(['archive', 'purge', '-c', file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`destroyed ${expired.id}`);
    expect(r.stdout).toContain('phi-short (30 days)');
    expect(await alive(config, dataDir)).toEqual([kept.id, young.id].sort());
    const destroy = adminRecords(dataDir).filter((x) => x.type === 'destroy');
    expect(destroy).toEqual([expect.objectContaining({ id: expired.id, chain: 'journal-0', rule: 'phi-short', days: 30, receivedAt: expired.receivedAt })]);
    expect(existsSync(join(dataDir, 'archive', 'items'))).toBe(true);
    // The chain still verifies: the item record stays, its destruction is recorded.
    const v = await cli(['archive', 'verify', '-c', file]);
    expect(v.stdout).toContain('2 item(s) checked, 1 destroyed');
    expect(v.code).toBe(0);
  });

  it('keeps expired items under a legal hold (custodian, keyword, date range); each release lets the next purge remove them', async () => {
    const { dataDir, config, file, envs } = await archiveWith([
      { ageDays: 40, categories: ['phi'], from: 'custodian@hospital.test' },
      { ageDays: 45, categories: ['phi'], body: 'Re: case LITIGATION-4711, keep this' },
      { ageDays: 60, categories: ['phi'] },
      { ageDays: 50, categories: ['phi'] },
    ]);
    const [byCustodian, byKeyword, byDate, free] = envs as [Envelope, Envelope, Envelope, Envelope];
    const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
    const add = async (...args: string[]) => {
      const r = await cli(['archive', 'hold', 'add', '-c', file, '--by', 'counsel', ...args]);
      expect(r.stderr).not.toMatch(/postern archive:/);
      return /^(hold-[0-9a-f]+)/.exec(r.stdout)?.[1] as string;
    };
    const h1 = await add('--custodian', 'CUSTODIAN@hospital.test', '--reason', 'Smith v. Hospital');
    const h2 = await add('--keyword', 'litigation-4711', '--reason', 'case 4711');
    const h3 = await add('--since', day(byDate.receivedAt), '--until', day(byDate.receivedAt), '--reason', 'audit of that day');
    expect((await cli(['archive', 'hold', 'add', '-c', file, '--reason', 'everything'])).stderr).toMatch(/needs at least one of/);

    const list = await cli(['archive', 'hold', 'list', '-c', file]);
    expect(list.stdout.split('\n').filter(Boolean)).toHaveLength(3);
    expect(list.stdout).toContain('by counsel: Smith v. Hospital');

    const p1 = await cli(['archive', 'purge', '-c', file]);
    expect(p1.stdout).toContain(`destroyed ${free.id}`);
    expect(p1.stdout).toContain(`kept ${byCustodian.id}: under legal hold ${h1}`);
    expect(p1.stdout).toContain(`kept ${byKeyword.id}: under legal hold ${h2}`);
    expect(p1.stdout).toContain(`kept ${byDate.id}: under legal hold ${h3}`);
    expect(await alive(config, dataDir)).toEqual([byCustodian.id, byKeyword.id, byDate.id].sort());

    const rel = await cli(['archive', 'hold', 'release', h1, '--reason', 'case settled', '--by', 'counsel', '-c', file]);
    expect(rel.stdout).toContain(`${h1}  released by counsel`);
    expect((await cli(['archive', 'hold', 'release', h1, '--reason', 'again', '-c', file])).stderr).toMatch(/already released/);
    const p2 = await cli(['archive', 'purge', '-c', file]);
    expect(p2.stdout).toContain(`destroyed ${byCustodian.id}`);
    expect(await alive(config, dataDir)).toEqual([byKeyword.id, byDate.id].sort());

    await cli(['archive', 'hold', 'release', h2, '--reason', 'closed', '-c', file]);
    await cli(['archive', 'hold', 'release', h3, '--reason', 'audit done', '-c', file]);
    const p3 = await cli(['archive', 'purge', '-c', file]);
    expect(await alive(config, dataDir)).toEqual([]);
    // Every entry of the segment is destroyed: the file goes too.
    expect(p3.stdout).toContain('destroyed');
    expect(allFiles(join(dataDir, 'archive', 'items'))).toEqual([]);

    const types = adminRecords(dataDir).map((x) => `${x.type as string}${x.holdId ? `:${x.holdId as string}` : ''}`);
    expect(types.filter((t) => t.startsWith('hold:'))).toEqual([`hold:${h1}`, `hold:${h2}`, `hold:${h3}`]);
    expect(types.filter((t) => t.startsWith('release:'))).toEqual([`release:${h1}`, `release:${h2}`, `release:${h3}`]);
    expect(types.filter((t) => t === 'destroy')).toHaveLength(4);
    expect(adminRecords(dataDir).find((x) => x.type === 'release')).toMatchObject({ reason: 'case settled', actor: 'counsel' });
    expect((await cli(['archive', 'verify', '-c', file])).code).toBe(0);
  });

  it('the retention job the gateway starts purges on its own and stops cleanly', async () => {
    const { dataDir, config, envs } = await archiveWith([{ ageDays: 40, categories: ['phi'] }, { ageDays: 1 }]);
    const stop = startRetentionJob(config, dataDir, silent, { firstRunMs: 0 });
    try {
      for (let i = 0; i < 200 && (await alive(config, dataDir)).length > 1; i++) await new Promise((r) => setTimeout(r, 25));
    } finally {
      await stop();
    }
    expect(await alive(config, dataDir)).toEqual([envs[1]!.id]);
  });
});
