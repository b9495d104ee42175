import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FsSpool } from '../../src/queue/fs/spool.js';
import { adoptOrphanShards, spoolShardDir } from '../../src/queue/fs/shards.js';
import { startChildGateway, type ChildGateway } from '../helpers/child-gateway.js';
import { testConfigInput } from '../helpers/gateway.js';
import { TestMx } from '../helpers/mx-server.js';
import { sendMail, testMessage } from '../helpers/smtp-client.js';
import { queueInShard } from './spool-helpers.js';

describe('spool shards', () => {
  it('moves messages of shards no worker will own into the remaining ones', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'postern-shards-'));
    for (const shard of [0, 1, 2, 3]) await queueInShard(dataDir, shard, shard + 1); // 1+2+3+4 = 10
    expect(await adoptOrphanShards(dataDir, 2)).toBe(7);
    expect(readdirSync(join(dataDir, 'spool')).sort()).toEqual(['0', '1']);
    let total = 0;
    for (const shard of [0, 1]) {
      const q = new FsSpool(spoolShardDir(dataDir, shard));
      total += (await q.open()).recovered;
      await q.close();
    }
    expect(total).toBe(10);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('a single process (workers: 1) takes over what an earlier run with more workers left in other shards, and delivers it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'postern-shards-single-'));
    const dataDir = join(dir, 'data');
    await queueInShard(dataDir, 0, 1);
    await queueInShard(dataDir, 1, 2);
    const mx = await new TestMx().start();
    const gw = await startChildGateway(dir, testConfigInput(dataDir, { workers: 1, log: { level: 'info' }, delivery: { routes: { '*': { nexthop: `127.0.0.1:${mx.port}`, tls: 'none' } } } }));
    try {
      await mx.waitFor(3, 20_000);
      const subjects = mx.messages.map((m) => /Subject: (.*)/.exec(m.raw.toString())?.[1]).sort();
      expect(subjects).toEqual(['shard 0 #0', 'shard 1 #0', 'shard 1 #1']);
      expect(gw.logs.find((l) => l.event === 'gateway.start')?.adopted).toBe(2);
      expect(readdirSync(join(dataDir, 'spool'))).toEqual(['0']);
    } finally {
      gw.killAll();
      await mx.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('worker processes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-cluster-'));
  let gw: ChildGateway | undefined;
  let mx: TestMx | undefined;
  afterAll(async () => {
    gw?.killAll();
    await mx?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('share one port; a worker killed with -9 is started again and delivers what it had queued', async () => {
    // The receiving MX is down at first, so every message stays queued in some shard.
    const probe = await new TestMx().start();
    const port = probe.port;
    await probe.stop();
    gw = await startChildGateway(dir, testConfigInput(join(dir, 'data'), { workers: 2, log: { level: 'info' }, delivery: { routes: { '*': { nexthop: `127.0.0.1:${port}`, tls: 'none' } } } }));
    const starts = () => gw!.logs.filter((l) => l.event === 'gateway.start' && l.shard !== undefined);
    await waitFor(() => gw!.logs.some((l) => l.event === 'gateway.ready' && l.workers === 2));
    expect(new Set(starts().map((l) => l.shard))).toEqual(new Set([0, 1]));
    for (let i = 0; i < 20; i++) expect((await sendMail(gw.port, { from: 'a@client.test', to: [`r${i}@dest.test`], raw: testMessage({ subject: `cluster ${i}` }) })).ok).toBe(true);
    const accepted = gw.logs.filter((l) => l.event === 'queue.accepted');
    expect(new Set(accepted.map((l) => l.shard)).size).toBe(2); // both workers took connections

    const victim = starts().find((l) => l.shard === 0)!;
    process.kill(victim.pid as number, 'SIGKILL');
    await waitFor(() => gw!.logs.some((l) => l.event === 'gateway.worker-exit' && l.shard === 0));
    await waitFor(() => starts().filter((l) => l.shard === 0).length === 2, 15_000);

    mx = await new TestMx({ port }).start();
    await mx.waitFor(20, 30_000);
    const subjects = new Set(mx.messages.map((m) => /Subject: (.*)/.exec(m.raw.toString())?.[1]));
    expect(subjects.size).toBe(20);
  });
});

async function waitFor(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
