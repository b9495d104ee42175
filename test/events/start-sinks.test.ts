import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/events/logger.js';
import { startEventSinks } from '../../src/events/start-sinks.js';
import { testConfigInput, type LogLine } from '../helpers/gateway.js';
import { findProgram } from '../helpers/programs.js';

const prlimit = findProgram('prlimit');

/**
 * This test process's own file size limit (RLIMIT_FSIZE), soft only, so it can be put
 * back: at one byte every write that grows a file fails with EFBIG, whoever runs the
 * test (root included), as a disk that refuses writes would.
 */
const limitFileSize = (soft: string) => execFileSync(prlimit as string, ['--pid', String(process.pid), `--fsize=${soft}:`]);

// Skipped only on a developer machine without prlimit (util-linux); under CI=true findProgram throws.
describe.skipIf(!prlimit)('event sinks: closing on a disk that refuses the last records', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-sinks-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a webhook outbox that fails to close does not keep the audit trail from closing: both are tried, both failures reported', async () => {
    const config = validateConfig(testConfigInput(dir, { webhooks: [{ url: 'http://127.0.0.1:9/hook', events: ['delivered'], secret: 'a-webhook-secret-of-32-characters', retry: { initialDelay: '1h' } }] }));
    const lines: LogLine[] = [];
    const logger = createLogger('info', { write: (l: string) => void lines.push(JSON.parse(l) as LogLine) });
    const sinks = await startEventSinks(config, dir, 0, logger);
    // One event both hold in memory: the trail records delivery.sent, the webhook subscribes to it.
    logger.info({ event: 'delivery.sent', queueId: 'q1', to: 'pat@partner.test' }, 'sent');
    limitFileSize('1');
    let closing: Error | undefined;
    try {
      await sinks.close().catch((err: Error) => (closing = err));
    } finally {
      limitFileSize('unlimited');
    }
    expect(closing?.message).toMatch(/EFBIG.*; .*EFBIG/);
    expect(lines.filter((l) => l.event === 'webhook.failed')).toHaveLength(1);
    expect(lines.filter((l) => l.event === 'audit.failed')).toHaveLength(1);
  });
});
