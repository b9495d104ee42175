import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKey, readKey } from 'openpgp';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { openJournal } from '../../src/archive/journal.js';
import { auditRecords } from '../../src/events/audit-read.js';
import { isAudited } from '../../src/events/audit-events.js';
import { loadMasterKeys } from '../../src/portal/keys.js';
import { openPortalStore } from '../../src/portal/open-store.js';
import { archiveConfig, allFiles, DAY, decisions, envelope, message, silent, tempDir } from '../archive/helpers.js';
import { runCli } from '../helpers/cli.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** The records of the "cli" chain, oldest first. */
async function cliRecords(dataDir: string): Promise<{ event: string; fields: Record<string, unknown> }[]> {
  const out = [];
  for await (const r of auditRecords(dataDir)) if (r.shard === 'cli') out.push({ event: r.event, fields: r.fields });
  return out;
}

/** Runs a command as `user` (no sudo), then checks that `postern audit verify` passes. */
async function as(user: string, file: string, args: string[]) {
  // Options before "--": a portal id may start with "-".
  const end = args.indexOf('--');
  const r = await runCli(end === -1 ? [...args, '-c', file] : [...args.slice(0, end), '-c', file, ...args.slice(end)], { USER: user, SUDO_USER: '' });
  const v = await runCli(['audit', 'verify', '-c', file]);
  expect(v.stdout, `${args.join(' ')}: ${JSON.stringify(r)}`).toMatch(/audit trail intact: \d+ record\(s\) in 1 chain/);
  expect(v.code).toBe(0);
  return r;
}

describe('postern audit verify with nothing to verify', () => {
  it('exits 4, not 0, so a check run on the wrong dataDir (or with audit.enabled off) never passes as intact', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const { file } = archiveConfig(dataDir);
    const v = await runCli(['audit', 'verify', '-c', file]);
    expect(v.stdout).toMatch(/no audit trail under /);
    expect(v.code).toBe(4);
  });
});

describe('command-line changes are in the audit trail', () => {
  it('postern archive hold add / purge / hold release / rotate-key: one record each (destructions by id), no content', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const { config, file } = archiveConfig(dataDir, { retention: { defaultDays: 2192, rules: [{ id: 'phi-short', category: 'phi', days: 30 }] } });
    const journal = await openJournal(config, dataDir, silent);
    const [held, free] = [envelope({ receivedAt: Date.now() - 40 * DAY, from: 'custodian@hospital.test' }), envelope({ receivedAt: Date.now() - 40 * DAY })];
    for (const e of [held!, free!]) await journal!.record({ envelope: e, decisions: decisions(e), body: message('SUBJECT-MARKER-77', 'BODY-MARKER-77'), categories: ['phi'] });
    await journal!.close();

    const add = await as('someone', file, ['archive', 'hold', 'add', '--custodian', 'custodian@hospital.test', '--reason', 'Smith v. Hospital', '--by', 'counsel']);
    const holdId = /^(hold-[0-9a-f]+)/.exec(add.stdout)?.[1];
    expect(holdId).toBeDefined();
    expect(await cliRecords(dataDir)).toEqual([{ event: 'archive.hold-added', fields: expect.objectContaining({ holdId, custodian: 'custodian@hospital.test', reason: 'Smith v. Hospital', actor: 'counsel' }) }]);

    // A dry run changes nothing: nothing recorded.
    await as('purger', file, ['archive', 'purge', '--dry-run']);
    expect(await cliRecords(dataDir)).toHaveLength(1);
    const purge = await as('purger', file, ['archive', 'purge']);
    expect(purge.stdout).toContain(`destroyed ${free!.id}`);
    expect((await cliRecords(dataDir)).slice(1)).toEqual([
      { event: 'archive.destroyed', fields: expect.objectContaining({ itemId: free!.id, chain: 'journal-0', rule: 'phi-short', days: 30, actor: 'purger' }) },
      { event: 'archive.purged', fields: expect.objectContaining({ purged: 1, held: 1, failed: 0, actor: 'purger' }) },
    ]);

    await as('paralegal', file, ['archive', 'hold', 'release', holdId!, '--reason', 'settled']);
    expect((await cliRecords(dataDir)).at(-1)).toEqual({ event: 'archive.hold-released', fields: expect.objectContaining({ holdId, reason: 'settled', actor: 'paralegal', custodian: 'custodian@hospital.test' }) });

    const raw = parse(readFileSync(file, 'utf8')) as { archive: { masterKeys: { id: string; key: string }[] } };
    const twoKeys = join(dataDir, 'two-keys.yaml');
    writeFileSync(twoKeys, stringify({ ...raw, archive: { ...raw.archive, masterKeys: [{ id: 'k2', key: randomBytes(32).toString('base64') }, ...raw.archive.masterKeys] } }));
    await as('someone', twoKeys, ['archive', 'rotate-key', '--by', 'ops']);
    expect((await cliRecords(dataDir)).at(-1)).toEqual({ event: 'archive.key-rotated', fields: expect.objectContaining({ keyId: 'k2', rewrapped: 1, actor: 'ops' }) });

    for (const f of allFiles(join(dataDir, 'audit'))) expect(readFileSync(f, 'utf8'), f).not.toMatch(/SUBJECT-MARKER|BODY-MARKER/);
  });

  it('postern portal revoke and rotate-key', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const { config, file } = archiveConfig(dataDir);
    const store = await openPortalStore(config, dataDir, (await loadMasterKeys(config, dataDir)).keys);
    const m = await store.putMessage(Buffer.from('Subject: x\r\n\r\nsecret\r\n'), { createdAt: Date.now(), expiresAt: Date.now() + DAY, sender: 'dr@client.test', recipients: ['pat@dest.test'], queueId: '01TESTQUEUEID00000', kind: 'received' });
    await store.close();
    await as('someone', file, ['portal', 'revoke', '--by', 'compliance', '--', m.id]);
    expect(await cliRecords(dataDir)).toEqual([{ event: 'portal.revoked', fields: { portalId: m.id, queueId: '01TESTQUEUEID00000', by: 'compliance' } }]);
    // Withdrawn already: nothing changes, nothing more is recorded.
    await as('someone', file, ['portal', 'revoke', '--', m.id]);
    expect(await cliRecords(dataDir)).toHaveLength(1);
    await as('keeper', file, ['portal', 'rotate-key']);
    expect((await cliRecords(dataDir)).at(-1)).toEqual({ event: 'portal.key-rotated', fields: expect.objectContaining({ rewrapped: 0, actor: 'keeper' }) });
  });

  it('postern keys import and remove', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const { file } = archiveConfig(dataDir);
    const key = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: 'pat@dest.test' }], format: 'armored' });
    const id = `pgp:${(await readKey({ armoredKey: key.publicKey })).getFingerprint().toUpperCase()}`;
    const keyFile = join(dataDir, 'pat.asc');
    writeFileSync(keyFile, key.publicKey);
    expect((await as('keyadmin', file, ['keys', 'import', keyFile])).code).toBe(0);
    expect(await cliRecords(dataDir)).toEqual([{ event: 'keys.imported', fields: { actor: 'keyadmin', keyIds: [id] } }]);
    expect((await as('keyadmin', file, ['keys', 'remove', id])).code).toBe(0);
    expect((await cliRecords(dataDir)).at(-1)).toEqual({ event: 'keys.removed', fields: { actor: 'keyadmin', keyId: id } });
    // An unknown id removes nothing: nothing recorded.
    await as('keyadmin', file, ['keys', 'remove', 'pgp:0000']);
    expect(await cliRecords(dataDir)).toHaveLength(2);
  });

  it('the hold and purge codes are audited events', () => {
    for (const code of ['archive.hold-added', 'archive.hold-released', 'archive.destroyed', 'archive.purged', 'archive.purge-refused', 'archive.key-rotated', 'portal.key-rotated', 'keys.imported', 'keys.removed', 'portal.revoked']) expect(isAudited(code), code).toBe(true);
  });
});
