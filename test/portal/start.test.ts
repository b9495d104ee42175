import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/events/logger.js';
import { startPortalStorage } from '../../src/portal/start.js';
import type { QueueBackend } from '../../src/queue/backend.js';
import { testConfigInput } from '../helpers/gateway.js';

/** Starts the portal's storage with a logger that keeps its lines. */
async function start(overrides: Record<string, unknown> = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'postern-portal-start-'));
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger('debug', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  // The delivery step only keeps the queue; nothing is queued here.
  const parts = await startPortalStorage(validateConfig(testConfigInput(dataDir, overrides)), dataDir, {} as QueueBackend, logger);
  await parts?.store.close();
  return { dataDir, lines };
}

describe('portal start-up', () => {
  it('warns about the development master key with its own event code', async () => {
    const { dataDir, lines } = await start();
    const warned = lines.filter((l) => l.event === 'portal.dev-key');
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ level: 'warn', file: join(dataDir, 'portal', 'master.key') });
    // Not the TLS certificate's code: alerts on that one mean the SMTP certificate.
    expect(lines.some((l) => l.event === 'tls.dev-certificate')).toBe(false);
  });

  it('says nothing about a development key when master keys are configured', async () => {
    const { lines } = await start({ portal: { masterKeys: [{ id: 'k1', key: Buffer.alloc(32, 7).toString('base64') }] } });
    expect(lines.some((l) => l.event === 'portal.dev-key' || l.event === 'tls.dev-certificate')).toBe(false);
  });
});
