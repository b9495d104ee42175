import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openArchive, withAdminChain } from '../../src/archive/admin.js';
import { addHold, releaseHold } from '../../src/archive/hold-log.js';
import { createLogger } from '../../src/events/logger.js';
import { archiveConfig, tempDir } from './helpers.js';

const dataDir = tempDir();
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('legal hold log lines', () => {
  it('say that a hold has a keyword, never the keyword (it is words from the messages); the admin chain keeps it', async () => {
    const { config } = archiveConfig(dataDir);
    const { reader } = await openArchive(config, dataDir);
    const lines: string[] = [];
    const log = createLogger('info', { write: (l: string) => void lines.push(l) });
    const keyword = 'Jane Roe oncology';
    const h = await withAdminChain(reader, (chain) => addHold(chain, { custodian: 'dr@hospital.test', keyword }, 'case 12', 'counsel', log));
    await withAdminChain(reader, async (chain) => releaseHold(chain, await reader.adminState(), h.holdId, 'settled', 'counsel', log));
    const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.map((e) => e.event)).toEqual(['archive.hold-added', 'archive.hold-released']);
    for (const e of events) expect(e).toMatchObject({ holdId: h.holdId, custodian: 'dr@hospital.test', keywordGiven: true, actor: 'counsel' });
    expect(lines.join('\n')).not.toContain('Jane Roe');
    expect(readFileSync(join(dataDir, 'archive', 'chains', 'admin.log'), 'utf8')).toContain(keyword);
  });
});
